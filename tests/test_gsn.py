"""The generative stochastic network: walkback as K one-step losses, the chain's stationary distribution on a
toy whose answer is known (and the CSL estimate against that exact distribution), learning on digits, and
its sampling settings on the command line."""
import itertools
import math
import sys
from pathlib import Path

import pytest
import torch

import genlab
from genlab.data.containers.base import DataInfo
from genlab.data.containers.batch import Batch
from genlab.models import get_model_class
from genlab.models.base import make_config

from conftest import genlab as run_cli
from test_bad_input import refused

pytestmark = pytest.mark.usefixtures("one_thread")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

GSN = get_model_class("gsn")
STATES = torch.tensor([[0., 0.], [0., 1.], [1., 0.], [1., 1.]])
# The toy: two binary pixels, four states of known probabilities. Independent pixels (0.7 and 0.6 on), so the
# true P(X | X̃) is a product of Bernoullis, which the model's reconstruction can be exactly: the chain's
# stationary law must then be the data's. (With dependent pixels, 0.1/0.2/0.3/0.4, a product of Bernoullis
# cannot be the true P(X | X̃), and the stationary law is off by 0.014 to 0.018: the model's own limit.)
PROBS = torch.tensor([0.12, 0.18, 0.28, 0.42])


def tiny(**settings):
    torch.manual_seed(0)
    return GSN(make_config(GSN.Config, {k: str(v) for k, v in settings.items()}), DataInfo((1, 1, 2), 0, "binary"))


def test_walkback_is_k_one_step_losses_on_the_same_noise():
    model = tiny(hidden=8, walkback=3)
    x0 = (torch.rand(5, 1, 1, 2, generator=torch.Generator().manual_seed(1)) < 0.5).float()
    summed = model.walkback_losses(x0, torch.Generator().manual_seed(7))
    g, x, by_hand = torch.Generator().manual_seed(7), x0, []
    for _ in range(3):                  # corrupt, reconstruct, score the original, draw the next state
        x_tilde = model.corrupt(x, g)
        params = model.reconstruct(x_tilde, g)
        by_hand.append(-model.log_p(x0, params))
        x = model.draw(params, g)
    assert len(summed) == 3
    for a, b in zip(summed, by_hand):
        torch.testing.assert_close(a, b)
    # and the training loss is their sum over the K steps, averaged over the batch
    assert not torch.equal(summed[0], summed[2])        # each step starts from a sample of the one before


@pytest.fixture(scope="module")
def toy():
    """A GSN trained on the four-state toy (no hidden noise, so its transition kernel is exact)."""
    model = tiny(hidden=32, layers=1, walkback=2, salt_pepper=0.5, hidden_noise=0.0, csl_samples=4000)
    opt = model.configure_optimizers(3e-3)
    g = torch.Generator().manual_seed(0)
    for i in range(3000):                   # large batches and a lower rate at the end: P(X | X̃) fitted closely
        if i == 2000:
            for group in opt["model"].param_groups:
                group["lr"] = 3e-4
        idx = torch.multinomial(PROBS, 1024, replacement=True, generator=g)
        model.train_step(Batch(STATES[idx].view(1024, 1, 1, 2)), opt)
    return model.eval()


def exact_kernel(model) -> torch.Tensor:
    """T[i, j] = P(next = j | now = i), summed exactly over the corruption's outcomes (salt-and-pepper: each
    pixel kept with 1 − p, else a fair bit) and the reconstruction's Bernoullis."""
    p = model.config.salt_pepper
    keep = {0: 1 - p / 2, 1: p / 2}              # P(x̃ pixel = x pixel) and P(flipped)
    T = torch.zeros(4, 4, dtype=torch.float64)
    with torch.no_grad():
        for i, j in itertools.product(range(4), range(4)):
            for k in range(4):
                flips = (STATES[i] != STATES[k]).int()
                p_tilde = math.prod(keep[int(f)] for f in flips)
                T[i, j] += p_tilde * math.exp(float(model.log_p(STATES[j].view(1, 1, 1, 2),
                                                                model.reconstruct(STATES[k].view(1, 1, 1, 2)))))
    return T


def stationary(T: torch.Tensor) -> torch.Tensor:
    pi = torch.full((4,), 0.25, dtype=torch.float64)
    for _ in range(2000):
        pi = pi @ T
    return pi


def test_the_chain_visits_the_toys_states_in_the_datas_proportions(toy):
    T = exact_kernel(toy)
    torch.testing.assert_close(T.sum(1), torch.ones(4, dtype=torch.float64))
    pi = stationary(T)
    assert (pi - PROBS.double()).abs().max() < 0.01, pi       # the model learnt the toy
    # run long: 200 chains of 200 steps after a burn-in; the visits match the chain's exact stationary law
    g = torch.Generator().manual_seed(3)
    x = toy.run_chain(toy.noise(200, g), 50, g)
    visits = toy.run_chain(x, 200, g, keep_every=1).view(-1, 2)
    counts = torch.stack([(visits == s).all(1).sum() for s in STATES]).double()
    share = counts / counts.sum()
    # standard error of a share from correlated draws: 40,000 visits, taken conservatively as 4,000
    assert ((share - pi).abs() < 4 * torch.sqrt(pi * (1 - pi) / 4000)).all(), (share, pi)
    assert ((share - PROBS.double()).abs() < 0.01 + 4 * torch.sqrt(pi * (1 - pi) / 4000)).all(), share


def test_csl_estimate_converges_to_the_chains_exact_distribution(toy):
    pi = stationary(exact_kernel(toy))
    estimate = toy.csl_log_prob(STATES.view(4, 1, 1, 2)).double()
    assert (estimate - pi.log()).abs().max() < 0.05, (estimate.exp(), pi)
    assert torch.allclose(estimate.exp().sum(), torch.tensor(1.0, dtype=torch.float64), atol=0.02)


def test_it_learns_on_digits_and_draws_closer_to_them_than_independent_pixels(tmp_path):
    from defaults import BaselineFID
    run = genlab.train("gsn", "digits", tmp_path / "gsn", epochs=30, threads=1, quiet=True, samples=0,
                       device="cpu", csl_samples=300)        # fewer chain states: each epoch's estimate is quick
    [r] = genlab.evaluate([run.path], metrics=["likelihood", "fid"], device="cpu", live=False)
    assert r["nll_csl_nats"] < r["baseline_nll_nats"] - 0.5, r
    assert r["estimates"]["nll_csl_nats"][0] == "CSL estimate"
    assert r["fid"] < BaselineFID()(run.path) - 3.0, r["fid"]


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    path = tmp_path_factory.mktemp("gsn") / "run"
    assert run_cli("train", "gsn", "--data", "digits", "--epochs", "2", "--hidden", "32", "--samples", "0",
                   "--threads", "1", "--out", path) == 0
    return path


def test_chain_strip_and_settings_from_the_command_line(digits_run, tmp_path, capsys):
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    assert run_cli("sample", digits_run, "-n", "12", "--chain", "--thin", "2", "--burn-in", "5", "-o", a) == 0
    assert run_cli("sample", digits_run, "-n", "12", "--chain", "--thin", "2", "--burn-in", "5", "-o", b) == 0
    assert a.read_bytes() == b.read_bytes()                      # a chain is a function of the seed
    strip = genlab.sample(digits_run, 6, seed=2, chain=True, burn_in=3)
    again = genlab.load(digits_run).sample(6, generator=torch.Generator().manual_seed(2), chain=True, burn_in=3)
    assert torch.equal(strip, again) and strip.shape == (6, 1, 8, 8)
    assert set(strip.unique().tolist()) <= {0.0, 1.0}
    refused(capsys, ["sample", digits_run, "--thin", "0", "-o", a], "--thin must be from 1 to 10,000")
    refused(capsys, ["sample", digits_run, "--burn-in", "-3", "-o", a], "--burn-in must be from 0")
    refused(capsys, ["sample", digits_run, "--steps", "3", "-o", a], "--steps does not apply to gsn")


def test_mixing_figures_along_its_chains(digits_run):
    [r] = genlab.evaluate([digits_run], metrics=["mixing"], samples=300, device="cpu", live=False)
    assert r["mixing_chains"] == 4 and r["mixing_chain_length"] == 500
    assert 0 < r["mixing_label_changes_per_100"] <= 100 and 1 <= r["mixing_classes_visited"] <= 10
    assert -1 <= r["mixing_autocorr_lag1"] <= 1 and r["mixing_autocorr_lag10_std"] >= 0
    table = genlab.format_results([r])
    assert "changes/100" in table and "autocorr@10" in table


def test_mixing_statistics_against_direct_counts():
    from genlab.evaluation.mixing import autocorrelation, label_statistics
    labels = torch.tensor([3, 3, 3, 5, 5, 3, 3, 3, 3, 3] * 20)
    changes, visited = label_statistics(labels, 10)
    direct = sum(int(a != b) for a, b in zip(labels[:-1].tolist(), labels[1:].tolist())) / (len(labels) - 1)
    assert math.isclose(changes, 100 * direct) and visited == 2
    assert label_statistics(torch.full((100,), 4), 10) == (0.0, 1)              # a chain stuck in one class
    t = torch.arange(200, dtype=torch.float64)
    feats = torch.stack([torch.sin(t / 3), torch.cos(t / 7)], 1)
    by_hand = sum(float(torch.corrcoef(torch.stack([feats[:-10, d], feats[10:, d]]))[0, 1]) for d in range(2)) / 2
    assert math.isclose(autocorrelation(feats, 10), by_hand, rel_tol=1e-9)


def test_the_8bit_reconstruction_is_a_distribution_over_the_256_levels():
    from genlab.models.energy.gsn import discretised_logistic_log_prob
    levels = torch.arange(256).float()
    for mu, log_s in ((0.3, -3.0), (0.0, -6.0), (1.0, -1.0), (0.5, 1.5), (0.02, -7.0)):
        p = discretised_logistic_log_prob(levels, torch.full((256,), mu), torch.full((256,), log_s)).double().exp()
        assert abs(float(p.sum()) - 1) < 1e-5, (mu, log_s)
    model = GSN(make_config(GSN.Config, {"hidden": "8"}), DataInfo((1, 2, 2), 0, "continuous"))
    x = torch.tensor([0, 17, 128, 255], dtype=torch.float32).view(1, 1, 2, 2) / 255
    params = model.reconstruct(model.corrupt(x))
    assert torch.isfinite(model.log_p(x, params)).all() and model.draw(params).shape == x.shape
