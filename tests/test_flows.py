"""Real NVP and Glow: every step's log-determinant and each whole flow's log p(x) against a brute-force
Jacobian (torch.autograd.functional.jacobian, slogdet) on tiny inputs; the inverse gives the input back;
the density integrates to one (a grid over a 2-pixel image); variational dequantisation's log q against the
Jacobian of its noise; actnorm set once from the first batch and kept through save and load; sampling at a
temperature; learning digits beyond a Gaussian per pixel in seconds."""
import math

import pytest
import torch

import genlab
from genlab.data.containers.base import DataInfo
from genlab.data.containers.batch import Batch
from genlab.errors import UserError
from genlab.explore import latent
from genlab.models import GenerativeModel, get_model_class
from genlab.models.base import make_config
from genlab.models.flows.layers import (
    ActNorm,
    AffineCoupling,
    Dequantiser,
    InvConv1x1,
    Logit,
    Squeeze,
    standard_normal_logp,
)

pytestmark = pytest.mark.usefixtures("one_thread")

FLOWS = {"realnvp": {"hidden": "8"}, "glow": {"hidden": "8", "depth": "2"}}


def build(name, shape=(1, 4, 4), **settings):
    cls = get_model_class(name)
    torch.manual_seed(0)
    return cls(make_config(cls.Config, {**FLOWS[name], **settings}), DataInfo(shape=shape, pixels="continuous"))


@torch.no_grad()
def perturb(module: torch.nn.Module, scale: float = 0.1) -> None:
    """Move every weight off its initial value: zero-initialised nets would make each coupling the identity
    and hide a wrong log-determinant."""
    g = torch.Generator().manual_seed(1)
    for p in module.parameters():
        p.add_(scale * torch.randn(p.shape, generator=g, dtype=p.dtype))


def random_flow(name, shape=(1, 4, 4), **settings):
    """A flow in double precision with actnorm set from a batch and every weight perturbed."""
    model = build(name, shape, **settings).double().train()
    model._codes(torch.rand(16, *shape, dtype=torch.double))       # actnorm's first-batch initialisation
    perturb(model)
    return model.eval()


def brute_logdet(fn, x: torch.Tensor) -> torch.Tensor:
    """log |det ∂fn(x)/∂x| of one example, from the full Jacobian."""
    jac = torch.autograd.functional.jacobian(lambda v: fn(v.view(x.shape)).flatten(), x.flatten())
    sign, logdet = torch.linalg.slogdet(jac)
    assert sign != 0
    return logdet


STEPS = {
    "logit": (lambda: Logit(0.05), (1, 1, 4, 4)),
    "squeeze": (lambda: Squeeze(), (1, 2, 4, 4)),
    "actnorm": (lambda: ActNorm(3), (1, 3, 2, 2)),
    "invconv": (lambda: InvConv1x1(4), (1, 4, 2, 2)),
    "checkerboard-0": (lambda: AffineCoupling(1, 8, 1, "checkerboard", 0), (1, 1, 4, 4)),
    "checkerboard-1": (lambda: AffineCoupling(2, 8, 0, "checkerboard", 1), (1, 2, 3, 3)),
    "channel-0": (lambda: AffineCoupling(4, 8, 1, "channel", 0), (1, 4, 2, 2)),
    "channel-1-odd": (lambda: AffineCoupling(3, 8, 0, "channel", 1), (1, 3, 2, 2)),
    "additive": (lambda: AffineCoupling(4, 8, 0, "channel", 0, additive=True), (1, 4, 2, 2)),
}


@pytest.mark.parametrize("step", list(STEPS))
def test_each_step_log_det_is_the_brute_force_jacobian_and_it_inverts(step):
    make, shape = STEPS[step]
    torch.manual_seed(0)
    layer = make().double()
    perturb(layer, 0.3)
    x = torch.rand(shape, dtype=torch.double) * 0.9 + 0.05
    y, logdet = layer(x)
    assert y.shape[0] == 1 and y.numel() == x.numel()
    assert torch.allclose(logdet, brute_logdet(lambda v: layer(v)[0], x).view(1), atol=1e-8)
    assert torch.allclose(layer.inverse(y), x, atol=1e-10)
    if step not in ("squeeze", "additive"):          # volume changes: a log-det of 0 would prove nothing
        assert abs(float(logdet.detach())) > 1e-3


@pytest.mark.parametrize("name", FLOWS)
def test_log_prob_is_the_change_of_variables_with_a_brute_force_jacobian(name):
    model = random_flow(name)
    for seed in range(2):
        x = torch.rand(1, 1, 4, 4, dtype=torch.double, generator=torch.Generator().manual_seed(seed))
        # The code is N(0, I) under the model, so log p(x) = log N(code) + log |det ∂code/∂x|.
        reference = standard_normal_logp(model.encode(x)) + brute_logdet(model.encode, x)
        assert torch.allclose(model.log_prob(x), reference, atol=1e-8), (model.log_prob(x), reference)


@pytest.mark.parametrize("name, shape", [("realnvp", (1, 8, 8)), ("glow", (1, 8, 8)), ("realnvp", (3, 4, 4)),
                                         ("glow", (3, 4, 4))])
def test_decoding_a_code_gives_the_image_back(name, shape):
    model = build(name, shape).train()
    x = torch.rand(8, *shape)
    model._codes(x)
    perturb(model)
    model.eval()
    with torch.no_grad():
        z = model.encode(x)
        assert z.shape == (8, model.latent_dim) and model.latent_dim == x[0].numel()
        assert (model.decode(z) - x).abs().max() < 1e-4
        drawn = model.sample(4, generator=torch.Generator().manual_seed(0))
        assert (model.decode(model.encode(drawn)) - drawn).abs().max() < 1e-3


def test_the_density_integrates_to_one_over_a_grid():
    """A 1×1×2 image (no squeeze, checkerboard couplings only): the midpoint rule over the whole range
    the logit's inverse reaches, (−α/(1−2α), 1 + α/(1−2α))², sums the density to 1."""
    model = random_flow("realnvp", (1, 1, 2), levels="0", blocks="0")
    alpha = model.config.alpha
    lo, hi, n = -alpha / (1 - 2 * alpha), 1 + alpha / (1 - 2 * alpha), 250
    width = (hi - lo) / n
    mid = lo + width * (torch.arange(n, dtype=torch.double) + 0.5)
    grid = torch.cartesian_prod(mid, mid).view(-1, 1, 1, 2)
    with torch.no_grad():
        total = float(model.log_prob(grid).exp().sum()) * width ** 2
    assert abs(total - 1) < 2e-3, total


def test_variational_dequantisation_log_q_is_the_density_of_its_noise():
    torch.manual_seed(0)
    deq = Dequantiser(1, 8).double()
    k = torch.randint(0, 256, (1, 1, 3, 3)).double()
    x, log_q = deq(k)
    assert float(log_q.detach().abs().max()) < 1e-10          # the zero-initialised net starts at the uniform
    perturb(deq, 0.5)
    eps = torch.randn(1, 1, 3, 3, dtype=torch.double) * 2
    x, log_q = deq.transform(k, eps)
    u = x * 256 - k
    assert bool(((u > 0) & (u < 1)).all())
    # u = 256·x − k is a function of ε, standard logistic: q(u) = logistic(ε) / |det ∂u/∂ε|
    log_logistic = (-eps - 2 * torch.log1p(torch.exp(-eps))).sum()
    reference = log_logistic - brute_logdet(lambda e: deq.transform(k, e)[0] * 256, eps)
    assert torch.allclose(log_q, reference.view(1), atol=1e-8)


@pytest.mark.parametrize("name", FLOWS)
def test_variational_dequantisation_is_reported_as_a_bound(name):
    model = build(name, dequantisation="variational").eval()
    assert model.likelihood_kind == "bound" and type(model).likelihood_kind == "exact"
    x = (torch.randint(0, 256, (5, 1, 4, 4)).float() + 0.5) / 256
    terms = model.eval_terms(x, generator=torch.Generator().manual_seed(0))
    assert set(terms) == {"nelbo"} and terms["nelbo"].shape == (5,)
    # The bound draws its noise from the generator: the same seed, the same figure; another seed, another.
    again = model.eval_terms(x, generator=torch.Generator().manual_seed(0))["nelbo"]
    other = model.eval_terms(x, generator=torch.Generator().manual_seed(1))["nelbo"]
    assert torch.equal(terms["nelbo"], again) and not torch.equal(terms["nelbo"], other)
    assert set(build(name).eval().eval_terms(x)) == {"nll"}


def test_actnorm_is_set_once_from_the_first_batch_and_kept_through_save_and_load(tmp_path):
    model = build("glow").train()
    norms = [m for m in model.modules() if isinstance(m, ActNorm)]
    assert norms and not any(bool(m.initialised) for m in norms)
    first = torch.rand(32, 1, 4, 4)
    with torch.no_grad():
        h = model.steps[0](model.logit(first)[0])[0]                   # what the first actnorm sees
        model._codes(first)
        out, _ = model.steps[1](h)
    assert all(bool(m.initialised) for m in norms)
    # On the first batch its output has zero mean and unit variance per channel.
    assert out.mean(dim=(0, 2, 3)).abs().max() < 1e-5
    assert (out.std(dim=(0, 2, 3), unbiased=False) - 1).abs().max() < 1e-4
    model.train_step(Batch(first), model.configure_optimizers(1e-3))
    loc, log_scale = model.steps[1].loc.detach().clone(), model.steps[1].log_scale.detach().clone()
    model.save_pretrained(tmp_path / "saved")
    again = GenerativeModel.from_pretrained(tmp_path / "saved").train()
    assert all(bool(m.initialised) for m in again.modules() if isinstance(m, ActNorm))
    with torch.no_grad():
        again._codes(torch.rand(32, 1, 4, 4) * 0.1)                  # other data: no second initialisation
    assert torch.equal(again.steps[1].loc, loc) and torch.equal(again.steps[1].log_scale, log_scale)


@pytest.mark.parametrize("name", FLOWS)
def test_sampling_at_a_temperature_scales_the_code(name):
    model = build(name, (1, 8, 8)).eval()
    d = model.latent_dim
    half = model.sample(3, generator=torch.Generator().manual_seed(2), temperature=0.5)
    z = torch.randn(3, d, generator=torch.Generator().manual_seed(2))
    assert torch.allclose(half, model.decode(0.5 * z))
    assert float(half.min()) >= 0 and float(half.max()) <= 1
    cold = build(name, (1, 8, 8), temperature="0.5").eval()          # the Config's temperature, the default
    assert torch.equal(cold.sample(3, generator=torch.Generator().manual_seed(2)), half)
    with pytest.raises(UserError):
        make_config(type(model).Config, {"temperature": "0"})


@pytest.mark.parametrize("name", FLOWS)
def test_interpolation_runs_from_one_image_to_the_other(name):
    model = build(name, (1, 8, 8)).eval()
    xa, xb = torch.rand(1, 1, 8, 8), torch.rand(1, 1, 8, 8)
    path = latent.interpolate(model, xa, xb, steps=5)
    assert path.shape == (5, 1, 8, 8)
    assert (path[0] - xa[0]).abs().max() < 1e-4 and (path[-1] - xb[0]).abs().max() < 1e-4


@pytest.mark.parametrize("name, info, says", [
    ("realnvp", DataInfo(shape=(1, 8, 8), pixels="binary"), "--binarize none"),
    ("glow", DataInfo(shape=(1, 8, 8), pixels="palette", palette=((0,), (255,))), "--binarize none"),
    ("realnvp", DataInfo(shape=(1, 28, 28), pixels="continuous"), "use --levels 2 or fewer, or --size"),
    ("realnvp", DataInfo(shape=(1, 7, 7), pixels="continuous"), "use --levels 0 or fewer, or --size"),
    ("glow", DataInfo(shape=(1, 7, 7), pixels="continuous"), "use --size with a multiple of 8"),
])
def test_data_a_flow_cannot_model_is_refused_with_one_line(name, info, says):
    cls = get_model_class(name)
    with pytest.raises(UserError) as e:
        cls(make_config(cls.Config, {"levels": "3"}), info)
    assert says in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("name, settings", [
    ("realnvp", {"hidden": 16, "blocks": 0}),
    ("glow", {"hidden": 16, "depth": 2}),
])
def test_it_learns_digits_beyond_a_gaussian_per_pixel(name, settings, tmp_path):
    run = genlab.train(name, "digits", tmp_path / name, epochs=2, batch_size=32, lr=2e-3, threads=1, quiet=True,
                       samples=0, **settings)
    (r,) = genlab.evaluate([run.path], iwae_k=0, threads=1, live=False)
    # 268 (realnvp) and 275 (glow) nats against 313: 90 steps of a tiny flow
    assert r["nll_nats"] < r["baseline_gaussian_nll_nats"] - 20, r
    assert math.isclose(r["nll_bpd"], r["nll_nats"] / (64 * math.log(2)))
