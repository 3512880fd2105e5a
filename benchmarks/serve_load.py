"""Benchmark: the explorer (`genlab serve`) under concurrent load, on 127.0.0.1 only.

Starts `genlab serve RUN ... --port 0` as its own process, then sends requests of every kind the runs'
panels offer — samples (images, lines, sound, clips), a decoded code, an interpolation, lines between two
lines, a test input, a streamed completion, a sound clip completed, a translation there and back, a held-out
clip continued — and
the page, the run list and a run's file, from several client threads at once,
until a count or a time is reached (both bounded). It reports requests/s, the median and 95th-percentile
latency of each kind, every failure, and the server's resident memory (VmRSS) after a warm-up round and
at the end: flat memory means the server keeps nothing per request.

    python benchmarks/serve_load.py                                  # trains tiny runs first (digits, tones, GIFs)
    python benchmarks/serve_load.py runs/vae runs/pcnn --clients 8 --seconds 60 --requests 5000

Every request goes to the address the server printed, which is 127.0.0.1; nothing else is contacted.
"""
from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import random
import re
import select
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from genlab.training.acceleration import describe_machine

MAX_SECONDS, MAX_REQUESTS, MAX_CLIENTS = 600, 100_000, 64


@contextlib.contextmanager
def launch(runs, *, threads: int = 1, workers: int = 2, timeout: float = 120.0, extra=()):
    """`genlab serve RUNS --port 0` in a process of its own; yields (url, process) once it listens."""
    cmd = [sys.executable, "-m", "genlab", "serve", *map(str, runs), "--port", "0", "--threads", str(threads),
           "--workers", str(workers), *extra]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line, end = "", time.monotonic() + timeout
        while "http://" not in line:
            if proc.poll() is not None or time.monotonic() > end:
                raise RuntimeError(f"genlab serve did not start: {proc.stderr.read() if proc.poll() is not None else 'timeout'}")
            ready, _, _ = select.select([proc.stdout], [], [], 0.5)
            if ready:
                line = proc.stdout.readline()
        url = re.search(r"http://\S+/", line).group(0)
        proc.banner = line.strip()
        yield url, proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            stream.close()


def request(url: str, method: str, path: str, body=None, timeout: float = 60.0, headers=None):
    """(status, body bytes, seconds) of one request on a connection of its own."""
    host, port = re.match(r"http://([^/]+):(\d+)/", url).groups()
    conn = http.client.HTTPConnection(host.strip("[]"), int(port), timeout=timeout)
    started = time.perf_counter()
    try:
        data = json.dumps(body).encode() if body is not None else None
        h = {"Content-Type": "application/json"} if data is not None else {}
        conn.request(method, path, body=data, headers={**h, **(headers or {})})
        r = conn.getresponse()
        return r.status, r.read(), time.perf_counter() - started
    finally:
        conn.close()


def events(payload: bytes) -> list[dict]:
    """The server-sent events of a streamed answer."""
    return [json.loads(chunk[6:]) for chunk in payload.decode().split("\n\n") if chunk.startswith("data: ")]


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def request_kinds(url: str) -> list[tuple]:
    """(kind, method, path, body-maker) for everything the served runs offer."""
    status, payload, _ = request(url, "GET", "/api/runs")
    assert status == 200, payload
    listing = json.loads(payload)
    limits, kinds = listing["limits"], [("page", "GET", "/", None), ("runs", "GET", "/api/runs", None)]
    span = limits["code_span"]
    for run in listing["runs"]:
        key, panels = run["key"], run["panels"]
        label = ((lambda k=len(run["classes"]): {"label": random.randrange(k)}) if "class" in panels
                 else (lambda: {}))
        base = f"/api/run/{key}/"
        if "sample" in panels:
            n = 2 if run["modality"] in ("audio", "video") else 8
            kinds.append(("sample", "POST", base + "sample",
                          lambda label=label, n=n: {"n": n, "seed": random.randrange(10**6), **label()}))
        if run["modality"] in ("image", "text"):
            kinds.append(("input", "POST", base + "input", lambda: {"input": {"test": random.randrange(20)}}))
        if run["files"]:
            kinds.append(("file", "GET", f"/files/{key}/{run['files'][-1]}", None))
        if "code" in panels:
            d = run["code_size"]
            kinds.append(("decode", "POST", base + "decode",
                          lambda d=d, label=label: {"z": [random.uniform(-span, span) for _ in range(d)], **label()}))
            ends = (lambda: {"test": random.randrange(20)}) if "encode" in run["abilities"] else \
                   (lambda d=d: {"z": [random.uniform(-span, span) for _ in range(d)]})
            kinds.append(("interpolate", "POST", base + "interpolate",
                          lambda ends=ends, label=label: {"a": ends(), "b": ends(), "steps": 8, **label()}))
        if "sentences" in panels:
            lines = [json.loads(request(url, "POST", base + "input", {"input": {"test": i}})[1])["line"]
                     for i in range(2)]
            kinds.append(("sentences", "POST", base + "sentences", lambda lines=lines: {"a": lines[0], "b": lines[1],
                                                                                         "steps": 6}))
        if "complete" in panels:
            kinds.append(("complete", "POST", base + "complete",
                          lambda label=label: {"input": {"test": random.randrange(20)}, "mask": "bottom-half",
                                               "seed": random.randrange(10**6), **label()}))
        if "complete_sound" in panels:
            kinds.append(("complete_sound", "POST", base + "complete_sound",
                          lambda label=label: {"input": {"test": 0}, "cover": {"fraction": random.uniform(0.1, 0.5)},
                                               "n": 2, "seed": random.randrange(10**6), **label()}))
        if "translate" in panels:
            kinds.append(("translate", "POST", base + "translate",
                          lambda: {"input": {"test": random.randrange(20), "domain": random.choice("ab")},
                                   "direction": random.choice(["a2b", "b2a"])}))
        if "continue" in panels:
            count = json.loads(request(url, "POST", base + "continue", {"frames": 1})[1])["count"]
            frames, most = run["clip"]["frames"], min(4, limits["clip_frames"])   # a few: each is pixel by pixel
            kinds.append(("continue", "POST", base + "continue",
                          lambda count=count, frames=frames, most=most: {"test": random.randrange(count),
                                                                         "context": random.randrange(1, frames),
                                                                         "frames": random.randint(1, most),
                                                                         "seed": random.randrange(10**6)}))
    return kinds


def check(kind: str, status: int, payload: bytes) -> str | None:
    """What is wrong with an answer, or None."""
    if status != 200:
        return f"{kind}: status {status}: {payload[:200]!r}"
    if kind == "complete":
        evs = events(payload)
        if not evs or not evs[-1].get("end") or any("error" in e for e in evs):
            return f"complete: stream did not end well: {payload[-200:]!r}"
    return None


def run_load(url: str, pid: int, *, clients: int = 4, seconds: float = 20.0, requests: int = 200,
             seed: int = 0) -> dict:
    """Every kind once (the warm-up), then `clients` threads sending kinds at random until `requests`
    have been sent or `seconds` have passed."""
    clients, seconds, requests = min(clients, MAX_CLIENTS), min(seconds, MAX_SECONDS), min(requests, MAX_REQUESTS)
    random.seed(seed)
    kinds = request_kinds(url)
    failures = []
    for kind, method, path, body in kinds:
        status, payload, _ = request(url, method, path, body() if body else None)
        if (problem := check(kind, status, payload)) is not None:
            failures.append(problem)
    rss_start = rss_mib(pid)
    samples = [rss_start]
    latencies: dict[str, list[float]] = {}
    lock, sent = threading.Lock(), [0]
    deadline = time.monotonic() + seconds

    def client(i: int):
        rng = random.Random(seed * 1000 + i)
        while time.monotonic() < deadline:
            with lock:
                if sent[0] >= requests:
                    return
                sent[0] += 1
            kind, method, path, body = rng.choice(kinds)
            try:
                status, payload, took = request(url, method, path, body() if body else None)
                problem = check(kind, status, payload)
            except OSError as e:
                problem, took = f"{kind}: {type(e).__name__}: {e}", float("nan")
            with lock:
                latencies.setdefault(kind, []).append(took)
                if problem:
                    failures.append(problem)

    def watch():
        while time.monotonic() < deadline and any(t.is_alive() for t in threads):
            samples.append(rss_mib(pid))
            time.sleep(0.5)

    started = time.perf_counter()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    watcher = threading.Thread(target=watch)
    watcher.start()
    for t in threads:
        t.join()
    watcher.join()
    wall = time.perf_counter() - started
    samples.append(rss_mib(pid))
    every = sorted(v for vs in latencies.values() for v in vs)
    return {"requests": len(every), "seconds": wall, "requests_per_s": len(every) / wall if wall else 0.0,
            "p50_s": percentile(every, 50), "p95_s": percentile(every, 95), "failures": failures,
            "by_kind": {k: {"n": len(v), "p50_s": percentile(sorted(v), 50), "p95_s": percentile(sorted(v), 95)}
                        for k, v in sorted(latencies.items())},
            "rss_mib_after_warmup": rss_start, "rss_mib_end": samples[-1], "rss_mib_max": max(samples),
            "clients": clients}


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    i = min(len(sorted_values) - 1, max(0, round(q / 100 * (len(sorted_values) - 1))))
    return sorted_values[i]


def tiny_tones(root: Path) -> str:
    """audio:PATH of eight short tones (200 samples at 8 kHz) in two classes, low and high."""
    import numpy as np
    from genlab.data.containers.audio_files import write_wav
    folder = root / "tones"
    for k in range(8):
        label, hz = ("low", 300) if k % 2 else ("high", 1200)
        (folder / label).mkdir(parents=True, exist_ok=True)
        write_wav(folder / label / f"{k}.wav", 0.5 * np.sin(np.arange(200) * 2 * np.pi * hz / 8000 + k))
    return f"audio:{folder}"


def tiny_clips(root: Path) -> str:
    """video:PATH of eight GIFs of 6 frames of 6×6: a dot moving one pixel a frame along a row."""
    import torch
    from genlab.data.containers.video import clip_gif
    folder = root / "clips"
    folder.mkdir(parents=True, exist_ok=True)
    for k in range(8):
        frames = torch.zeros(6, 6, 6)
        frames[torch.arange(6), k % 6, (torch.arange(6) + k) % 6] = 1
        clip_gif(folder / f"{k}.gif", frames)
    return f"video:{folder}"


# model: (data: a spec, or a function making tiny data under a folder and giving its spec; settings)
TINY = {"vae": ("digits", dict(latent_dim=4, hidden=64)), "cvae": ("digits", dict(latent_dim=4, hidden=64)),
        "gan": ("digits", dict(latent_dim=8, hidden=64)), "pixelcnn": ("digits", dict(channels=16, blocks=1, head=16)),
        "sentence-vae": ("tang300", dict(hidden=64, embed_dim=32, latent_dim=8)),
        "cyclegan": ("digits", dict(data_b="digits", batch_size=256, features=4, blocks=1, pool_size=5)),
        "vpn": (tiny_clips, dict(encoder_channels=4, encoder_blocks=1, lstm_channels=4, decoder_channels=4,
                                 decoder_layers=2, first_kernel=3, kernel=3, head=4)),
        "ddpm": ("digits", dict(channels=8, mults=(1,), timesteps=50, bound_timesteps=5, sample_steps=10,
                                batch_size=256)),
        "wavenet": (tiny_tones, dict(size=200, residual_channels=8, skip_channels=8, head=8, layers=3, stacks=1,
                                     conditional=True))}


def tiny_runs(root: Path, models=tuple(TINY)) -> list[Path]:
    """Runs trained for one epoch on tiny data, one per kind of panel: digits (two domains of them for a
    translator), tang300 where its corpus is installed, tones and GIFs made here; a few seconds each."""
    import genlab
    from genlab.data.sources.corpora import corpus_availability
    models = [m for m in models if TINY[m][0] != "tang300" or corpus_availability()["tang300"][0]]
    out = []
    for m in models:
        data, settings = TINY[m]
        spec = data(root / f"{m}-data") if callable(data) else data
        out.append(genlab.train(m, spec, root / m, epochs=1, samples=8, threads=1, quiet=True, **settings).path)
    return out


def main():
    from genlab.api import run_script

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="*", help="run directories (default: tiny runs trained now)")
    p.add_argument("--clients", type=int, default=8, help=f"concurrent clients (at most {MAX_CLIENTS})")
    p.add_argument("--seconds", type=float, default=30.0, help=f"at most this long (at most {MAX_SECONDS})")
    p.add_argument("--requests", type=int, default=2000, help=f"at most this many requests ({MAX_REQUESTS:,} at most)")
    p.add_argument("--threads", type=int, default=1, help="the server's torch threads")
    p.add_argument("--workers", type=int, default=2, help="the server's model threads")
    p.add_argument("--json", help="also write the figures to this file")
    args = p.parse_args()
    print(f"machine: {describe_machine()}", flush=True)      # beside every figure below

    def go():
        with tempfile.TemporaryDirectory() as tmp:
            runs = args.runs or tiny_runs(Path(tmp))
            with launch(runs, threads=args.threads, workers=args.workers) as (url, proc):
                print(proc.banner, file=sys.stderr)
                out = run_load(url, proc.pid, clients=args.clients, seconds=args.seconds, requests=args.requests)
        print(f"{out['requests']} requests from {out['clients']} clients in {out['seconds']:.1f} s: "
              f"{out['requests_per_s']:.1f} requests/s, latency median {1e3 * out['p50_s']:.0f} ms, "
              f"95th percentile {1e3 * out['p95_s']:.0f} ms; {len(out['failures'])} failed")
        for kind, d in out["by_kind"].items():
            print(f"  {kind:12s} {d['n']:6d}  median {1e3 * d['p50_s']:7.0f} ms   p95 {1e3 * d['p95_s']:7.0f} ms")
        print(f"server memory (VmRSS): {out['rss_mib_after_warmup']:.0f} MiB after the warm-up, "
              f"{out['rss_mib_end']:.0f} MiB at the end, {out['rss_mib_max']:.0f} MiB at most")
        for f in out["failures"][:10]:
            print("  failed:", f)
        if args.json:
            Path(args.json).write_text(json.dumps(out, indent=2) + "\n")

    run_script(go)


if __name__ == "__main__":
    main()
