"""The zoo's trainings: one recorded `genlab train` command per entry, each run on one CPU thread with a
checkpoint every few minutes, so a long one survives an interrupted sitting (run the same command again:
it resumes exactly where it stopped).

    python benchmarks/zoo.py list                              # the entries and their commands
    python benchmarks/zoo.py train vpn-moving-mnist-32         # train (or resume) one or more entries
    python benchmarks/zoo.py train --all --runs zoo-runs       # every entry not finished yet, in order

Runs are written under --runs (default zoo-runs/NAME); `genlab zoo` ships the finished ones.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

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
    "sentence-vae-tang300": ("sentence VAE on the Tang poems", ["sentence-vae", "--data", "tang300"]),
    "cyclegan-mnist-printed": ("CycleGAN, handwritten ↔ printed digits",
                               ["cyclegan", "--data-a", "mnist", "--data-b", "printed-digits"]),
}
CHECKPOINT_EVERY = 100     # steps between checkpoints inside an epoch


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


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("action", choices=("list", "train"))
    p.add_argument("names", nargs="*")
    p.add_argument("--all", action="store_true", help="every entry, in the order listed")
    p.add_argument("--runs", type=Path, default=Path("zoo-runs"))
    a = p.parse_args()
    names = list(ENTRIES) if a.all or (a.action == "list" and not a.names) else a.names
    unknown = [n for n in names if n not in ENTRIES]
    if unknown:
        sys.exit(f"zoo.py: no entry {unknown[0]!r}; entries: {', '.join(ENTRIES)}")
    for name in names:
        if a.action == "list":
            print(f"{name:26s} {ENTRIES[name][0]}\n    {' '.join(command(name, a.runs / name))}")
        else:
            train(name, a.runs)


if __name__ == "__main__":
    main()
