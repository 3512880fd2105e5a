"""Bad input of every kind: exit status 2, ONE line `genlab: error: ...` that names the problem (and the
file or value), never a traceback, and nothing already written lost or changed."""
import json
import math
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import genlab
from conftest import genlab as run_cli
from genlab.models import model_names
from genlab.models.latent.vae import VAE
from genlab.runs import Run

# ---- helpers -------------------------------------------------------------------------------------------


def snapshot(root):
    """Every file and folder under root (hidden ones too): a file's bytes, None for a folder."""
    return {p.relative_to(root).as_posix(): p.read_bytes() if p.is_file() else None
            for p in sorted(root.rglob("*"))}


def error_line(code, out, err, *names):
    """Asserts the refusal's shape and returns its one line."""
    assert "Traceback" not in out + err
    assert code == 2, err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("genlab: error: ")
    for name in names:
        assert str(name) in lines[0], f"{name!r} not named in: {lines[0]}"
    return lines[0]


def refused(capsys, argv, *names):
    try:
        code = run_cli(*argv)
    except SystemExit as e:                   # argparse's usage errors exit from inside main(), as --help does
        code = e.code
    out, err = capsys.readouterr()
    return error_line(code, out, err, *names)


def write_png(path, seed=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.RandomState(seed).randint(0, 256, (8, 8), dtype=np.uint8)).save(path)
    return path


@pytest.fixture(autouse=True)
def in_tmp(tmp_path, monkeypatch):
    """Every command runs in an empty folder, so that default outputs (runs/, samples.png) show up."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def vae_copy(runs, tmp_path):
    """A private copy of the trained VAE run, free to damage."""
    return shutil.copytree(runs["vae"], tmp_path / "run")


# ---- train: unknown names and bad options, refused before anything is written ------------------------

TRAIN_CASES = [
    (["nosuchmodel"], ["unknown model", "'nosuchmodel'", "known: " + ", ".join(model_names())]),
    (["vae", "--data", "nosuchdata"], ["unknown data set", "'nosuchdata'", "digits", "folder:PATH"]),
    (["vae", "--epochs", "x"], ["--epochs", "whole number", "'x'"]),
    (["vae", "--epochs", "0"], ["--epochs", "positive", "'0'"]),
    (["vae", "--batch-size", "-3"], ["--batch-size", "positive", "'-3'"]),
    (["vae", "--lr", "0"], ["--lr", "positive", "'0'"]),
    (["vae", "--set", "latent_dim=abc"], ["latent_dim", "int", "'abc'"]),
    (["vae", "--set", "latent_dim=0"], ["latent_dim", "at least 1", "'0'"]),
    (["vae", "--set", "nosuchkey=1"], ["unknown setting", "'nosuchkey'", "latent_dim"]),
    (["vae", "--set", "novalue"], ["--set", "KEY=VALUE", "'novalue'"]),
    (["vae", "--latent-dim", "1.5"], ["latent_dim", "int", "'1.5'"]),
    (["vae", "--likelihood", "nonsense"], ["likelihood", "bernoulli", "'nonsense'"]),
    (["vae", "--binarize", "maybe"], ["--binarize", "'maybe'", "dynamic"]),
    (["vae", "--device", "tpu"], ["--device", "'tpu'", "cpu"]),
]


@pytest.mark.parametrize("argv, names", TRAIN_CASES, ids=[" ".join(argv) for argv, _ in TRAIN_CASES])
def test_train_refuses_bad_names_and_options(capsys, tmp_path, argv, names):
    refused(capsys, ["train", *argv], *names)
    assert not any(tmp_path.iterdir())        # no runs/ folder, no half-made run


@pytest.mark.parametrize("case", ["empty", "missing", "unreadable"])
def test_train_refuses_a_bad_image_folder(capsys, tmp_path, case):
    folder = tmp_path / "images"
    if case == "empty":
        folder.mkdir()
        names = ["no images found", str(folder)]
    elif case == "missing":
        names = ["does not exist", str(folder)]
    else:
        for i in range(4):
            write_png(folder / f"good{i}.png", seed=i)
        (folder / "bad.png").write_bytes(os.urandom(300))
        names = ["cannot read image", str(folder / "bad.png")]
    refused(capsys, ["train", "vae", "--data", f"folder:{folder}", "--out", tmp_path / "out"], *names)
    assert not (tmp_path / "out").exists()


def test_train_refuses_to_overwrite_a_run(capsys, vae_copy):
    before = snapshot(vae_copy)
    refused(capsys, ["train", "vae", "--epochs", "1", "--out", vae_copy], str(vae_copy), "already exists", "--resume")
    assert snapshot(vae_copy) == before


# ---- a path that is not a run directory -------------------------------------------------------------

@pytest.mark.parametrize("command", [["sample", "{}"], ["eval", "{}"], ["explore", "{}", "grid"],
                                     ["train", "--resume", "{}"]], ids=lambda c: " ".join(c))
def test_a_folder_that_is_not_a_run(capsys, tmp_path, command):
    folder = tmp_path / "notarun"
    write_png(folder / "picture.png")
    before = snapshot(tmp_path)
    refused(capsys, [a.format(folder) for a in command], str(folder), "not a run directory")
    assert snapshot(tmp_path) == before


# ---- damaged or foreign checkpoints -----------------------------------------------------------------

def truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])


def damage(run, how, runs):
    weights = run / "model.safetensors"
    if how == "truncated":
        truncate(weights)
        return [weights, "truncated"]
    if how == "random bytes":
        weights.write_bytes(os.urandom(4096))
        return [weights, "not a safetensors file"]
    if how == "gmm weights":
        shutil.copyfile(runs["gmm"] / "model.safetensors", weights)
        return [weights, "'gmm'", "'vae'"]
    if how == "another shape":                    # a VAE checkpoint, but config.json says hidden=16
        config = json.loads((run / "config.json").read_text())
        config["config"]["hidden"] = 16
        (run / "config.json").write_text(json.dumps(config))
        return [weights, "does not fit", "size mismatch"]
    raise AssertionError(how)


@pytest.mark.parametrize("command", [["sample", "{}", "-o", "s.png"], ["eval", "{}", "--iwae-k", "0"],
                                     ["train", "--resume", "{}", "--epochs", "40"]],
                         ids=lambda c: " ".join(c[:2]).replace(" {}", ""))
@pytest.mark.parametrize("how", ["truncated", "random bytes", "gmm weights", "another shape"])
def test_a_damaged_or_foreign_checkpoint(capsys, tmp_path, runs, vae_copy, how, command):
    names = damage(vae_copy, how, runs)
    before = snapshot(tmp_path)
    refused(capsys, [a.format(vae_copy) for a in command], *names)
    assert snapshot(tmp_path) == before        # config.json, metrics, samples: all as they were; no s.png


def test_resume_with_a_truncated_trainer_state(capsys, tmp_path, vae_copy):
    truncate(vae_copy / "trainer.pt")
    before = snapshot(tmp_path)
    refused(capsys, ["train", "--resume", vae_copy, "--epochs", "40"], vae_copy / "trainer.pt", "truncated")
    assert snapshot(tmp_path) == before        # in particular config.json keeps its epochs


# ---- bad options against a good run -----------------------------------------------------------------

RUN_CASES = [
    ("vae", ["sample", "{}", "-n", "0"], ["-n", "positive", "'0'"]),
    ("cvae", ["sample", "{}", "--class", "99"], ["--class", "between 0 and 9", "99"]),
    ("vae", ["sample", "{}", "--class", "1"], ["vae is not conditional", "--class"]),
    ("vae", ["sample", "{}", "-o", "sub/out.txt"], ["sub/out.txt", ".png"]),
    ("vae", ["explore", "{}", "grid", "--dims", "0", "0"], ["--dims", "different", "not 0 0"]),
    ("vae", ["explore", "{}", "grid", "--dims", "0", "99"], ["--dims", "between 0 and 3", "99"]),
    ("vae", ["explore", "{}", "style", "picture.png"], ["vae is not conditional", "style"]),
    ("vae", ["explore", "{}", "interpolate", "picture.png", "nosuch.png"], ["cannot read image", "nosuch.png"]),
]


@pytest.mark.parametrize("model, argv, names", RUN_CASES,
                         ids=[f"{argv[0]} {model} {' '.join(argv[2:])}" for model, argv, _ in RUN_CASES])
def test_bad_options_for_a_trained_run(capsys, tmp_path, runs, model, argv, names):
    write_png(tmp_path / "picture.png")
    before, run_before = snapshot(tmp_path), snapshot(runs[model])
    refused(capsys, [a.format(runs[model]) for a in argv], *names)
    assert snapshot(tmp_path) == before         # no output file, no sub/ folder
    assert snapshot(runs[model]) == run_before


# ---- training that diverges -------------------------------------------------------------------------

TINY = ["train", "vae", "--hidden", "32", "--latent-dim", "2", "--batch-size", "256", "--samples", "4"]


def test_a_huge_learning_rate_stops_training_with_one_line(capsys, tmp_path):
    out = tmp_path / "run"
    code = run_cli(*TINY, "--lr", "10", "--epochs", "2", "--out", out)
    stdout, stderr = capsys.readouterr()
    # stderr also holds the "training vae on digits ..." header; the error is the one last line
    assert "Traceback" not in stdout + stderr
    line = error_line(code, "", stderr.splitlines()[-1], "exploded", "epoch 1", "no checkpoint", "--lr")
    assert [ln for ln in stderr.splitlines() if ln.startswith("genlab: error:")] == [line]
    assert not (out / "model.safetensors").exists() and not (out / "metrics.jsonl").exists()


def test_a_loss_that_turns_nan_keeps_the_last_good_checkpoint(capsys, tmp_path, monkeypatch):
    """Epoch 1 trains normally; every step after its checkpoint reports nan: epoch 1 must survive intact."""
    out, state = tmp_path / "run", {}
    real_save, real_step = Run.save_checkpoint, VAE.train_step

    def save(self, model, trainer_state):
        real_save(self, model, trainer_state)
        state["saved"] = True

    def step(self, batch, optimizers):
        logs = real_step(self, batch, optimizers)
        if not state.get("saved"):
            return logs
        state.setdefault("before", snapshot(out))    # the run as it stood when the bad epoch began
        return {**logs, "loss": math.nan}

    monkeypatch.setattr(Run, "save_checkpoint", save)
    monkeypatch.setattr(VAE, "train_step", step)
    code = run_cli(*TINY, "--epochs", "3", "--out", out)
    stdout, stderr = capsys.readouterr()
    assert "Traceback" not in stdout + stderr
    line = error_line(code, "", stderr.splitlines()[-1], "loss became nan", "epoch 2", "checkpoint (epoch 1) is kept")
    assert [ln for ln in stderr.splitlines() if ln.startswith("genlab: error:")] == [line]

    # Epoch 1 intact; config.json gains only the verdict, the step and why it stopped.
    after = snapshot(out)
    config = json.loads(after.pop("config.json"))
    assert config.pop("diverged")["step"] == 7 and config == json.loads(state["before"].pop("config.json"))
    assert after == state["before"]
    assert [json.loads(r)["epoch"] for r in (out / "metrics.jsonl").read_text().splitlines()] == [1]
    model = genlab.load(out)
    assert model.sample(2).shape == (2, 1, 8, 8)


# ---- the real entry point ---------------------------------------------------------------------------

@pytest.mark.parametrize("argv", [["train", "vae", "--epochs", "0"], ["sample", "{run}"]],
                         ids=["argparse error", "truncated checkpoint"])
def test_the_real_command_gives_one_line_and_status_2(tmp_path, vae_copy, argv):
    truncate(vae_copy / "model.safetensors")
    before = snapshot(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "genlab.cli", *[a.format(run=vae_copy) for a in argv]],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120)
    error_line(proc.returncode, proc.stdout, proc.stderr, "model.safetensors" if "sample" in argv else "--epochs")
    assert snapshot(tmp_path) == before
