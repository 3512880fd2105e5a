"""Each model learns on the digits: its test NLL (or bound) beats the independent-pixel baseline."""
import json

from conftest import genlab


def eval_json(run, capsys, *extra):
    capsys.readouterr()
    assert genlab("eval", run, "--json", *extra) == 0
    return json.loads(capsys.readouterr().out)


def test_vae_beats_independent_pixels(runs, capsys):
    r = eval_json(runs["vae"], capsys)
    # Binarised digits: the baseline is about 27 nats; a VAE that learned anything is well below it.
    assert r["iwae_nats"] < r["baseline_nll_nats"] - 2.0, r
    assert r["nelbo_nats"] < r["baseline_nll_nats"] - 1.5, r
    assert r["kl_nats"] > 0.5, "the code is used (no posterior collapse)"
    assert abs(r["nelbo_nats"] - (r["recon_nats"] + r["kl_nats"])) < 1e-6


def test_cvae_beats_independent_pixels(runs, capsys):
    r = eval_json(runs["cvae"], capsys)
    assert r["conditional"] is True
    assert r["iwae_nats"] < r["baseline_nll_nats"] - 4.0, r


def test_gmm_beats_independent_pixels_on_8bit(runs, capsys):
    r = eval_json(runs["gmm"], capsys)
    # 8-bit pixels: a dequantised density bounds the discrete NLL. Within continuous densities the
    # baseline is a Gaussian per pixel (a 256-way histogram per pixel also exploits the digits' 17 levels).
    assert r["pixels"].startswith("none")
    assert r["nll_nats"] < r["baseline_gaussian_nll_nats"] - 20, r
    assert abs(r["nll_bpd"] - r["nll_nats"] / (64 * 0.6931471805599453)) < 1e-9


def test_autoencoder_reconstructs_better_than_the_mean_image(runs, capsys):
    import torch
    import genlab
    from genlab.data import Batches, load_dataset

    model = genlab.load(runs["ae"])
    ds = load_dataset("digits")
    x, _ = Batches(ds.test_x, None, binarize="dynamic", batch_size=512, shuffle=False).all()
    with torch.no_grad():
        recon = model.eval_terms(x)["recon_loss"].mean()
    p = (ds.train_x.float() / 255).mean(0).clamp(1e-3, 1 - 1e-3)
    mean_image_loss = -(x * p.log() + (1 - x) * (1 - p).log()).flatten(1).sum(1).mean()
    assert recon < mean_image_loss - 5, (recon, mean_image_loss)


def test_loss_falls_during_training(runs):
    for name, epochs in (("vae", 30), ("ae", 12), ("cvae", 30)):
        rows = [json.loads(l) for l in (runs[name] / "metrics.jsonl").read_text().splitlines()]
        assert len(rows) == epochs
        assert rows[-1]["loss"] < rows[0]["loss"] - 1.0, name
    rows = [json.loads(l) for l in (runs["gmm"] / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["loglik"] > rows[0]["loglik"]
