"""The user's path through the command line: train (fixture) → sample → eval → explore → load."""
import json
import subprocess
import sys

import numpy as np
import torch
from PIL import Image

from conftest import genlab


def png(path):
    return np.asarray(Image.open(path))


def test_run_directory_holds_what_design_promises(runs):
    d = runs["vae"]
    for name in ("config.json", "model.safetensors", "trainer.pt", "metrics.jsonl", "steps.jsonl", "curves.png"):
        assert (d / name).is_file(), name
    steps = [json.loads(l) for l in (d / "steps.jsonl").read_text().splitlines()]
    assert [s["step"] for s in steps] == list(range(1, 30 * 45 + 1))      # 30 epochs of 45 batches of 32
    assert all(a["seconds"] < b["seconds"] for a, b in zip(steps, steps[1:]))
    assert sorted(p.name for p in (d / "samples").iterdir())[:2] == ["epoch-0001.png", "epoch-0002.png"]
    cfg = json.loads((d / "config.json").read_text())
    assert cfg["model"] == "vae" and cfg["config"]["latent_dim"] == 4
    assert cfg["data"]["name"] == "digits" and len(cfg["data"]["hash"]) == 16
    assert cfg["data"]["train"] == 1438 and cfg["data"]["test"] == 359


def test_sample_writes_a_grid_and_the_seed_fixes_it(runs, tmp_path):
    a, b, c = tmp_path / "a.png", tmp_path / "b.png", tmp_path / "c.png"
    assert genlab("sample", runs["vae"], "-n", "16", "-o", a, "--seed", "1") == 0
    assert genlab("sample", runs["vae"], "-n", "16", "-o", b, "--seed", "1") == 0
    assert genlab("sample", runs["vae"], "-n", "16", "-o", c, "--seed", "2") == 0
    assert np.array_equal(png(a), png(b)) and not np.array_equal(png(a), png(c))
    assert png(a).shape[0] > 4 * 8                           # a 4×4 grid of enlarged 8×8 digits


def test_conditional_sampling_draws_the_asked_class(runs, tmp_path):
    import genlab as gl
    from genlab.explore.latent import classify

    model = gl.load(runs["cvae"])
    for k in (0, 3, 7):
        x = model.sample(40, condition=torch.tensor(k))
        x = (x > 0.5).float()
        # The model's own classifier (argmax_y p(x|y)) recognises the class it was asked to draw.
        assert (classify(model, x) == k).float().mean() > 0.7, k
    assert genlab("sample", runs["cvae"], "-n", "8", "--class", "3", "-o", runs["cvae"].parent / "c3.png") == 0


def test_eval_json_names_every_metric(runs, capsys):
    capsys.readouterr()
    assert genlab("eval", runs["vae"], "--json", "--iwae-k", "10") == 0
    r = json.loads(capsys.readouterr().out)
    assert {"nelbo_nats", "recon_nats", "kl_nats", "iwae_nats", "baseline_nll_nats", "iwae_k"} <= r.keys()
    assert r["iwae_k"] == 10 and r["test_images"] == 359
    assert json.loads((runs["vae"] / "eval.json").read_text())["iwae_nats"] == r["iwae_nats"]
    assert genlab("eval", runs["gmm"], "--json") == 0
    g = json.loads(capsys.readouterr().out)
    assert {"nll_nats", "nll_bpd"} <= g.keys() and "nelbo_nats" not in g


def test_eval_table_of_several_runs_marks_missing_figures(runs, capsys):
    capsys.readouterr()
    assert genlab("eval", runs["ae"], runs["gmm"], "--iwae-k", "5") == 0
    out = capsys.readouterr().out
    assert "ae" in out and "gmm" in out and "—" in out


def test_explore_grid_interpolate_style(runs, tmp_path):
    g = tmp_path / "g.png"
    assert genlab("explore", runs["vae"], "grid", "--dims", "0", "1", "--steps", "5", "-o", g) == 0
    assert png(g).shape[0] == png(g).shape[1]                # 5×5 square grid
    # Two real digits as files, then a walk between them.
    from genlab.data import load_dataset
    ds = load_dataset("digits")
    for i, name in ((0, "a.png"), (1, "b.png")):
        Image.fromarray(ds.test_x[i, 0].numpy()).save(tmp_path / name)
    i = tmp_path / "i.png"
    assert genlab("explore", runs["vae"], "interpolate", tmp_path / "a.png", tmp_path / "b.png",
                  "--steps", "6", "-o", i) == 0
    assert png(i).shape[1] > 7 * png(i).shape[0]            # one row: the two ends and six steps
    s = tmp_path / "s.png"
    assert genlab("explore", runs["cvae"], "style", tmp_path / "a.png", "-o", s) == 0
    assert png(s).shape[1] >= 10 * png(s).shape[0]           # the example, then each of 10 classes


def test_grid_varies_along_the_swept_dimensions(runs):
    import genlab as gl
    from genlab.explore.latent import grid

    model = gl.load(runs["vae"])
    images = grid(model, (0, 1), steps=5).view(5, 5, -1)
    assert (images[0, 0] - images[-1, -1]).abs().sum() > 1.0    # the corners differ: the code matters


def test_load_in_a_fresh_process(runs):
    code = ("import genlab, torch; m = genlab.load(r'%s'); x = m.sample(3); "
            "mu, lv = m.encode(x); print(tuple(x.shape), tuple(m.decode(mu).shape), float(m.log_prob(x).mean()) < 0)"
            % runs["vae"])
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "(3, 1, 8, 8) (3, 1, 8, 8) True"


def test_data_command_lists_and_describes(tmp_path, capsys):
    capsys.readouterr()
    assert genlab("data") == 0
    listing = capsys.readouterr().out
    assert "digits" in listing and "fashion-mnist" in listing and "folder:PATH" in listing
    assert genlab("data", "digits", "-o", tmp_path / "d.png") == 0
    info = capsys.readouterr().out
    assert "1438" in info and "licence" in info and (tmp_path / "d.png").is_file()


def test_train_help_lists_model_settings(capsys):
    import pytest
    with pytest.raises(SystemExit) as e:
        genlab("train", "vae", "--help")
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "--latent-dim" in out and "size of the code z" in out and "default 16" in out
