"""The adversarial models through the real command line on `digits`: training writes samples and the
indicators, resume is exact, divergence stops cleanly, the conditional GAN draws the class asked for."""
import json

import numpy as np
import pytest
import torch
from PIL import Image

import genlab
from conftest import genlab as run_cli
from genlab import runconfig
from genlab.data import load_dataset, make_info
from genlab.data.containers.loader import Batches
from genlab.models.adversarial.wgan_gp import WGANGP, WGANGPConfig
from genlab.models.base import make_config
from genlab.runs import Run
from genlab.training.callbacks import Callback
from genlab.training.options import TrainOptions
from genlab.training.trainer import Trainer

SMALL = ["--data", "digits", "--batch-size", "64", "--samples", "16", "--latent-dim", "16"]
NETS = {"gan": ["--hidden", "64"], "dcgan": ["--features", "16"], "wgan": ["--hidden", "64"],
        "wgan-gp": ["--hidden", "64"], "cgan": ["--hidden", "64"]}


pytestmark = pytest.mark.usefixtures("one_thread")


def lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.parametrize("model", sorted(NETS))
def test_training_writes_samples_and_the_indicators(tmp_path, model, capsys):
    out = tmp_path / model
    assert run_cli("train", model, *SMALL, *NETS[model], "--epochs", "1", "--out", out) == 0
    grid = np.asarray(Image.open(out / "samples" / "epoch-0001.png"))
    assert grid.shape[0] > 4 * 8 and grid.std() > 0                     # 4×4 enlarged digits, not blank
    steps = lines(out / "steps.jsonl")
    assert len(steps) == 23                                              # 1438 digits in batches of 64
    expected = {"d_loss", "g_loss", "d_real_acc", "d_fake_acc"}
    if model.startswith("wgan"):
        expected.add("wasserstein")                                      # the critic's estimate, every step
    assert expected <= set(steps[0]) and all(0 <= s["d_real_acc"] <= 1 for s in steps)
    row = lines(out / "metrics.jsonl")[0]
    # g_loss on every step (the generator steps every 5th for the WGANs): the epoch's figure is its mean
    assert all(expected <= set(s) for s in steps)
    sizes = [64] * 22 + [1438 - 22 * 64]
    assert row["g_loss"] == pytest.approx(sum(s["g_loss"] * n for s, n in zip(steps, sizes)) / 1438, rel=1e-9)
    assert row["diversity"] > 0 and row["data_diversity"] > 0
    assert row["diversity_ratio"] == pytest.approx(row["diversity"] / row["data_diversity"])
    collapsed = row["diversity_ratio"] < 0.5                              # one epoch: often still collapsed
    assert ("warning" in row) == collapsed
    assert ("genlab: warning: sample diversity" in capsys.readouterr().err) == collapsed
    assert (out / "curves.png").is_file()
    assert genlab.load(out).sample(3).shape == (3, 1, 8, 8)


def test_a_resumed_gan_run_equals_an_uninterrupted_one(tmp_path):
    argv = ["dcgan", *SMALL, *NETS["dcgan"], "--seed", "5"]
    assert run_cli("train", *argv, "--epochs", "3", "--out", tmp_path / "whole") == 0
    assert run_cli("train", *argv, "--epochs", "1", "--out", tmp_path / "split") == 0
    state = torch.load(tmp_path / "split" / "trainer.pt", weights_only=True)
    assert {k: bool(v["state"]) for k, v in state["optimizers"].items()} == {"generator": True,
                                                                             "discriminator": True}
    assert run_cli("train", "--resume", tmp_path / "split", "--epochs", "3") == 0
    drop = {"seconds", "images_per_s"}
    strip = lambda rows: [{k: v for k, v in r.items() if k not in drop} for r in rows]  # noqa: E731
    whole, split = lines(tmp_path / "whole" / "metrics.jsonl"), lines(tmp_path / "split" / "metrics.jsonl")
    assert [r["epoch"] for r in split] == [1, 2, 3]
    assert strip(whole) == strip(split)          # bit for bit: both optimisers' state came back
    from safetensors.torch import load_file
    a, b = (load_file(str(tmp_path / r / "model.safetensors")) for r in ("whole", "split"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def untimed(rows):
    """Rows of metrics.jsonl or steps.jsonl without the figures of time, which differ from run to run."""
    return [{k: v for k, v in r.items() if k not in ("seconds", "images_per_s")} for r in rows]


def test_a_resumed_wgan_gp_run_equals_an_uninterrupted_one(tmp_path):
    """23 steps an epoch, a generator step every 5th: the generator's turn runs across epochs and the
    critic-step count comes back with the weights."""
    argv = ["wgan-gp", *SMALL, *NETS["wgan-gp"], "--seed", "5"]
    assert run_cli("train", *argv, "--epochs", "3", "--out", tmp_path / "whole") == 0
    assert run_cli("train", *argv, "--epochs", "1", "--out", tmp_path / "split") == 0
    assert run_cli("train", "--resume", tmp_path / "split", "--epochs", "3") == 0
    for name in ("metrics.jsonl", "steps.jsonl"):
        whole, split = (untimed(lines(tmp_path / r / name)) for r in ("whole", "split"))
        assert whole == split
    from safetensors.torch import load_file
    a, b = (load_file(str(tmp_path / r / "model.safetensors")) for r in ("whole", "split"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert int(a["critic_steps"]) == 3 * 23


class Kill(Callback):
    """Dies after step k, as a killed process would."""

    def __init__(self, k):
        self.k = k

    def on_step_end(self, trainer, logs):
        if trainer.step == self.k:
            raise KeyboardInterrupt


def test_a_wgan_gp_killed_inside_an_epoch_resumes_to_the_same_weights(tmp_path):
    """Checkpoints every 7 steps, killed after step 16: the resume from step 14 must take the generator
    step of step 15 again, as the uninterrupted run did."""
    ds = load_dataset("digits")
    info = make_info(ds, "none")
    opts = TrainOptions(epochs=2, batch_size=64, seed=4, samples=0, checkpoint_every=7, lr=1e-3)

    def trainer(path, callbacks=None):
        torch.manual_seed(opts.seed)
        model = WGANGP(make_config(WGANGPConfig, {"net": "mlp", "hidden": "32", "latent_dim": "8"}), info)
        run = path if isinstance(path, Run) else Run.create(path, runconfig.build(
            WGANGP, model.config, info, {"spec": "digits", "binarize": "none"}, opts.seed, opts.to_json()))
        train = Batches(ds.train_x[:640], None, binarize="none", batch_size=64, shuffle=True, seed=opts.seed)
        test = Batches(ds.test_x[:64], None, binarize="none", batch_size=64, shuffle=False)
        return Trainer(model, run, train, test, opts, quiet=True, callbacks=callbacks)

    trainer(tmp_path / "whole").fit()
    with pytest.raises(KeyboardInterrupt):
        trainer(tmp_path / "split", callbacks=[Kill(16)]).fit()
    resumed = trainer(Run.open(tmp_path / "split"))
    resumed.restore()
    assert (resumed.epoch, resumed.step, int(resumed.model.critic_steps)) == (1, 14, 14)
    resumed.fit()
    from safetensors.torch import load_file
    a, b = (load_file(str(tmp_path / r / "model.safetensors")) for r in ("whole", "split"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    whole, split = (untimed(Run.open(tmp_path / r).steps()) for r in ("whole", "split"))
    assert whole == split


def test_a_diverging_gan_stops_with_one_line_and_keeps_its_checkpoint(tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"
    assert run_cli("train", "gan", *SMALL, *NETS["gan"], "--epochs", "1", "--out", out) == 0
    before = (out / "model.safetensors").read_bytes()
    from genlab.models.adversarial import gan
    monkeypatch.setattr(gan.losses, "generator_loss", lambda logits, kind: logits.sum() * float("nan"))
    capsys.readouterr()
    assert run_cli("train", "--resume", out, "--epochs", "2") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("genlab: error: g_loss became nan in epoch 2")
    assert "last good checkpoint (epoch 1) is kept" in err[-1] and "Traceback" not in "".join(err)
    assert (out / "model.safetensors").read_bytes() == before
    assert [r["epoch"] for r in lines(out / "metrics.jsonl")] == [1]


def test_a_huge_learning_rate_is_caught_too(tmp_path, capsys):
    assert run_cli("train", "gan", *SMALL, *NETS["gan"], "--lr", "1e30", "--out", tmp_path / "r") == 2
    assert "--lr must be at most 10" in capsys.readouterr().err and not (tmp_path / "r").exists()


def nearest_class_mean(x, means):
    return torch.cdist(x.flatten(1), means.flatten(1)).argmin(1)


def test_cgan_samples_the_class_asked_for(tmp_path):
    out = tmp_path / "cgan"
    assert run_cli("train", "cgan", *SMALL, "--hidden", "128", "--lr", "1e-3", "--epochs", "25", "--out", out) == 0
    ds = load_dataset("digits")
    means = torch.stack([ds.train_x[ds.train_y == k].float().mean(0) / 255 for k in range(10)])
    model = genlab.load(out)
    g = torch.Generator().manual_seed(0)
    hits = 0
    for k in range(10):
        x = model.sample(20, condition=torch.full((20,), k), generator=g)
        hits += int((nearest_class_mean(x, means) == k).sum())
    assert hits / 200 > 0.6, hits                  # chance is 0.1; the real test digits score about 0.9
    png = tmp_path / "three.png"
    assert run_cli("sample", out, "--class", "3", "-n", "8", "-o", png) == 0 and png.is_file()
    assert run_cli("sample", out, "--class", "10", "-o", png) == 2


def test_eval_shows_no_likelihood_and_explore_sweeps_the_code(tmp_path, capsys):
    out = tmp_path / "gan"
    assert run_cli("train", "gan", *SMALL, *NETS["gan"], "--epochs", "1", "--samples", "0", "--out", out) == 0
    capsys.readouterr()
    assert run_cli("eval", out, "--json") == 0
    r = json.loads(capsys.readouterr().out)
    assert r["model"] == "gan" and not [k for k in r if k.endswith(("_nats", "_bpd")) and "baseline" not in k]
    assert run_cli("eval", out) == 0 and "gan" in capsys.readouterr().out
    assert run_cli("explore", out, "grid", "--steps", "3", "-o", tmp_path / "grid.png") == 0
    assert run_cli("sample", out, "--class", "1", "-o", tmp_path / "x.png") == 2   # gan is not conditional
