"""`genlab serve`: the explorer's server, started as a user starts it (its own process, port 0) on tiny runs
trained here, asked over HTTP on 127.0.0.1: what each model offers comes from its declarations, answers
agree with the model computed here, every bound holds, no path leads outside the runs, the page stays
responsive while a model works, and a short load leaves no failure and flat memory."""
import base64
import http.client
import io
import json
import os
import socket
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import genlab
from genlab import modalities
from genlab.cli import main
from genlab.data.corpora import corpus_availability
from genlab.explore.completion import completions
from genlab.runs import Run
from genlab.web import views
from genlab.web.guard import Refused, run_file

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from serve_load import events, launch, request, run_load, tiny_runs  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return {p.name: p for p in tiny_runs(tmp_path_factory.mktemp("served"))}


@pytest.fixture(scope="module")
def server(runs):
    with launch(list(runs.values())) as (url, proc):
        listing = json.loads(request(url, "GET", "/api/runs")[1])
        keys = {r["model"]: r["key"] for r in listing["runs"]}
        yield {"url": url, "proc": proc, "keys": keys, "listing": listing}


def post(server, model, action, body, **kw):
    status, payload, _ = request(server["url"], "POST", f"/api/run/{server['keys'][model]}/{action}", body, **kw)
    return status, (json.loads(payload) if payload[:1] == b"{" else payload)


def png_array(url: str) -> np.ndarray:
    assert url.startswith("data:image/png;base64,")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))))


def png_url(array: np.ndarray) -> str:
    out = io.BytesIO()
    Image.fromarray(array).save(out, format="PNG")
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode()


def raw_get(url: str, path: str, host: str | None = None):
    """A GET with the path sent exactly as written (no client normalises it)."""
    h, port = url[len("http://"):].rstrip("/").rsplit(":", 1)
    conn = http.client.HTTPConnection(h, int(port), timeout=30)
    try:
        conn.putrequest("GET", path, skip_host=host is not None)
        if host is not None:
            conn.putheader("Host", host)
        conn.endheaders()
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def test_it_listens_on_loopback_and_says_so(server):
    banner = server["proc"].banner
    assert server["url"].startswith("http://127.0.0.1:") and "listening on 127.0.0.1" in banner
    assert "this machine only" in banner
    # A page elsewhere that renames itself to reach the loopback server is refused.
    status, _ = raw_get(server["url"], "/api/runs", host="attacker.example")
    assert status == 400
    assert raw_get(server["url"], "/api/runs", host="localhost")[0] == 200


def test_the_page_is_one_static_file_that_fetches_nothing_from_outside(server):
    status, page, _ = request(server["url"], "GET", "/")
    text = page.decode()
    assert status == 200 and "<script>" in text
    assert "http://" not in text and "https://" not in text and "src=" not in text.split("<script>")[0]


def test_each_model_gets_the_panels_its_declarations_give(server):
    panels = {r["model"]: r["panels"] for r in server["listing"]["runs"]}
    assert panels["vae"] == ["sample", "code", "interpolate"]
    assert panels["cvae"] == ["class", "sample", "code", "interpolate"]
    assert panels["gan"] == ["sample", "code", "interpolate"]
    assert panels["pixelcnn"] == ["sample", "complete"]
    if "sentence-vae" in panels:
        assert panels["sentence-vae"] == ["sample", "sentences"]


def test_panels_follow_declarations_not_names():
    class Declared:          # any model with these declarations, whatever it is called
        name, modality, abilities, condition_kind = "new-kind", "image", ("complete", "decode"), "class"
    assert views.panels(Declared()) == ["class", "sample", "code", "interpolate", "complete"]
    Declared.modality, Declared.abilities, Declared.condition_kind = "text", ("encode", "decode"), "none"
    assert views.panels(Declared()) == ["sample", "sentences"]


def test_a_decoded_code_is_the_models_own_decoding(server, runs):
    model = genlab.load(runs["vae"])
    z = [0.5, -1.25, 2.0, 0.0]
    status, body = post(server, "vae", "decode", {"z": z})
    assert status == 200
    expected = (model.decode(torch.tensor([z])).clamp(0, 1) * 255).round().to(torch.uint8)[0, 0].numpy()
    assert np.array_equal(png_array(body["image"]), expected)
    other = post(server, "vae", "decode", {"z": [3.0, -1.25, 2.0, 0.0]})[1]
    assert not np.array_equal(png_array(other["image"]), expected)        # the slider moved, the picture too


def test_a_class_changes_what_a_conditional_model_draws(server):
    a = png_array(post(server, "cvae", "sample", {"n": 8, "seed": 3, "label": 1})[1]["image"])
    b = png_array(post(server, "cvae", "sample", {"n": 8, "seed": 3, "label": 1})[1]["image"])
    c = png_array(post(server, "cvae", "sample", {"n": 8, "seed": 3, "label": 7})[1]["image"])
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_interpolation_between_codes_and_between_images(server):
    status, body = post(server, "gan", "interpolate", {"a": {"z": [0] * 8}, "b": {"z": [1] * 8}, "steps": 5})
    assert status == 200 and png_array(body["image"]).shape[1] == 5 * (8 + 1) + 1
    status, body = post(server, "vae", "interpolate", {"a": {"test": 0}, "b": {"test": 1}, "steps": 4})
    assert status == 200
    upload = png_url((np.arange(64).reshape(8, 8) * 4).astype(np.uint8))
    status, body = post(server, "vae", "interpolate", {"a": {"image": upload}, "b": {"test": 1}, "steps": 3})
    assert status == 200
    # A GAN has no encoder: an image as an end is refused with a reason, not tried.
    status, body = post(server, "gan", "interpolate", {"a": {"test": 0}, "b": {"z": [0] * 8}})
    assert status == 400 and "cannot encode" in body["error"]


def test_every_bound_is_checked(server):
    bad = [("vae", "decode", {"z": [0, 0, 0]}), ("vae", "decode", {"z": [0, 0, 0, 4.5]}),
           ("vae", "decode", {"z": [0, 0, 0, float("nan")]}), ("vae", "decode", {"z": "0,0,0,0"}),
           ("vae", "sample", {"n": 0}), ("vae", "sample", {"n": 10**9}), ("vae", "sample", {"n": 2.5}),
           ("vae", "sample", {"seed": -1}), ("vae", "sample", {"label": 1}), ("cvae", "sample", {"label": 10}),
           ("cvae", "sample", {"label": True}), ("vae", "interpolate", {"a": {"test": 0}, "b": {"test": 1}, "steps": 1}),
           ("vae", "interpolate", {"a": {"test": 0}, "b": {"test": 10**6}}),
           ("vae", "interpolate", {"a": {"test": 0}, "b": {"test": 1}, "steps": 1000}),
           ("vae", "interpolate", {"a": {"path": "/etc/passwd"}, "b": {"test": 1}}),
           ("pixelcnn", "decode", {"z": [0]}), ("vae", "complete", {"input": {"test": 0}, "mask": "bottom-half"}),
           ("pixelcnn", "complete", {"input": {"test": 0}, "mask": "01"}),
           ("pixelcnn", "complete", {"input": {"test": 0}, "mask": "0" * 64})]
    if "sentence-vae" in server["keys"]:
        bad += [("sentence-vae", "sample", {"temperature": 0}), ("sentence-vae", "sentences", {"a": "", "b": "x"}),
                ("sentence-vae", "sentences", {"a": "x" * 10_000, "b": "y"})]
    for model, action, body in bad:
        status, answer = post(server, model, action, body)
        assert status == 400 and isinstance(answer, dict) and answer["error"], (model, action, body, answer)
    assert request(server["url"], "POST", "/api/run/99/sample", {})[0] == 404
    assert request(server["url"], "POST", "/api/run/0/no-such-action", {})[0] == 404


def test_an_upload_that_is_not_an_image_or_too_large_is_refused_and_the_server_goes_on(server):
    status, body = post(server, "vae", "encode", {"input": {"image": "data:image/png;base64,"
                                                            + base64.b64encode(b"not an image at all").decode()}})
    assert status == 400 and "cannot be read as images" in body["error"]
    wav = b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(30)
    status, body = post(server, "vae", "encode", {"input": {"image": base64.b64encode(wav).decode()}})
    assert status == 400 and "cannot be read as images" in body["error"]
    # A PNG whose header claims 100,000 × 100,000 pixels: refused from its header, never decoded.
    bomb = io.BytesIO()
    Image.new("L", (1, 1)).save(bomb, format="PNG")
    data = bytearray(bomb.getvalue())
    data[16:24] = (100_000).to_bytes(4, "big") * 2
    status, body = post(server, "vae", "encode", {"input": {"image": base64.b64encode(bytes(data)).decode()}})
    assert status == 400 and "error" in body
    big = base64.b64encode(os.urandom(3 * 1024 * 1024)).decode()
    status, body = post(server, "vae", "encode", {"input": {"image": big}})
    assert status == 413 and "larger than" in body["error"]
    status, body = post(server, "vae", "encode", {"input": {"image": "data:image/png;base64,@@@"}})
    assert status == 400
    status, body = post(server, "vae", "encode", {"input": {"image": png_url(np.zeros((20, 30, 3), np.uint8))}})
    assert status == 200 and len(body["z"]) == 4          # any size and colour is read as the model's input
    assert request(server["url"], "GET", "/api/runs")[0] == 200


def test_bodies_must_be_small_json_objects(server):
    url = server["url"]
    status, payload, _ = request(url, "POST", "/api/run/0/sample", None, headers={"Content-Type": "text/plain"})
    assert status == 415
    h, port = url[len("http://"):].rstrip("/").rsplit(":", 1)
    for body, headers, expected in [(b"[1, 2]", {}, 400), (b"{not json", {}, 400),
                                    (b"{}", {"Content-Length": str(10**8)}, 413)]:
        conn = http.client.HTTPConnection(h, int(port), timeout=30)
        conn.putrequest("POST", "/api/run/0/sample")
        conn.putheader("Content-Type", "application/json")
        conn.putheader("Content-Length", headers.get("Content-Length", str(len(body))))
        conn.endheaders()
        conn.send(body)
        r = conn.getresponse()
        assert r.status == expected, body
        conn.close()


def test_no_request_reaches_a_path_outside_the_runs(server, runs, tmp_path_factory):
    url, key = server["url"], server["keys"]["vae"]
    run = runs["vae"]
    secret = tmp_path_factory.mktemp("outside") / "secret.png"
    secret.write_bytes(b"\x89PNG secret outside the run")
    (run / "leak.png").symlink_to(secret)                  # a link inside the run to a file outside it
    (run / "linked").symlink_to(secret.parent, target_is_directory=True)
    before = {p: p.stat().st_mtime_ns for p in run.rglob("*") if p.is_file() and not p.is_symlink()}
    assert raw_get(url, f"/files/{key}/curves.png")[1][:4] == b"\x89PNG"
    attempts = ["/files/{k}/../../../../etc/passwd", "/files/{k}/..%2f..%2f..%2fetc%2fpasswd",
                "/files/{k}/%2e%2e/%2e%2e/%2e%2e/etc/passwd", "/files/{k}/%252e%252e/config.json",
                "/files/{k}//etc/passwd", "/files/{k}/%2Fetc%2Fpasswd", "/files/{k}/..\\..\\config.json",
                "/files/{k}/leak.png", "/files/{k}/linked/secret.png", "/files/{k}/model.safetensors",
                "/files/{k}/trainer.pt", "/files/{k}/.lock", "/files/{k}/samples/../../vae/curves.png",
                "/files/..%2f{k}/curves.png", "/files/%2e%2e/curves.png", "/files/{k}/curves.png%00.txt",
                "/files/{k}/C:%5cwindows%5cwin.ini"]
    for attempt in attempts:
        status, payload = raw_get(url, attempt.format(k=key))
        assert status in (400, 404), attempt
        assert b"root:" not in payload and b"secret" not in payload, attempt
    for relative in ["../config.json", "/etc/passwd", "leak.png", "linked/secret.png", "samples/../config.json",
                     "a\\b.png", "x\x00.png"]:
        with pytest.raises(Refused):
            run_file(run, relative)
    after = {p: p.stat().st_mtime_ns for p in run.rglob("*") if p.is_file() and not p.is_symlink()}
    assert after == before                                 # nothing in the run was written either
    (run / "leak.png").unlink()
    (run / "linked").unlink()


def test_completion_streams_frames_that_end_in_the_models_completion(server, runs):
    status, payload, _ = request(server["url"], "POST", f"/api/run/{server['keys']['pixelcnn']}/complete",
                                 {"input": {"test": 3}, "mask": "bottom-half", "seed": 5})
    assert status == 200
    evs = events(payload)
    frames = [e for e in evs if "image" in e]
    assert evs[-1] == {"end": True} and len(frames) > 4
    assert [e["done"] for e in frames] == sorted(e["done"] for e in frames) and frames[-1]["done"] == 32
    model = genlab.load(runs["pixelcnn"])
    run = Run.open(runs["pixelcnn"])
    x = views.test_input(model, modalities.of_run(run).reload(run, warn=False), 3)
    expected = (completions(model, x, "bottom-half", 1, seed=5)[2, 0] * 255).round().to(torch.uint8).numpy()
    final = png_array(frames[-1]["image"])
    assert np.array_equal(final, expected)
    # Every frame agrees with the last wherever it has drawn: the picture grows, it does not flicker.
    for e in frames:
        drawn = np.zeros(64, bool)
        drawn[:32 + e["done"]] = True
        assert np.array_equal(png_array(e["image"]).reshape(-1)[drawn], final.reshape(-1)[drawn])


def test_the_page_stays_responsive_while_a_model_works(server):
    url, key = server["url"], server["keys"]["pixelcnn"]
    finished = {}

    def complete():
        finished["stream"] = request(url, "POST", f"/api/run/{key}/complete",
                                     {"input": {"test": 1}, "mask": "75%", "seed": 1})
        finished["at"] = time.perf_counter()

    t = threading.Thread(target=complete)
    t.start()
    time.sleep(0.3)
    status, _, took = request(url, "GET", "/api/runs")
    asked_at = time.perf_counter()
    t.join()
    assert status == 200 and took < 1.0
    assert finished["stream"][0] == 200 and finished["at"] > asked_at     # answered while the model was busy


@pytest.mark.skipif(not corpus_availability()["tang300"][0],
                    reason="the tang300 corpus (Debian's fortunes-zh) is not installed")
def test_lines_between_two_lines_match_the_command_line(server, runs, capsys):
    a = post(server, "sentence-vae", "input", {"input": {"test": 0}})[1]["line"]
    b = post(server, "sentence-vae", "input", {"input": {"test": 1}})[1]["line"]
    status, body = post(server, "sentence-vae", "sentences", {"a": a, "b": b, "steps": 5})
    assert status == 200 and len(body["lines"]) == 5
    model = genlab.load(runs["sentence-vae"])
    capsys.readouterr()
    modalities.get("text").explore(model, "interpolate", {"a": a, "b": b, "steps": 5, "method": "linear"})
    assert capsys.readouterr().out.splitlines() == body["lines"]


def test_a_short_load_of_every_kind_fails_nothing_and_keeps_memory_flat(server):
    out = run_load(server["url"], server["proc"].pid, clients=4, seconds=20, requests=60)
    assert out["failures"] == [] and out["requests"] >= 20
    assert out["rss_mib_end"] - out["rss_mib_after_warmup"] < 40, out
    print(f"{out['requests_per_s']:.1f} requests/s, p95 {out['p95_s'] * 1e3:.0f} ms")


def test_bad_command_lines_are_one_line(runs, tmp_path, capsys):
    assert main(["serve", str(tmp_path / "nothing")]) == 2
    assert "not a run directory" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        main(["serve", str(runs["vae"]), "--port", "70000"])
    assert exit_.value.code == 2 and "--port must be at most 65,535" in capsys.readouterr().err
    assert main(["serve", str(runs["vae"]), "--host", "no.such.host.invalid"]) == 2
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        assert main(["serve", str(runs["vae"]), "--port", str(taken.getsockname()[1])]) == 2
    assert "cannot listen" in capsys.readouterr().err
