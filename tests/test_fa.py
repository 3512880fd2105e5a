"""Factor analysis: its Woodbury likelihood against the dense Gaussian, normalised over a grid, its exact
posterior against Bayes' rule by hand, its EM fit against scikit-learn's, its declared sampling settings
on the command line, and that it learns: on digits it beats a Gaussian per pixel, the model it becomes with
no factors."""
import json
import math
import subprocess
import sys

import pytest
import torch

import genlab
from genlab.data.containers.base import DataInfo
from genlab.errors import UserError
from genlab.models import get_model_class
from genlab.models.base import make_config

FA = get_model_class("fa")


def model_on(shape, q, seed=0):
    torch.manual_seed(seed)
    m = FA(make_config(FA.Config, {"latent_dim": str(q)}), DataInfo(shape=shape, num_classes=0, pixels="continuous"))
    m.mean.copy_(torch.rand_like(m.mean))         # away from the initial values, so that every term counts
    m.weight.copy_(torch.randn_like(m.weight) * 0.3)
    m.noise_var.copy_(torch.rand_like(m.noise_var) * 0.1 + 0.01)
    return m


def dense(m):
    return torch.distributions.MultivariateNormal(m.mean, m.weight @ m.weight.T + torch.diag(m.noise_var))


def test_woodbury_likelihood_is_the_dense_gaussians():
    m = model_on((1, 3, 4), q=3)
    x = torch.rand(7, 1, 3, 4, dtype=torch.float64)
    assert torch.allclose(m.log_prob(x), dense(m).log_prob(x.flatten(1)), atol=1e-9)


def test_density_integrates_to_one():
    m = model_on((1, 1, 2), q=1, seed=3)
    sd = dense(m).covariance_matrix.diagonal().sqrt()        # each pixel's whole spread, factor and noise
    g = torch.linspace(-10, 10, 1001, dtype=torch.float64)
    xs, ys = torch.meshgrid(g * sd[0] + m.mean[0], g * sd[1] + m.mean[1], indexing="ij")
    pts = torch.stack([xs, ys], -1).reshape(-1, 1, 1, 2)
    cell = float((g[1] - g[0]) ** 2 * sd[0] * sd[1])
    assert m.log_prob(pts).exp().sum().item() * cell == pytest.approx(1.0, abs=1e-4)


def test_posterior_is_bayes_rule():
    m = model_on((1, 2, 3), q=2, seed=1)
    x = torch.rand(5, 1, 2, 3, dtype=torch.float64)
    mean, logvar = m.encode(x)
    # By hand: Σ_z|x = (I + WᵀΨ⁻¹W)⁻¹, μ_z|x = Σ Wᵀ Ψ⁻¹ (x − μ).
    w, psi_inv = m.weight, 1 / m.noise_var
    cov = torch.linalg.inv(torch.eye(2, dtype=torch.float64) + w.T @ torch.diag(psi_inv) @ w)
    want = (x.flatten(1) - m.mean.double()) @ (cov @ w.T @ torch.diag(psi_inv)).T
    assert torch.allclose(mean, want, atol=1e-9)
    assert torch.allclose(logvar[0], cov.diagonal().log(), atol=1e-9)


def test_em_reaches_scikit_learns_fit():
    """The same data, the same q: EM on the covariance ends at scikit-learn's maximum likelihood (its own SVD
    method), to a fraction of a nat per image."""
    from sklearn.decomposition import FactorAnalysis as Reference

    from genlab.data import load_dataset
    x = load_dataset("digits").train_x.double().flatten(1)
    x = (x + torch.rand(x.shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)) / 256
    m = FA(make_config(FA.Config, {"latent_dim": "8", "em_steps": "400", "min_std": "1e-6"}),   # its floor too
           DataInfo(shape=(1, 8, 8), num_classes=0, pixels="continuous"))

    class Once:                                     # the split as one batch, as the trainer hands it over
        def epoch(self, e=0):
            yield (x,)
    ours = m.train_epoch(Once(), 0)["loglik"]
    assert ours == pytest.approx(m.log_prob(x).mean().item(), abs=1e-6)       # its figure is its likelihood
    theirs = Reference(n_components=8, tol=1e-8, max_iter=5000, random_state=0).fit(x.numpy()).score(x.numpy())
    assert ours == pytest.approx(theirs, abs=0.5)


def test_binary_pixels_are_refused_in_one_line():
    with pytest.raises(UserError, match="8-bit pixels"):
        FA(make_config(FA.Config, {}), DataInfo(shape=(1, 8, 8), num_classes=10, pixels="binary"))


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("fa") / "run"
    genlab.train("fa", "digits", out=str(out), epochs=2, threads=1, live=False)
    return out


def test_it_learns_past_a_gaussian_per_pixel(run):
    [r] = genlab.evaluate([str(run)], ["likelihood"], iwae_k=0, device="cpu", threads=1, live=False)
    assert r["nll_nats"] < r["baseline_gaussian_nll_nats"] - 10, r      # 293.6 against 312.6 nats


def test_sampling_settings_come_from_its_declaration(run, tmp_path):
    cli = [sys.executable, "-m", "genlab"]
    helptext = subprocess.run(cli + ["sample", str(run), "--help"], capture_output=True, text=True).stdout
    assert "--temperature" in helptext and "--noise" in helptext
    m = genlab.load(str(run))
    flat = genlab.sample(str(run), 4, temperature=0.0)            # every code 0: the mean image four times
    assert torch.allclose(flat[0], flat[3]) and torch.allclose(flat[0], m.decode(torch.zeros(1, m.latent_dim))[0])
    g = torch.Generator().manual_seed(0)
    clean = m.sample(2, generator=g)
    g = torch.Generator().manual_seed(0)
    noisy = m.sample(2, generator=g, noise=True)
    assert not torch.equal(clean, noisy)
    bad = subprocess.run(cli + ["sample", str(run), "--temperature", "-1", "-o", str(tmp_path / "s.png")],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["model"] == "fa" and math.isfinite(cfg["config"]["min_std"])
