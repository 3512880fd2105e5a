"""The zoo's trainings: one recorded `genlab train` command per entry, each run on one CPU thread with a
checkpoint every few minutes, so a long one survives an interrupted sitting (run the same command again:
it resumes exactly where it stopped).

    python benchmarks/zoo.py list                              # the entries and their commands
    python benchmarks/zoo.py train vpn-moving-mnist-32         # train (or resume) one or more entries
    python benchmarks/zoo.py train --all --runs zoo-runs       # every entry not finished yet, in order
    python benchmarks/zoo.py pack vpn-moving-mnist-32          # a finished run into genlab's zoo, with its card
    python benchmarks/zoo.py card vpn-moving-mnist-32          # its card written again (notes, wording)

Runs are written under --runs (default zoo-runs/NAME). `pack` copies a finished run into src/genlab/zoo/NAME:
config.json, its weights in float16 where the test figure stays within its ± (float32 where not), a picture
of what it draws, and its card (README.md and card.json: the command, the training time and machine, the
figures of `genlab eval` with their ± and baseline). An entry already there is replaced only with --replace.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

ZOO = Path(__file__).resolve().parents[1] / "src" / "genlab" / "zoo"
# What `pack` draws for the card's picture, by kind of data: the file and the options of `genlab sample`.
PICTURES = {"image": ("samples.png", ["-n", "64"]), "video": ("clips.gif", ["-n", "4", "--frames", "10"]),
            "audio": ("samples.wav", ["-n", "8"]), "text": ("samples.txt", ["-n", "10"])}

# name: (the lecture's system it shows, the arguments of `genlab train` after the model name).
# Epochs are fixed, not a time budget, so the command alone gives the same weights on any machine.
ENTRIES: dict[str, tuple[str, list[str]]] = {
    "vpn-moving-mnist-32": ("next-frame video (Video Pixel Networks)",
                            ["vpn", "--data", "moving-mnist-32", "--epochs", "8"]),
    "wavenet-spoken-digits": ("WaveNet, conditioned on the spoken word",
                              ["wavenet", "--data", "spoken-digits", "--conditional", "true", "--epochs", "40"]),
    "text2img-mnist": ("text to image (GAN-CLS)", ["text2img", "--data", "mnist", "--epochs", "25"]),
    "cgan-mnist": ("conditional GAN", ["cgan", "--data", "mnist"]),
    "cvae-mnist": ("conditional VAE", ["cvae", "--data", "mnist"]),
    "vae-2d-mnist": ("VAE with a 2-d code: the code grid", ["vae", "--data", "mnist", "--latent-dim", "2"]),
    "dcgan-fashion-mnist": ("DCGAN", ["dcgan", "--data", "fashion-mnist"]),
    "wgan-gp-fashion-mnist": ("WGAN-GP", ["wgan-gp", "--data", "fashion-mnist"]),
    "made-mnist": ("MADE (component by component)", ["made", "--data", "mnist"]),
    "glow-mnist": ("Glow (normalising flow)", ["glow", "--data", "mnist"]),
    "rbm-mnist": ("restricted Boltzmann machine", ["rbm", "--data", "mnist"]),
    "ddpm-mnist": ("DDPM (diffusion)", ["ddpm", "--data", "mnist"]),
    "gsn-mnist": ("generative stochastic network (a Markov chain)", ["gsn", "--data", "mnist"]),
    "sentence-vae-tang300": ("sentence VAE on the Tang poems", ["sentence-vae", "--data", "tang300"]),
    "cyclegan-mnist-printed": ("CycleGAN, handwritten ↔ printed digits",
                               ["cyclegan", "--data-a", "mnist", "--data-b", "printed-digits"]),
}
# What each entry does not do yet, in plain words, for its card (measured on the packed weights).
NOTES = {
    "cvae-mnist": "classes.png draws the classes 0 to 9 in columns: many samples are blurred and a fair share "
                  "do not read as the class asked for: the class agreement above is far from the lecture's 95% at these "
                  "defaults (8 epochs, 4 minutes).",
    "vae-2d-mnist": "Two numbers of code cannot hold a digit's details: samples and the grid are blurred, and a "
                    "few regions of the map draw shapes between digits.",
    "vpn-moving-mnist-32": "Given 10 frames, its first drawn frame keeps both digits where they were; from the second "
                           "on, each frame drawn from frames it drew itself, the digits break into strokes and then "
                           "noise within 3 to 5 frames (clips.png: red rows against the green truth). Its likelihood "
                           "of the true next frames is far ahead of both baselines; its long continuations are not.",
    "wavenet-spoken-digits": "It does not say the words yet. Its samples (samples.png: waveform and spectrogram "
                             "of the words zero to seven) are bursts of noisy sound from 40 ms to a whole second, "
                             "then silence; seven.wav asks for \"seven\" three times. The audio classifier reads "
                             "the asked word in 13% of samples (chance 7%, one word in 14). Its likelihood of real "
                             "clips is far ahead of both baselines; its samples are not speech.",
    "gsn-mnist": "Its chain mixes slowly: it holds one digit for tens of steps before it walks to another "
                 "(chain.png: a six for 90 steps, then an eight, a five, a three), and its states are blurred "
                 "digits. Its CSL estimate is far behind the exact NLL of MADE or a PixelCNN on the same data "
                 "(benchmarks/parzen.py: about 105 and 100 nats after 3 minutes each).",
}
# More pictures for some entries: the file, and the genlab command (after the run) that writes it.
EXTRA = {"vae-2d-mnist": [("grid.png", ["explore", "{run}", "grid", "--steps", "15"])],
         "gsn-mnist": [("chain.png", ["sample", "{run}", "-n", "48", "--chain", "--thin", "2", "--mean"])],
         "cvae-mnist": [("classes.png", ["sample", "{run}", "-n", "80", "--nrow", "10"])],
         "wavenet-spoken-digits": [("seven.wav", ["sample", "{run}", "--class", "7", "-n", "3"])]}
# The lecture's goals, as (figure, "≥" or "≤", value, in words): the card states each
# beside its figure, met or not.
GOALS = {
    "cgan-mnist": ("class_agreement", "≥", 0.95, "the classifier reads the asked class in ≥ 95% of samples"),
    "cvae-mnist": ("class_agreement", "≥", 0.95, "the classifier reads the asked class in ≥ 95% of samples"),
    "text2img-mnist": ("class_agreement", "≥", 0.95,
                       "the classifier reads the class a held-out image's caption names in ≥ 95% of samples"),
    "wavenet-spoken-digits": ("class_agreement", "≥", 0.5,
                              "the audio classifier recognises the asked word in ≥ 50% of samples"),
}
# Goals measured by a command of their own (the figures too many for a card's table), in words.
GOALS_SAID = {
    "vpn-moving-mnist-32": (
        "Goal: the mnist classifier reads the true digits in the first three drawn frames at least as often as in "
        "copies of the last context frame, and the digits' position error is below copying's from frame 2 on: not "
        "met. `genlab eval zoo:vpn-moving-mnist-32 --metrics continuation,fid` (100 held-out clips, 10 frames "
        "given): its digits read as the truth's in 0.36, 0.20 and 0.16 of frames 1 to 3 against 0.78, 0.76 and "
        "0.73 for copying; its position error is below copying's at frames 2 (2.96 ± 0.12 px against 3.27 ± 0.06) "
        "and 5, level with it elsewhere, and from frame 6 on no better than putting each digit at the centre; "
        "frame FID 19.9 ± 1.8 against a real-versus-real floor of 0.5."),
}
# Sample figures every card of a kind of data carries (computed from the shipped weights, SAMPLES samples),
# and for conditional models the class agreement.
QUALITY = {"image": ["fid", "memorisation"], "audio": ["fid", "memorisation"]}
SAMPLES = {"image": 1000, "audio": 100}        # sound is drawn a sample at a time: 100 clips, minutes
CHECKPOINT_EVERY = 100     # steps between checkpoints inside an epoch
MAX_TRAINER_BYTES = 10 * 2**20   # an optimiser state past this is not shipped: the copy trains anew from the weights


def command(name: str, out: Path) -> list[str]:
    _, args = ENTRIES[name]
    return ["genlab", "train", *args, "--threads", "1", "--checkpoint-every", str(CHECKPOINT_EVERY),
            "--out", str(out)]


def finished(out: Path) -> bool:
    cfg, metrics = out / "config.json", out / "metrics.jsonl"
    if not (cfg.is_file() and metrics.is_file()):
        return False
    epochs = json.loads(cfg.read_text())["train"]["epochs"]
    return sum(1 for line in metrics.read_text().splitlines() if line.strip()) >= epochs


def train(name: str, runs: Path) -> None:
    out = runs / name
    if finished(out):
        print(f"{name}: finished already ({out})", flush=True)
        return
    cmd = (["genlab", "train", "--resume", str(out), "--threads", "1"] if (out / "config.json").is_file()
           else command(name, out))
    print(f"{name}: {' '.join(cmd)}", flush=True)
    t = time.time()
    subprocess.run(cmd, check=True)
    print(f"{name}: {(time.time() - t) / 60:.1f} min this sitting", flush=True)


def machine() -> str:
    """The CPU the zoo's trainings ran on (each on one thread)."""
    from genlab.training.acceleration import describe_machine
    return describe_machine() + ", 1 thread"


def card_metrics(path: Path) -> list[str]:
    """The figures a card carries: the likelihood, the sample figures of its kind of data, and the class
    agreement of a conditional model."""
    import genlab
    from genlab import modalities
    from genlab.runs import Run
    kind = modalities.of_run(Run.open(path))
    metrics = ["likelihood"] + [m for m in QUALITY.get(kind.name, []) if m in kind.sample_metrics]
    if genlab.load(str(path)).condition_kind != "none" and "classes" in kind.sample_metrics:
        metrics.append("classes")
    return metrics


def independent_fid(path: Path, n: int) -> float:
    """The FID of n images whose pixels are drawn each on its own from the training split's marginals, judged as
    the run's samples are (the same feature network, reference and count): the card's image baseline."""
    import torch
    from defaults import independent_pixel_images
    from genlab import modalities
    from genlab.evaluation.quality import SampleQuality
    from genlab.runs import Run
    run = Run.open(path)
    d = run.config["data"]
    ds = modalities.of_run(run).reload(run, warn=False)
    judge = SampleQuality(["fid"], n, None, torch.device("cpu")).judge(d.get("hash"), ds, d["binarize"], False)
    return judge.judge(independent_pixel_images(ds.train_x, d["binarize"], judge.n))["fid"]


def figures(path: Path, metrics: list[str]) -> dict:
    import genlab
    from genlab import modalities
    from genlab.runs import Run
    n = SAMPLES.get(modalities.of_run(Run.open(path)).name) if len(metrics) > 1 else None
    [r] = genlab.evaluate([str(path)], metrics, iwae_k=0, samples=n, device="cpu", threads=2, live=False)
    if "fid" in r and modalities.of_run(Run.open(path)).name == "image":
        r["independent_fid"] = independent_fid(path, n)
    return r


def headline(r: dict) -> tuple[str, float, float]:
    """The card's first figure: the likelihood (or its bound), else the class agreement, else the FID."""
    from genlab.evaluation.likelihood import headline as key_of
    key = key_of(r) or next((k for k in r if k.endswith("_nats_per_line")), None)
    key = key or ("class_agreement" if "class_agreement" in r else "fid")
    return key, r[key], r.get(f"{key}_se", r.get(f"{key}_std", 0.0))


def same_weights(a: Path, b: Path) -> bool:
    from safetensors import safe_open
    if not a.is_file():
        return False
    with safe_open(str(a), "pt") as x, safe_open(str(b), "pt") as y:
        return (x.metadata() == y.metadata() and sorted(x.keys()) == sorted(y.keys())
                and all(x.get_tensor(k).equal(y.get_tensor(k)) for k in x.keys()))


def pack(name: str, runs: Path, replace: bool) -> Path:
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    src, dest = runs / name, ZOO / name
    if not finished(src):
        sys.exit(f"zoo.py: {src} has not finished its epochs: train it first")
    if dest.exists() and not replace:
        sys.exit(f"zoo.py: {dest} exists; --replace only when the new figures beat its card's beyond their ±")
    metrics = card_metrics(src)
    full = figures(src, metrics)
    key, value, se = headline(full)
    tmp = ZOO / f".{name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    shutil.copy(src / "config.json", tmp / "config.json")
    # The optimiser's state and the epochs' figures, so that a copy (genlab zoo copy) resumes where it stopped;
    # the state only where it is small (Adam's is twice the weights in float32: the zoo stays within 50 MB).
    shutil.copy(src / "metrics.jsonl", tmp / "metrics.jsonl")
    resumable = (src / "trainer.pt").stat().st_size <= MAX_TRAINER_BYTES
    if resumable:
        shutil.copy(src / "trainer.pt", tmp / "trainer.pt")
    state = load_file(str(src / "model.safetensors"))
    with safe_open(str(src / "model.safetensors"), "pt") as f:
        meta = f.metadata() or {}
    save_file({k: v.half() if v.is_floating_point() else v for k, v in state.items()}, str(tmp / "model.safetensors"),
              metadata=meta)
    if same_weights(dest / "model.safetensors", tmp / "model.safetensors"):   # a card written again: the file
        shutil.copy(dest / "model.safetensors", tmp / "model.safetensors")     # as it was, no new bytes to ship
    half = figures(tmp, metrics)
    dtype = "float16"
    if abs(half[key] - value) > se:              # the narrower weights move the figure: keep float32
        shutil.copy(src / "model.safetensors", tmp / "model.safetensors")
        half, dtype = full, "float32"
    # The trainer state names the weights it was saved with by their digest: the shipped ones, now.
    import torch
    import genlab
    from genlab.training.trainer import weights_digest
    if resumable:
        state = torch.load(tmp / "trainer.pt", map_location="cpu", weights_only=True)
        state["weights_digest"] = weights_digest(genlab.load(str(tmp)))
        torch.save(state, tmp / "trainer.pt")
    cfg = json.loads((src / "config.json").read_text())
    rows = [json.loads(line) for line in (src / "metrics.jsonl").read_text().splitlines() if line.strip()]
    minutes = sum(r.get("seconds", 0.0) for r in rows) / 60
    from genlab import modalities
    from genlab.runs import Run
    kind = modalities.of_run(Run.open(tmp)).name
    picture, options = PICTURES[kind]
    subprocess.run(["genlab", "sample", str(tmp), *options, "-o", str(tmp / picture), "--threads", "2"], check=True)
    for file, command in EXTRA.get(name, []):
        subprocess.run(["genlab", *[str(tmp) if c == "{run}" else c for c in command], "-o", str(tmp / file),
                        "--threads", "2"], check=True)
    lecture, args = ENTRIES[name]
    card = {"name": name, "lecture": lecture, "model": cfg["model"], "data": cfg["data"]["spec"], "kind": kind,
            "command": " ".join(["genlab", "train", *args]), "epochs": len(rows), "steps": rows[-1]["step"],
            "training": f"{minutes:.0f} min of training on {machine()}", "weights": dtype, "resumable": resumable,
            "minutes": round(minutes, 1), "metrics": metrics, "samples": half.get("samples"),
            "figures": {k: v for k, v in half.items() if isinstance(v, float)}, "headline_key": key,
            "reference": {k: v for k, v in (half.get("data_reference") or {}).items() if isinstance(v, float)},
            "floor": {k: v for k, v in (half.get("data_floor") or {}).items() if isinstance(v, float)},
            "pictures": sorted(p.name for p in tmp.iterdir() if p.suffix in (".png", ".gif", ".wav", ".txt"))}
    finish_card(card)
    write_card(tmp, card)
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
    size = sum(p.stat().st_size for p in dest.iterdir()) / 2**20
    print(f"{name}: packed into {dest} ({size:.1f} MiB, {dtype} weights); {card['headline']}")
    return dest


NAMES = {"nll_nats": "NLL", "nelbo_nats": "−ELBO", "iwae_nats": "IWAE bound", "nll_csl_nats": "CSL estimate",
         "nll_ais_nats": "AIS estimate"}
BASELINES = {"copy_last_frame_nats": "copying the last frame", "independent_nats": "each pixel on its own",
             "histogram_nats": "each sample on its own (a histogram)", "linear_prediction_nats": "linear prediction",
             "baseline_nll_nats": "each pixel on its own", "baseline_gaussian_nll_nats": "a Gaussian per pixel"}
# What one example is called, by kind of data (older cards name no kind: images).
EXAMPLE = {"image": "image", "audio": "clip", "video": "clip", "text": "line"}


def finish_card(card: dict) -> dict:
    """The card's headline (per frame for video), its sample figures and goal in words, and its notes."""
    f, key = card["figures"], card["headline_key"]
    per = "_per_frame" if f"{key}_per_frame" in f else ""
    if key in SAMPLE_NAMES:
        text = sample_figure(card, key)
    else:
        unit = ("nats per frame" if per else "nats per line" if key.endswith("_per_line")
                else f"nats per {EXAMPLE[card.get('kind', 'image')]}")
        text = f"{NAMES.get(key, key)} {f[key + per]:.1f} ± {f.get(key + per + '_se', 0):.1f} {unit}"
    seen, bases = {"each pixel on its own"} if card.get("kind") == "audio" else set(), []   # (its histogram)
    for k, what in BASELINES.items():
        if isinstance(f.get(k + per if per else k), float) and what not in seen:
            seen.add(what)
            bases.append(f"{what}: {f[k + per if per else k]:.1f}")
    card["headline"] = text + (f" ({'; '.join(bases)})" if bases else "")
    card["sample_figures"] = "; ".join(sample_figure(card, k) for k in SAMPLE_NAMES if k in f and k != key)
    card["goal"] = goal_said(card)
    card["notes"] = NOTES.get(card["name"], "")
    return card


SAMPLE_NAMES = {"class_agreement": "class agreement", "fid": "FID", "copy_excess": "copies beyond real held-out ones'"}


def sample_figure(card: dict, key: str) -> str:
    """A sample figure with its ± and the real data's rows (the held-out images', the floor's) or chance."""
    f, ref, floor = card["figures"], card.get("reference", {}), card.get("floor", {})
    text = f"{SAMPLE_NAMES[key]} {f[key]:.3g} ± {f.get(key + '_std', 0):.2g}"
    beside, held = [], f"real held-out {EXAMPLE[card.get('kind', 'image')]}s"
    if key == "class_agreement":
        beside = [f"{held}: {ref[key]:.3g}" if key in ref else "", f"chance: {f['class_chance']:.2g}"]
    elif key == "fid":
        beside = [f"{held}: {ref[key]:.3g}" if key in ref else "",
                  f"real-versus-real floor: {floor[key]:.3g}" if key in floor else ""]
    beside = [b for b in beside if b]
    return text + (f" ({', '.join(beside)}; {card.get('samples')} samples)" if beside else "")


def goal_said(card: dict) -> str:
    """The lecture's goals for this entry, each met or not with its figure (every image model's: FID below
    independent pixels' and no copying flagged)."""
    f, said = card["figures"], []
    if card["name"] in GOALS_SAID:
        said.append(GOALS_SAID[card["name"]])
    if card["name"] in GOALS:
        key, sense, value, words = GOALS[card["name"]]
        got = f.get(key)
        met = got is not None and (got >= value if sense == "≥" else got <= value)
        said.append(f"Goal: {words}: " + ("not measured on this card." if got is None else
                                          f"{'met' if met else 'not met'} ({SAMPLE_NAMES.get(key, key)} {got:.3g})."))
    if "independent_fid" in f and "fid" in f:
        met = f["fid"] + 2 * f.get("fid_std", 0) < f["independent_fid"] and f.get("copy_excess", 0) <= 0.01
        said.append(f"Goal: FID below that of images whose pixels are drawn each on its own, and no copying "
                    f"flagged: {'met' if met else 'not met'} (FID {f['fid']:.3g} against {f['independent_fid']:.3g}; "
                    f"copies beyond real held-out images' {f.get('copy_excess', 0):+.3f}).")
    return " ".join(said)


def write_card(folder: Path, card: dict) -> None:
    (folder / "card.json").write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    (folder / "README.md").write_text(card_text(card), encoding="utf-8")


def eval_options(card: dict) -> str:
    """The options of `genlab eval` that give the card's figures again."""
    metrics = card.get("metrics", ["likelihood"])
    if metrics == ["likelihood"]:
        return ""
    return f" --metrics {','.join(metrics)} --samples {card['samples']}"


def card_text(card: dict) -> str:
    figures = "\n".join(f"| `{k}` | {v:.4g} |" for k, v in card["figures"].items() if not k.endswith(("_se", "_std")))
    return f"""# zoo:{card['name']}: {card['lecture']}

{card['model']} on {card['data']}, trained by

    {card['command']} --threads 1

for {card['epochs']} epochs ({card['steps']:,} steps): {card['training']}. Weights stored as {card['weights']}
(the test figure below is computed from them).

**{card['headline']}** (`genlab eval zoo:{card['name']}{eval_options(card)}`).
{(chr(10) + 'Samples: ' + card['sample_figures'] + '.' + chr(10)) if card.get('sample_figures') else ''}{(chr(10) + card['goal'] + chr(10)) if card.get('goal') else ''}
    genlab sample zoo:{card['name']} -o {PICTURES[card.get('kind', 'image')][0]}
    genlab zoo copy {card['name']} runs/{card['name']}     # {'to resume it (its optimiser state is here)' if card.get('resumable') else 'a run of your own (no optimiser state is shipped: too large)'}

Pictures here: {', '.join(card['pictures'])}.

{('What it does not do yet: ' + card['notes']) if card.get('notes') else ''}

| figure | value |
| --- | --- |
{figures}
"""


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("action", choices=("list", "train", "pack", "card"))
    p.add_argument("names", nargs="*")
    p.add_argument("--all", action="store_true", help="every entry, in the order listed")
    p.add_argument("--runs", type=Path, default=Path("zoo-runs"))
    p.add_argument("--replace", action="store_true", help="pack: replace an entry already in the zoo")
    a = p.parse_args()
    names = list(ENTRIES) if a.all or (a.action == "list" and not a.names) else a.names
    unknown = [n for n in names if n not in ENTRIES]
    if unknown:
        sys.exit(f"zoo.py: no entry {unknown[0]!r}; entries: {', '.join(ENTRIES)}")
    for name in names:
        if a.action == "list":
            print(f"{name:26s} {ENTRIES[name][0]}\n    {' '.join(command(name, a.runs / name))}")
        elif a.action == "pack":
            pack(name, a.runs, a.replace)
        elif a.action == "card":             # the card written again from its figures (new notes, wording)
            from genlab import modalities
            from genlab.runs import Run
            card = json.loads((ZOO / name / "card.json").read_text())
            card["kind"] = modalities.of_run(Run.open(ZOO / name)).name
            write_card(ZOO / name, finish_card(card))
        else:
            train(name, a.runs)


if __name__ == "__main__":
    main()
