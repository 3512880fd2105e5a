"""The library: genlab.train / resume / train_from_config / load / sample / evaluate, and the run directory
they share with the command line (config.json read back field by field, old formats included)."""
import json
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

import genlab
from conftest import genlab as run_cli
from test_bad_input import refused

TINY = dict(epochs=2, batch_size=64, latent_dim=2, hidden=64, threads=1, quiet=True, samples=0)


@pytest.fixture(scope="module")
def vae_run(tmp_path_factory):
    return genlab.train("vae", "digits", tmp_path_factory.mktemp("api") / "vae", **TINY)


def test_train_evaluate_and_sample_as_functions(vae_run, tmp_path):
    assert [r["epoch"] for r in vae_run.metrics()] == [1, 2]
    assert vae_run.config["model"] == "vae" and vae_run.config["format"] == 2
    (r,) = genlab.evaluate([vae_run.path], iwae_k=5, threads=1, live=False)
    assert r["nelbo_nats"] > r["iwae_nats"] > 0 and json.loads((vae_run.path / "eval.json").read_text())["model"] == "vae"
    images = genlab.sample(vae_run.path, 4, seed=1)
    assert images.shape == (4, 1, 8, 8) and torch.equal(images, genlab.sample(vae_run.path, 4, seed=1))
    more = genlab.resume(vae_run.path, epochs=3, threads=1, quiet=True)
    assert [row["epoch"] for row in more.metrics()] == [1, 2, 3]


def test_a_run_started_again_from_its_config_is_the_same_run(vae_run, tmp_path):
    first = tmp_path / "first"
    genlab.train("vae", "digits", first, **TINY)
    assert run_cli("train", "--config", first / "config.json", "--out", tmp_path / "again", "--threads", "1") == 0
    a, b = load_file(first / "model.safetensors"), load_file(tmp_path / "again" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    changed = genlab.train_from_config(first / "config.json", tmp_path / "wider", hidden=32, quiet=True, threads=1)
    assert changed.config["config"]["hidden"] == 32 and changed.config["config"]["latent_dim"] == 2


def test_the_list_shows_what_each_model_declares(capsys):
    assert run_cli("train", "--list") == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    assert "bound" in lines["vae"] and "encode, decode" in lines["vae"]
    assert "text" in lines["sentence-vae"] and "class" in lines["cvae"] and "complete" in lines["pixelcnn"]
    assert "exact" in lines["gmm"] and "none" in lines["dcgan"]


def test_python_dash_m_genlab_is_the_command():
    out = subprocess.run([sys.executable, "-m", "genlab", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.startswith("genlab ")


def test_a_run_written_before_the_format_number_still_loads(vae_run, tmp_path):
    import shutil
    old = shutil.copytree(vae_run.path, tmp_path / "old")
    config = json.loads((old / "config.json").read_text())
    del config["format"]
    del config["info"]["kind"]                 # what the first genlab wrote
    (old / "config.json").write_text(json.dumps(config))
    assert genlab.load(old).sample(2).shape == (2, 1, 8, 8)


@pytest.mark.parametrize("change, words", [
    (lambda c: c["config"].update(latent_dim="abc"), ["'latent_dim'", "must be int", "'abc'"]),
    (lambda c: c["config"].update(hidden=10**12), ["'hidden'", "absurdly large"]),
    (lambda c: c.pop("train"), ["'train' is missing"]),
    (lambda c: c.pop("data"), ["'data' is missing"]),
    (lambda c: c["info"].update(shape=[1, 8]), ["data description", "shape"]),
    (lambda c: c.update(format=99), ["format 99", "upgrade genlab"]),
    (lambda c: c["train"].update(epochs="ten"), ["'epochs'", "whole number"]),
])
def test_a_damaged_config_is_named_by_its_field(vae_run, tmp_path, capsys, change, words):
    import shutil
    run = shutil.copytree(vae_run.path, tmp_path / "run")
    config = json.loads((run / "config.json").read_text())
    change(config)
    (run / "config.json").write_text(json.dumps(config))
    for argv in (["sample", run, "-o", tmp_path / "s.png"], ["eval", run], ["train", "--resume", run, "--epochs", "5"]):
        refused(capsys, argv, *words)
    assert not (tmp_path / "s.png").exists()


def test_the_library_refuses_bad_values_with_one_line(tmp_path):
    with pytest.raises(genlab.UserError, match="--epochs must be positive"):
        genlab.train("vae", "digits", tmp_path / "x", epochs=0)
    with pytest.raises(genlab.UserError, match="sentence-vae models text"):
        genlab.train("sentence-vae", "digits", tmp_path / "y")
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()
