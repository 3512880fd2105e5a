"""A model trained with no options but the data learns: at its defaults (epochs from its step budget and
the data's size, its batch size and learning rate) each quick model (seconds on digits, one thread: vae,
cvae, ae, gmm) beats its independent-pixel baseline on digits by a stated margin. The slower ones (made,
the pixel models, the GANs, the sentence VAE) are measured by benchmarks/defaults.py."""
import sys
from pathlib import Path

import pytest

import genlab
from genlab.cli import main
from genlab.defaults_help import train_defaults
from genlab.data import load_dataset
from genlab.models.registry import get_model_class, model_names

pytestmark = pytest.mark.usefixtures("one_thread")

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))


def train_at_defaults(model: str, tmp_path) -> tuple[dict, dict]:
    """The run's config.json and its evaluation, trained with nothing but the data given."""
    run = genlab.train(model, "digits", tmp_path / model, threads=1, quiet=True, samples=0, device="cpu")
    [figures] = genlab.evaluate([run.path], iwae_k=0, device="cpu", live=False)
    return run.config, figures


def test_vae_at_its_defaults_uses_its_code_and_beats_independent_pixels(tmp_path):
    # The bug this guards against: 10 epochs of 128 (120 steps) left the code unused (KL 0.4 nats) and the
    # −ELBO at the independent-pixel baseline (27.1 nats).
    config, r = train_at_defaults("vae", tmp_path)
    assert config["train"]["epochs"] == get_model_class("vae").epochs_for(1438, config["train"]["batch_size"])
    assert r["nelbo_nats"] < r["baseline_nll_nats"] - 2.0, r
    assert r["kl_nats"] > 1.0, "posterior collapse: the code carries next to nothing"


def test_gmm_at_its_defaults_beats_a_gaussian_per_pixel(tmp_path):
    _, r = train_at_defaults("gmm", tmp_path)
    # 8-bit pixels: a density is held to the Gaussian per pixel (the histogram exploits the 17 grey levels).
    assert r["nll_nats"] < r["baseline_gaussian_nll_nats"] - 20, r


def test_cvae_at_its_defaults_uses_its_code_beside_the_label(tmp_path):
    # Before: −ELBO 23.3 but KL 0.31 nats, the label doing all the work and the code unused.
    _, r = train_at_defaults("cvae", tmp_path)
    assert r["nelbo_nats"] < r["baseline_nll_nats"] - 4.0, r
    assert r["kl_nats"] > 0.75, "the code carries the style, beside the label"


def test_autoencoder_at_its_defaults_draws_closer_to_the_data_than_independent_pixels(tmp_path):
    from defaults import BaselineFID
    run = genlab.train("ae", "digits", tmp_path / "ae", threads=1, quiet=True, samples=0, device="cpu")
    [r] = genlab.evaluate([run.path], metrics=["fid"], device="cpu", live=False)
    baseline = BaselineFID()(run.path)
    # Before (10 epochs of 128): FID 27.7 against independent pixels' 30.1, within a few standard deviations.
    assert r["fid"] < baseline - 5.0, (r["fid"], r.get("fid_std"), baseline)


# ---- how the defaults are chosen, and said ------------------------------------------------------------

def test_default_epochs_follow_the_step_budget_and_the_data_size():
    for name in model_names():
        cls = get_model_class(name)
        if cls.trains_by_epoch:
            assert cls.epochs_for(60_000, 128) == cls.default_epochs == cls.epochs_for(10, 1)
            continue
        assert cls.default_steps, f"{name}: every model trained by steps has a step budget"
        low, high = cls.default_epoch_range
        small, large = cls.epochs_for(1438, cls.default_batch_size), cls.epochs_for(60_000, cls.default_batch_size)
        assert low <= large <= small <= high, name
        if low < small < high:      # within its bounds, the budget is met and not overshot by a whole epoch
            per_epoch = -(-1438 // cls.default_batch_size)
            assert small * per_epoch >= cls.default_steps > (small - 1) * per_epoch, name


def test_epochs_given_override_the_default(tmp_path):
    run = genlab.train("vae", "digits", tmp_path / "v", epochs=1, batch_size=512, hidden=16, threads=1,
                       quiet=True, samples=0)
    assert run.config["train"]["epochs"] == 1 and len(run.metrics()) == 1


def test_known_training_set_sizes_are_the_data_sets_own():
    """`--help` computes default epochs from these sizes without loading the data: they must be right."""
    from genlab import modalities
    from genlab.data.sources.corpora import load_corpus
    assert modalities.get("image").train_sizes["digits"] == len(load_dataset("digits").train_x)
    assert modalities.get("text").train_sizes["tang300"] == len(load_corpus("tang300").train)


@pytest.mark.parametrize("argv, expected", [
    (["train", "vae", "--help"], ["vae defaults", "epochs on digits", "epochs on mnist", "epochs on fashion-mnist"]),
    (["train", "vae", "--data", "mnist", "--help"], ["epochs on mnist (8,000 training examples)"]),
    (["train", "vae", "--data=fashion-mnist", "--batch-size", "256", "--help"],
     ["batches of 256", "5 epochs on fashion-mnist"]),
    (["train", "sentence-vae", "--data", "tang300", "--help"], ["sentence-vae defaults", "epochs on tang300"]),
    (["train", "vae", "--data", "folder:photos", "--help"], ["epochs from folder:photos's training-set size"]),
    (["train", "gmm", "--help"], ["10 EM iterations"]),
])
def test_help_says_the_defaults_for_the_data(argv, expected, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 0
    out = " ".join(capsys.readouterr().out.split())       # argparse wraps lines
    for text in expected:
        assert text in out, (text, out[:600])


def test_help_epochs_are_what_training_uses():
    cls = get_model_class("vae")
    _, line = train_defaults(cls, "digits")
    assert f"{cls.epochs_for(1438, cls.default_batch_size)} epochs on digits" in line
    assert f"lr {cls.default_lr:g}" in line and f"batches of {cls.default_batch_size}" in line


def test_benchmark_independent_pixel_images_follow_the_marginals():
    import torch
    from defaults import independent_pixel_images
    ds = load_dataset("digits")
    binary = independent_pixel_images(ds.train_x, "dynamic", 4000)
    assert set(binary.unique().tolist()) <= {0.0, 1.0}
    assert (binary.mean(0) - ds.train_x.double().div(255).mean(0)).abs().max() < 0.05
    eight = independent_pixel_images(ds.train_x, "none", 4000)
    assert 0 <= eight.min() and eight.max() < 1 and eight.shape == (4000, *ds.shape)
    levels = torch.floor(eight * 256).long().unique()
    assert set(levels.tolist()) <= set(ds.train_x.unique().long().tolist())    # only values the data take
