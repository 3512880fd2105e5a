"""The Parzen-window estimate: both kernels against direct formulas and brute-force sums, the Bernoulli
kernel normalised over every binary image, the bandwidth the one the held-out half likes best, and
`genlab eval --metrics parzen` on a real run with real data's own row beside it."""
import itertools
import math

import pytest
import torch

import genlab
from genlab.evaluation.parzen import BERNOULLI_FLIPS, GAUSSIAN_SIGMAS, log_density, parzen, squared_distances

pytestmark = pytest.mark.usefixtures("one_thread")


def test_gaussian_kernel_is_the_mean_of_normal_densities():
    g = torch.Generator().manual_seed(0)
    x, s, sigma = torch.rand(5, 3, generator=g), torch.rand(7, 3, generator=g), 0.3
    got = log_density(squared_distances(x, s), 3, sigma, binary=False)
    for i in range(5):
        direct = sum(math.prod(math.exp(-(float(x[i, d]) - float(s[j, d])) ** 2 / (2 * sigma ** 2))
                               / math.sqrt(2 * math.pi * sigma ** 2) for d in range(3)) for j in range(7)) / 7
        assert math.isclose(float(got[i]), math.log(direct), rel_tol=1e-9)


def test_bernoulli_kernel_is_a_distribution_over_binary_images():
    g = torch.Generator().manual_seed(1)
    samples = (torch.rand(6, 4, generator=g) < 0.5).double()
    every = torch.tensor(list(itertools.product((0.0, 1.0), repeat=4)))
    for eps in (0.01, 0.2, 0.45):
        lp = log_density(squared_distances(every, samples), 4, eps, binary=True)
        assert math.isclose(float(lp.exp().sum()), 1.0, rel_tol=1e-9)
        # one image by hand: (1/S) Σ_j Π_d (ε if the pixel differs, else 1 − ε)
        x = every[5]
        direct = sum(math.prod(eps if x[d] != samples[j, d] else 1 - eps for d in range(4)) for j in range(6)) / 6
        assert math.isclose(float(lp[5]), math.log(direct), rel_tol=1e-9)


@pytest.mark.parametrize("binary", [False, True])
def test_the_bandwidth_is_the_held_out_halfs_best_and_the_figure_is_the_other_halfs(binary):
    g = torch.Generator().manual_seed(2)
    draw = (lambda n: (torch.rand(n, 10, generator=g) < 0.3).float()) if binary else \
        (lambda n: torch.rand(n, 10, generator=g) * 0.5)
    samples, valid, test = draw(200), draw(50), draw(60)
    out = parzen(samples, valid, test, binary=binary)
    grid = BERNOULLI_FLIPS if binary else GAUSSIAN_SIGMAS
    d = squared_distances(valid, samples)
    best = max(grid, key=lambda b: float(log_density(d, 10, b, binary).mean()))
    assert out["parzen_bandwidth"] == best
    nll = -log_density(squared_distances(test, samples), 10, best, binary) + (0 if binary else 10 * math.log(256))
    assert math.isclose(out["parzen_nats"], float(nll.mean()), rel_tol=1e-12)
    assert math.isclose(out["parzen_nats_std"], float(nll.std()) / math.sqrt(60), rel_tol=1e-9)


@pytest.mark.slow
def test_eval_gives_a_runs_parzen_estimate_beside_real_datas(tmp_path, capsys):
    run = genlab.train("vae", "digits", tmp_path / "vae", epochs=3, threads=1, quiet=True, samples=0, hidden=64)
    [r] = genlab.evaluate([run.path], metrics=["parzen"], samples=400, device="cpu", live=False)
    assert r["parzen_kernel"] == "bernoulli" and math.isfinite(r["parzen_nats"]) and r["parzen_nats_std"] > 0
    assert "parzen_nats" in r["data_floor"] and "parzen_nats" not in r["data_reference"]
    # real training images as the kernel's centres explain held-out digits better than 3 epochs of a vae
    assert r["data_floor"]["parzen_nats"] < r["parzen_nats"]
    table = genlab.format_results([r])
    assert "Parzen" in table and "Theis" in table
