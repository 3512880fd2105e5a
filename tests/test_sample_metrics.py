"""Sample-quality metrics against independent references: closed forms, scipy, brute force."""
import itertools

import numpy as np
import pytest
import scipy.linalg
import torch

from genlab.evaluation import neighbours
from genlab.evaluation.fid import fid, fid_resampled, frechet_distance, kid, polynomial_mmd2
from genlab.evaluation.memorisation import HeldOut, memorisation
from genlab.evaluation.modes import inception_score, mode_coverage
from genlab.evaluation.prdc import density_coverage, prdc_resampled, precision_recall
from genlab.evaluation.sample_quality import bootstrap_indices, within_floor


def scipy_fid(a, b):
    a, b = a.double().numpy(), b.double().numpy()
    m1, m2, s1, s2 = a.mean(0), b.mean(0), np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return float(((m1 - m2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean))


def test_frechet_distance_of_two_gaussians_equals_the_closed_form():
    g = torch.Generator().manual_seed(0)
    d = 6
    mu1, mu2 = torch.randn(d, generator=g, dtype=torch.float64), torch.randn(d, generator=g, dtype=torch.float64)
    a, b = torch.randn(d, d, generator=g, dtype=torch.float64), torch.randn(d, d, generator=g, dtype=torch.float64)
    cov1, cov2 = a @ a.T + 0.1 * torch.eye(d), b @ b.T + 0.1 * torch.eye(d)
    closed = float((mu1 - mu2).pow(2).sum() + torch.trace(cov1 + cov2)
                   - 2 * np.trace(scipy.linalg.sqrtm(cov1.numpy() @ cov2.numpy()).real))
    assert frechet_distance(mu1, cov1, mu2, cov2) == pytest.approx(closed, rel=1e-9)
    # Diagonal covariances: ‖μ₁ − μ₂‖² + Σ (σ₁ − σ₂)², with no matrix square root at all.
    s1, s2 = torch.rand(d, generator=g, dtype=torch.float64) + 0.5, torch.rand(d, generator=g, dtype=torch.float64) + 0.5
    expected = float((mu1 - mu2).pow(2).sum() + (s1 - s2).pow(2).sum())
    assert frechet_distance(mu1, torch.diag(s1 ** 2), mu2, torch.diag(s2 ** 2)) == pytest.approx(expected, rel=1e-9)
    # From samples of those Gaussians, FID approaches the closed form.
    x = mu1 + torch.randn(200_000, d, generator=g, dtype=torch.float64) * s1
    y = mu2 + torch.randn(200_000, d, generator=g, dtype=torch.float64) * s2
    assert fid(x, y) == pytest.approx(expected, rel=0.02)


def test_fid_on_random_features_equals_scipy_sqrtm():
    g = torch.Generator().manual_seed(1)
    a = torch.randn(500, 16, generator=g)
    b = torch.randn(400, 16, generator=g) @ torch.randn(16, 16, generator=g) * 0.5 + 0.3
    assert fid(a, b) == pytest.approx(scipy_fid(a, b), rel=1e-6)
    assert abs(fid(a, a)) < 1e-8


def brute_prdc(real, fake, k_pr=3, k_dc=5):
    real, fake = real.double().numpy(), fake.double().numpy()
    d = lambda u, v: float(np.sqrt(((u - v) ** 2).sum()))  # noqa: E731

    def radius(points, i, k):
        return sorted(d(points[i], points[j]) for j in range(len(points)) if j != i)[k - 1]

    rr3 = [radius(real, i, k_pr) for i in range(len(real))]
    fr3 = [radius(fake, j, k_pr) for j in range(len(fake))]
    rr5 = [radius(real, i, k_dc) for i in range(len(real))]
    precision = np.mean([any(d(y, x) <= rr3[i] for i, x in enumerate(real)) for y in fake])
    recall = np.mean([any(d(x, y) <= fr3[j] for j, y in enumerate(fake)) for x in real])
    density = sum(d(y, x) <= rr5[i] for y in fake for i, x in enumerate(real)) / (k_dc * len(fake))
    coverage = np.mean([any(d(x, y) <= rr5[i] for y in fake) for i, x in enumerate(real)])
    return precision, recall, density, coverage


@pytest.mark.parametrize("chunk", [neighbours.CHUNK_ELEMENTS, 7])
def test_precision_recall_density_coverage_equal_brute_force(monkeypatch, chunk):
    monkeypatch.setattr(neighbours, "CHUNK_ELEMENTS", chunk)     # tiny chunks: rows one at a time
    g = torch.Generator().manual_seed(2)
    real = torch.randn(40, 3, generator=g, dtype=torch.float64)
    fake = torch.randn(30, 3, generator=g, dtype=torch.float64) * 0.8 + 1.0
    p, r = precision_recall(real, fake)
    dens, cov = density_coverage(real, fake)
    bp, br, bd, bc = brute_prdc(real, fake)
    assert (p, r, cov) == (pytest.approx(bp), pytest.approx(br), pytest.approx(bc))
    assert dens == pytest.approx(bd)
    assert 0 < p < 1 and 0 < r < 1                   # the sets differ: neither figure is trivially 1


def test_identical_sets_give_fid_zero_and_precision_recall_one():
    x = torch.randn(300, 8, generator=torch.Generator().manual_seed(3))
    assert abs(fid(x, x)) < 1e-8
    assert precision_recall(x, x) == (1.0, 1.0)
    dens, cov = density_coverage(x, x)
    assert cov == 1.0 and dens >= 1.0


def test_kid_is_the_unbiased_polynomial_mmd():
    g = torch.Generator().manual_seed(4)
    x, y = torch.randn(12, 5, generator=g, dtype=torch.float64), torch.randn(12, 5, generator=g, dtype=torch.float64) + 0.5
    k = lambda a, b: (float(a @ b) / 5 + 1) ** 3  # noqa: E731
    m = len(x)
    pairs = [(i, j) for i, j in itertools.product(range(m), range(m)) if i != j]
    direct = (sum(k(x[i], x[j]) for i, j in pairs) / (m * (m - 1)) + sum(k(y[i], y[j]) for i, j in pairs) / (m * (m - 1))
              - 2 * sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / m ** 2)
    assert polynomial_mmd2(x, y) == pytest.approx(direct, rel=1e-10)
    # Unbiased: two samples of one distribution average to ≈ 0; shifted ones clearly above it.
    a, b = torch.randn(2000, 5, generator=g), torch.randn(2000, 5, generator=g)
    same, same_std = kid(a, b, subsets=50, subset_size=500)
    shifted, _ = kid(a, b + 0.5, subsets=50, subset_size=500)
    assert abs(same) < 3 * same_std + 1e-3 and shifted > 20 * same_std > 0


def test_mode_coverage_and_inception_score_against_their_formulas():
    eye = torch.eye(4)
    probs = eye[[0] * 50 + [1] * 30 + [2] * 20]                    # class 3 never drawn
    data = torch.tensor([0.25, 0.25, 0.25, 0.25])
    m = mode_coverage(probs, data)
    hist = np.array([0.5, 0.3, 0.2])
    assert m["modes_covered"] == 3 and m["modes_total"] == 4
    assert m["modes_kl"] == pytest.approx(float((hist * np.log(hist / 0.25)).sum()))
    assert m["class_histogram"] == [0.5, 0.3, 0.2, 0.0]
    # Confident and balanced over K classes: IS = K; always the same class: IS = 1.
    assert inception_score(eye[torch.arange(400) % 4])[0] == pytest.approx(4, rel=1e-6)
    assert inception_score(eye[[2] * 400])[0] == pytest.approx(1, rel=1e-6)


def test_memorisation_tells_copies_from_new_images():
    g = torch.Generator().manual_seed(5)
    train, test = torch.rand(200, 1, 4, 4, generator=g), torch.rand(100, 1, 4, 4, generator=g)
    held = HeldOut(train[:50], test[:50], test[50:])
    copies = memorisation(train[:40] + 1e-4, train, test, held=held)
    fresh = memorisation(torch.rand(40, 1, 4, 4, generator=g), train, test, held=held)
    assert copies["memorisation_ratio"] < 0.01 and copies["copies_found"] and copies["copy_share"] == 1.0
    assert 0.7 < fresh["memorisation_ratio"] < 1.4 and not fresh["copies_found"] and abs(fresh["copy_excess"]) < 0.2
    d, idx = copies["_nearest"]
    assert torch.equal(idx, torch.arange(40))


# ---- uncertainty: bootstrap over the samples ----

def test_a_resample_that_draws_every_sample_once_gives_the_figures_themselves():
    g = torch.Generator().manual_seed(6)
    real = torch.randn(120, 4, generator=g)
    fake = torch.randn(90, 4, generator=g) * 0.8 + 0.4
    fake[5] = fake[6]                                         # a duplicate sample changes nothing
    every = torch.stack([torch.arange(90), torch.arange(90).flip(0)])
    assert fid_resampled(real, fake, every).tolist() == [pytest.approx(fid(real, fake), rel=1e-9)] * 2
    again = prdc_resampled(real, fake, every)
    direct = dict(zip(("precision", "recall"), precision_recall(real, fake)))
    direct.update(zip(("density", "coverage"), density_coverage(real, fake)))
    for key, value in direct.items():
        assert again[key].tolist() == [pytest.approx(value, rel=1e-9)] * 2, key


def test_bootstrap_deviations_are_positive_and_shrink_with_more_samples():
    g = torch.Generator().manual_seed(7)
    real = torch.randn(1000, 6, generator=g)
    stds = []
    for n in (150, 1200):
        fake = torch.randn(n, 6, generator=g) * 0.9 + 0.15
        idx = bootstrap_indices(n, 60)
        figures = {"fid": fid_resampled(real, fake, idx), **prdc_resampled(real, fake, idx)}
        stds.append({k: float(v.std()) for k, v in figures.items()})
    small, large = stds
    for key in ("fid", "precision", "recall", "density", "coverage"):
        assert small[key] > 0, key
        assert large[key] < 0.75 * small[key], (key, small[key], large[key])
    # Fixed seed: the same resamples, the same deviations.
    assert torch.equal(bootstrap_indices(50, 10), bootstrap_indices(50, 10))


def test_within_floor_marks_figures_the_floors_noise_covers():
    floor = {"samples": 500, "fid": 3.0, "fid_std": 0.3, "precision": 0.80, "precision_std": 0.02,
             "modes_covered": 10, "modes_covered_std": 0.0}
    close = {"samples": 500, "fid": 3.5, "fid_std": 0.3, "precision": 0.83, "precision_std": 0.02,
             "modes_covered": 10, "modes_covered_std": 0.0}
    far = {"samples": 500, "fid": 5.0, "fid_std": 0.3, "precision": 0.95, "precision_std": 0.02,
           "modes_covered": 9, "modes_covered_std": 0.3}
    assert within_floor(close, floor) == ["fid", "precision", "modes_covered"]
    assert within_floor(far, floor) == []
    # Lower is better for FID: a figure below the floor's is as close to the data as data gets.
    assert within_floor({**far, "fid": 1.0}, floor) == ["fid"]
    # Precision far ABOVE the data's is not data-like (samples crowding the densest region).
    assert "precision" not in within_floor({**close, "precision": 0.99}, floor)
    # A floor of another sample count, a missing one, or a figure without a deviation says nothing.
    assert within_floor(close, {**floor, "samples": 400}) == [] and within_floor(close, None) == []
    assert within_floor({**close, "fid_std": None}, floor) == ["precision", "modes_covered"]
