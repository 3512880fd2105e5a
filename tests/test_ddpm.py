"""DDPM: the bound's Gaussian pieces against independent formulas (torch.distributions, Monte Carlo,
Gaussian conditioning), the discretised decoder normalised over its bins, the whole bound at small T
against a sum written here from scratch, the timestep estimate unbiased; DDIM deterministic at η = 0 and
ancestral DDPM at η = 1 with every step; learning on digits; `genlab sample --steps`."""
import math

import pytest
import torch
from torch.distributions import Normal, kl_divergence

import genlab
from conftest import genlab as run_cli
from genlab.data import load_dataset
from genlab.data.containers.base import DataInfo
from genlab.data.containers.loader import transform
from genlab.errors import UserError
from genlab.models import get_model_class
from genlab.models.base import make_config
from genlab.models.diffusion.schedule import Schedule, betas_for, discretised_gaussian_log_prob, gaussian_kl
from test_bad_input import refused

pytestmark = pytest.mark.usefixtures("one_thread")
DDPM = get_model_class("ddpm")
TINY = {"channels": "8", "mults": "1 2", "attention": "true"}


def tiny(T=5, schedule="linear", pixels="continuous", shape=(1, 8, 8), **settings):
    torch.manual_seed(0)
    config = make_config(DDPM.Config, {**TINY, "timesteps": str(T), "schedule": schedule,
                                       "sample_steps": str(min(T, 100)), **settings})
    model = DDPM(config, DataInfo(shape=shape, num_classes=10, pixels=pixels)).eval()
    with torch.no_grad():                      # the zero-initialised output layer would predict ε̂ = 0 everywhere
        for p in model.parameters():
            p.add_(0.05 * torch.randn(p.shape))
    return model


def digits(n, binarize="none"):
    ds = load_dataset("digits")
    return transform(ds.test_x[:n], binarize, torch.Generator().manual_seed(0))


# ---- the Gaussian pieces ------------------------------------------------------------------------------

def test_gaussian_kl_is_torch_distributions_and_a_monte_carlo_average():
    g = torch.Generator().manual_seed(0)
    m1, m2 = torch.randn(6, generator=g, dtype=torch.float64), torch.randn(6, generator=g, dtype=torch.float64)
    v1, v2 = (torch.rand(6, generator=g, dtype=torch.float64) + 0.1 for _ in range(2))
    ours = gaussian_kl(m1, v1, m2, v2)
    assert torch.allclose(ours, kl_divergence(Normal(m1, v1.sqrt()), Normal(m2, v2.sqrt())), atol=1e-12)
    p, q = Normal(m1, v1.sqrt()), Normal(m2, v2.sqrt())
    torch.manual_seed(0)
    z = p.sample((400_000,))
    mc = (p.log_prob(z) - q.log_prob(z)).mean(0)
    assert torch.allclose(ours, mc, atol=0.02), (ours, mc)


@pytest.mark.parametrize("levels", [256, 2])
def test_the_discretised_decoder_sums_to_one_over_the_bins_of_a_pixel(levels):
    values = -1 + 2 * torch.arange(levels, dtype=torch.float64) / (levels - 1)
    means = torch.tensor([-3.0, -1.0, -0.3, 0.0, 0.5, 1.0, 4.0], dtype=torch.float64)
    for std in (1e-4, 3e-3, 0.05, 1.0, 30.0):
        logp = discretised_gaussian_log_prob(values[:, None], means[None], torch.full_like(means, std)[None], levels)
        assert torch.isfinite(logp).all()                        # far bins under a narrow Gaussian too: not log 0
        total = torch.logsumexp(logp, 0).exp()
        assert torch.allclose(total, torch.ones_like(total), atol=1e-9), (std, total)


def test_the_decoder_gives_each_bin_its_gaussian_mass():
    """Against Normal.cdf written out bin by bin, edges at ±∞ for the first and last, where the cdf is exact."""
    k = torch.tensor([0, 1, 17, 128, 254, 255])
    x = (k / 127.5 - 1).double()
    mean, std = torch.tensor(0.1, dtype=torch.float64), torch.tensor(0.4, dtype=torch.float64)
    normal = Normal(mean, std)
    upper = torch.where(k == 255, torch.tensor(1.0, dtype=torch.float64), normal.cdf(x + 1 / 255))
    lower = torch.where(k == 0, torch.tensor(0.0, dtype=torch.float64), normal.cdf(x - 1 / 255))
    ours = discretised_gaussian_log_prob(x, mean, std, 256)
    assert torch.allclose(ours, (upper - lower).log(), atol=1e-9)
    far = discretised_gaussian_log_prob(torch.tensor([1.0 - 2 / 255], dtype=torch.float64), torch.tensor(-1.0),
                                        torch.tensor(0.01), 256)
    assert torch.isfinite(far) and far < -1000                 # deep in the tail: tiny, but not log 0


def test_the_posterior_is_the_gaussian_conditional_of_the_joint():
    """q(x_{t-1} | x_t, x_0) from the joint of x_{t-1} ~ N(√ᾱ_{t-1} x_0, 1 − ᾱ_{t-1}) and
    x_t = √α_t x_{t-1} + √β_t ε, conditioned by the textbook formula."""
    s = Schedule("cosine", 20)
    g = torch.Generator().manual_seed(1)
    x0 = torch.rand(3, 1, 2, 2, generator=g, dtype=torch.float64) * 2 - 1
    xt = torch.randn(3, 1, 2, 2, generator=g, dtype=torch.float64)
    for t in (1, 2, 7, 20):
        beta = float(s.betas[t])
        a_prev = math.prod(1 - float(b) for b in s.betas[1:t])           # ᾱ_{t-1}, from the β alone
        var1, cov, var2 = 1 - a_prev, math.sqrt(1 - beta) * (1 - a_prev), (1 - beta) * (1 - a_prev) + beta
        m1, m2 = math.sqrt(a_prev) * x0, math.sqrt(1 - beta) * math.sqrt(a_prev) * x0
        mean, var = s.posterior(x0, xt, torch.full((3,), t))
        assert torch.allclose(mean, m1 + cov / var2 * (xt - m2), atol=1e-10)
        assert torch.allclose(var, torch.full_like(var, var1 - cov ** 2 / var2), atol=1e-12)


def test_the_schedules():
    linear = betas_for("linear", 1000)
    assert math.isclose(float(linear[0]), 1e-4) and math.isclose(float(linear[-1]), 0.02)
    for kind in ("linear", "cosine"):
        for T in (4, 50, 1000):
            s = Schedule(kind, T)
            b = s.betas[1:]
            assert (b > 0).all() and (b <= 0.999).all() and len(b) == T
            assert s.alpha_bar(0) == 1 and s.alpha_bar(T) < 0.01             # the last step is nearly pure noise
    cos = Schedule("cosine", 100)
    f = lambda t: math.cos((t / 100 + 0.008) / 1.008 * math.pi / 2) ** 2  # noqa: E731
    assert math.isclose(cos.alpha_bar(30), f(30) / f(0), rel_tol=1e-9)
    assert Schedule("linear", 10).timesteps(10) == list(range(10, 0, -1))
    assert Schedule("linear", 1000).timesteps(1) == [1000]
    assert Schedule("linear", 1000).timesteps(3) == [1000, 500, 1]


# ---- the whole bound ----------------------------------------------------------------------------------

def independent_bound(model, x, seed):
    """Ho et al.'s L_T + Σ L_{t-1} + L_0 written from scratch: ᾱ from the β, the posterior by Gaussian
    conditioning, KLs by torch.distributions, the decoder by Normal.cdf over the 8-bit bins; the noise drawn
    as bound_terms documents (x_1's, then t = 2, ..., T in turn)."""
    T = model.config.timesteps
    betas = [0.0] + [float(b) for b in betas_for(model.config.schedule, T)]
    abar = [1.0]
    for b in betas[1:]:
        abar.append(abar[-1] * (1 - b))
    g = torch.Generator().manual_seed(seed)
    k = torch.floor(x.double() * 256).clamp(0, 255)
    x0 = k / 127.5 - 1
    tilde = [0.0] + [betas[t] * (1 - abar[t - 1]) / (1 - abar[t]) for t in range(1, T + 1)]

    def posterior_mean(x_start, xt, t):
        cov, var2 = math.sqrt(1 - betas[t]) * (1 - abar[t - 1]), 1 - abar[t]
        return math.sqrt(abar[t - 1]) * x_start + cov / var2 * (xt - math.sqrt(abar[t]) * x_start)

    def x0_hat(xt, t):
        eps = model.net(xt.float(), torch.full((len(xt),), t)).double()
        return ((xt - math.sqrt(1 - abar[t]) * eps) / math.sqrt(abar[t])).clamp(-1, 1)

    noise1 = torch.randn(x0.shape, generator=g, dtype=torch.float64)
    x1 = math.sqrt(abar[1]) * x0 + math.sqrt(1 - abar[1]) * noise1
    decoder = Normal(x0_hat(x1, 1), math.sqrt(tilde[2]))
    up = torch.where(k == 255, torch.ones_like(x0), decoder.cdf(x0 + 1 / 255))
    low = torch.where(k == 0, torch.zeros_like(x0), decoder.cdf(x0 - 1 / 255))
    L0 = -(up - low).log().flatten(1).sum(1)
    LT = kl_divergence(Normal(math.sqrt(abar[T]) * x0, math.sqrt(1 - abar[T])), Normal(0.0, 1.0)).flatten(1).sum(1)
    kls = torch.zeros(len(x0), dtype=torch.float64)
    for t in range(2, T + 1):
        xt = math.sqrt(abar[t]) * x0 + math.sqrt(1 - abar[t]) * torch.randn(x0.shape, generator=g, dtype=torch.float64)
        q = Normal(posterior_mean(x0, xt, t), math.sqrt(tilde[t]))
        p = Normal(posterior_mean(x0_hat(xt, t), xt, t), math.sqrt(tilde[t]))
        kls += kl_divergence(q, p).flatten(1).sum(1)
    return L0, LT, kls


@pytest.mark.parametrize("schedule", ["linear", "cosine"])
def test_the_bound_at_small_T_is_the_sum_written_out(schedule):
    model = tiny(T=6, schedule=schedule, bound_timesteps="0")
    x = digits(5)
    with torch.no_grad():
        ours = model.bound_terms(x, torch.Generator().manual_seed(7), timesteps=0)
        L0, LT, kls = independent_bound(model, x, 7)
    assert torch.allclose(ours["decoder"], L0, rtol=1e-6, atol=1e-6), (ours["decoder"], L0)
    assert torch.allclose(ours["prior"], LT, rtol=1e-9, atol=1e-9)
    assert torch.allclose(ours["diffusion"], kls, rtol=1e-6, atol=1e-6), (ours["diffusion"], kls)
    assert (kls > 0).all() and (L0 > 0).all()
    # eval_terms: the same bound as a density of the dequantised pixels, its parts adding up to it.
    terms = model.eval_terms(x, generator=torch.Generator().manual_seed(7))
    shift = 64 * math.log(256)
    assert torch.allclose(terms["nelbo"] + shift, L0 + LT + kls, rtol=1e-6)
    assert torch.allclose(terms["recon"] + terms["kl"], terms["nelbo"])


def test_the_timestep_estimate_is_unbiased():
    model = tiny(T=20)
    T, K = 20, 3
    # Each timestep 2..T drawn with probability 1/(its stratum's size) and weighted by that size.
    t, w = model.bound_timestep_draws(60_000, K, torch.Generator().manual_seed(0), "cpu")
    counts = torch.zeros(T + 1, dtype=torch.float64).index_add_(0, t.flatten(), w.flatten())
    assert counts[:2].sum() == 0 and torch.allclose(counts[2:] / 60_000, torch.ones(T - 1, dtype=torch.float64),
                                                   atol=0.05)
    # The estimated bound averages to the exact one (each a Monte Carlo draw of its noise too).
    x = digits(4).repeat(150, 1, 1, 1)
    with torch.no_grad():
        exact = model.bound_terms(x, torch.Generator().manual_seed(1), timesteps=0)["diffusion"]
        estimate = model.bound_terms(x, torch.Generator().manual_seed(2), timesteps=K)["diffusion"]
    se = math.sqrt(exact.var() / len(x) + estimate.var() / len(x))
    assert abs(float(exact.mean() - estimate.mean())) < 4 * se, (float(exact.mean()), float(estimate.mean()), se)
    assert estimate.var() > exact.var()                      # the price of K passes instead of T − 1


def test_binary_pixels_are_modelled_on_two_levels_and_palette_pixels_refused():
    model = tiny(T=4, pixels="binary")
    x = digits(6, "threshold")
    terms = model.eval_terms(x, generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(terms["nelbo"]).all() and (terms["recon"] >= 0).all()     # a probability, no shift
    with pytest.raises(UserError, match="8-bit or binary"):
        DDPM(make_config(DDPM.Config, TINY), DataInfo(shape=(3, 8, 8), pixels="palette", palette=((0, 0, 0),) * 2))


# ---- sampling -----------------------------------------------------------------------------------------

def test_ddim_with_eta_zero_is_deterministic_given_the_first_noise():
    model = tiny(T=50)
    x_T = torch.randn(4, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    a = model.ddim(x_T, steps=10, eta=0.0, generator=torch.Generator().manual_seed(1))
    b = model.ddim(x_T, steps=10, eta=0.0, generator=torch.Generator().manual_seed(2))
    assert torch.equal(a, b)
    c = model.ddim(x_T, steps=10, eta=1.0, generator=torch.Generator().manual_seed(2))
    assert not torch.allclose(a, c)                          # η = 1 does draw noise on the way
    assert not torch.allclose(a, model.ddim(torch.randn(4, 1, 8, 8), steps=10, eta=0.0))


def test_ddim_at_every_step_with_eta_one_is_ancestral_ddpm():
    """Ho et al.'s Algorithm 2 with σ_t² = β̃_t and the clipped x̂_0 in the posterior mean, written here."""
    model = tiny(T=12, schedule="cosine")
    T = 12
    x_T = torch.randn(3, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    ours = model.ddim(x_T, steps=T, eta=1.0, generator=torch.Generator().manual_seed(5))
    betas = [0.0] + [float(b) for b in betas_for("cosine", T)]
    abar = [1.0]
    for b in betas[1:]:
        abar.append(abar[-1] * (1 - b))
    g, x = torch.Generator().manual_seed(5), x_T.clone()
    with torch.no_grad():
        for t in range(T, 0, -1):
            eps = model.net(x, torch.full((3,), t))
            x0 = ((x - math.sqrt(1 - abar[t]) * eps) / math.sqrt(abar[t])).clamp(-1, 1)
            mean = (math.sqrt(abar[t - 1]) * betas[t] / (1 - abar[t]) * x0
                    + math.sqrt(1 - betas[t]) * (1 - abar[t - 1]) / (1 - abar[t]) * x)
            var = betas[t] * (1 - abar[t - 1]) / (1 - abar[t])
            x = mean + math.sqrt(var) * torch.randn(x.shape, generator=g) if t > 1 else mean
    assert torch.allclose(ours, ((x + 1) / 2).clamp(0, 1), atol=1e-5)


def test_sampling_is_reproducible_in_range_and_refuses_steps_beyond_T():
    model = tiny(T=30)
    g = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    a, b = model.sample(5, generator=g(), steps=7), model.sample(5, generator=g(), steps=7)
    assert torch.equal(a, b) and a.shape == (5, 1, 8, 8) and 0 <= float(a.min()) and float(a.max()) <= 1
    assert model.sample(2, generator=g(), steps=1).shape == (2, 1, 8, 8)
    with pytest.raises(UserError, match="--steps must be from 1 to 30"):
        model.sample(2, generator=g(), steps=31)


def test_it_works_at_28_by_28_and_odd_sizes():
    for shape in [(1, 28, 28), (3, 7, 5)]:
        model = tiny(T=4, shape=shape, mults="1 2 2")
        assert model.net(torch.randn(2, *shape), torch.tensor([1, 4])).shape == (2, *shape)
        assert model.sample(2, generator=torch.Generator().manual_seed(0), steps=2).shape == (2, *shape)


# ---- learning and the command line --------------------------------------------------------------------

def test_it_learns_digits_beyond_a_gaussian_per_pixel(tmp_path):
    # 90 steps of a 16-channel U-Net, T = 1000: the bound 288 ± 3 nats against the Gaussian's 313.
    run = genlab.train("ddpm", "digits", tmp_path / "ddpm", epochs=2, batch_size=32, lr=2e-3, threads=1, quiet=True,
                       samples=0, channels=16, mults=(1, 2), bound_timesteps=5)
    (r,) = genlab.evaluate([run.path], iwae_k=0, threads=1, live=False)
    assert r["nelbo_nats"] < r["baseline_gaussian_nll_nats"] - 15, r


@pytest.fixture(scope="module")
def ddpm_run(tmp_path_factory):
    path = tmp_path_factory.mktemp("ddpm") / "run"
    assert run_cli("train", "ddpm", "--data", "digits", "--epochs", "1", "--batch-size", "256", "--threads", "1",
                   "--samples", "4", "--channels", "8", "--mults", "1", "--timesteps", "50",
                   "--set", "bound_timesteps=5", "--set", "sample_steps=10", "--out", path) == 0
    return path


def test_sample_takes_steps(ddpm_run, tmp_path):
    out = tmp_path / "s.png"
    assert run_cli("sample", ddpm_run, "-n", "4", "--steps", "20", "-o", out) == 0 and out.is_file()
    a = genlab.sample(ddpm_run, 3, steps=5, seed=1)
    assert torch.equal(a, genlab.sample(ddpm_run, 3, steps=5, seed=1))


@pytest.mark.parametrize("steps, words", [("0", "--steps must be from 1 to 1,000"), ("1001", "--steps must be from 1 to 1,000"),
                                          ("51", "--steps must be from 1 to 50")])
def test_bad_steps_are_one_line(ddpm_run, tmp_path, capsys, steps, words):
    out = tmp_path / "s.png"
    refused(capsys, ["sample", ddpm_run, "--steps", steps, "-o", out], words)
    assert not out.exists()


def test_steps_are_refused_for_a_model_that_does_not_sample_in_steps(tmp_path, capsys):
    run = tmp_path / "vae"
    assert run_cli("train", "vae", "--epochs", "1", "--batch-size", "256", "--hidden", "16", "--samples", "0",
                   "--threads", "1", "--out", run) == 0
    capsys.readouterr()
    out = tmp_path / "s.png"
    refused(capsys, ["sample", run, "--steps", "20", "-o", out], "--steps does not apply to vae")
    assert not out.exists()
    with pytest.raises(UserError, match="--steps"):
        genlab.sample(run, 2, steps=5)


def test_a_trajectory_runs_from_the_noise_to_the_sample():
    model = tiny(T=20)
    states = model.trajectory(3, 5, generator=torch.Generator().manual_seed(4), steps=8)
    assert states.shape == (5, 3, 1, 8, 8)
    noise = torch.randn(3, 1, 8, 8, generator=torch.Generator().manual_seed(4))
    assert torch.allclose(states[0], ((noise + 1) / 2).clamp(0, 1))
    assert torch.equal(states[-1], model.sample(3, generator=torch.Generator().manual_seed(4), steps=8))
