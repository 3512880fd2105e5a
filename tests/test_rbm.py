"""The RBM: its free energy and partition function against brute-force sums over every state, AIS against
the exact log Z of an RBM small enough to sum (within its stated error), the Gibbs sampler against the exact
distribution, one AIS per set of weights, the AIS figure and its uncertainty as `genlab eval` reports it,
and learning on real digits by CD and PCD."""
import itertools
import math

import pytest
import torch

import genlab
from genlab import modalities
from genlab.data.containers.base import DataInfo
from genlab.errors import UserError
from genlab.evaluation.likelihood import summarise
from genlab.evaluation.table import format_table
from genlab.models import get_model_class
from genlab.models.base import make_config
from genlab.models.energy import ais

pytestmark = pytest.mark.usefixtures("one_thread")

RBM = get_model_class("rbm")


def tiny(hidden=5, shape=(1, 2, 3), scale=1.0, **settings):
    """A small RBM with weights of a real size (not the near-zero start), so its distribution has shape."""
    torch.manual_seed(0)
    model = RBM(make_config(RBM.Config, {"hidden": str(hidden), **settings}), DataInfo(shape=shape))
    with torch.no_grad():
        model.weight.normal_(0, scale)
        model.visible_bias.normal_(0, scale)
        model.hidden_bias.normal_(0, scale)
    return model.eval()


def states(n):
    return torch.tensor(list(itertools.product([0.0, 1.0], repeat=n)))


def test_free_energy_and_log_z_are_the_brute_force_sums_over_every_state():
    model = tiny(hidden=5)
    v, h = states(6), states(5)
    W, b, c = model.weight.double(), model.visible_bias.double(), model.hidden_bias.double()
    vd, hd = v.double(), h.double()
    neg_energy = (vd @ b)[:, None] + (hd @ c)[None, :] + vd @ W.t() @ hd.t()       # −E(v, h): 64 × 32
    assert torch.allclose(-model.free_energy(v).double(), torch.logsumexp(neg_energy, 1), atol=1e-4)
    assert model.exact_log_z() == pytest.approx(float(torch.logsumexp(neg_energy.detach().flatten(), 0)), abs=1e-9)
    # The same sum over the visible states, when they are the fewer.
    wide = tiny(hidden=9)
    total = torch.logsumexp(-wide.free_energy(v).double(), 0)
    assert wide.exact_log_z() == pytest.approx(float(total.detach()), abs=1e-4)


def test_with_the_exact_log_z_every_binary_image_sums_to_one():
    model = tiny(hidden=5)
    log_p = -model.free_energy(states(6).view(-1, 1, 2, 3)).detach().double() - model.exact_log_z()
    assert abs(float(torch.logsumexp(log_p, 0).exp()) - 1) < 1e-5


def digits_rbm(hidden: int, persistent: bool, epochs: int = 5):
    """An RBM trained briefly on digits, as the trainer would (its data, batches and steps)."""
    modality = modalities.get("image")
    config = make_config(RBM.Config, {"hidden": str(hidden), "persistent": str(persistent)})
    ds = modality.load("digits", {})
    info, record = modality.prepare(ds, RBM, config, {"spec": "digits"})
    torch.manual_seed(0)
    model = RBM(config, info)
    train, test = modality.batches(ds, info, record, batch_size=20, seed=0, device="cpu")
    opt = model.configure_optimizers(3e-2)
    for e in range(epochs):
        for batch in train.epoch(e):
            model.train_step(batch, opt)
    return model.eval(), test


@pytest.mark.parametrize("persistent", [False, True])
def test_ais_agrees_with_the_exact_log_z_of_a_trained_rbm_within_its_stated_error(persistent):
    # 64 pixels and 12 hidden units: log Z summed exactly over the 2^12 hidden states.
    model, _ = digits_rbm(hidden=12, persistent=persistent)
    exact = model.exact_log_z()
    estimate, se = model.log_z()                       # 1000 annealing steps, 100 chains: the defaults
    assert 0 < se < 0.1, se
    assert abs(estimate - exact) < 3 * se, (estimate, exact, se)
    # Its standard error is honest: over independent (shorter) runs the errors are about that size, not
    # many times it.
    z = []
    for seed in range(1, 7):
        g = torch.Generator().manual_seed(seed)
        value, s = ais.ais_log_z(*model._weights(), steps=300, chains=50, generator=g)
        z.append((value - exact) / s)
    assert math.sqrt(sum(t * t for t in z) / len(z)) < 2, z


def test_the_annealing_schedule_runs_from_zero_to_one_in_the_stated_steps():
    for steps in (1, 5, 29, 1000):
        betas = ais.beta_schedule(steps)
        assert len(betas) == steps + 1 and betas[0] == 0 and betas[-1] == 1
        assert bool((betas.diff() > 0).all())
    betas = ais.beta_schedule(1000)                    # Salakhutdinov & Murray's spacing: most steps near 1
    assert int((betas > 0.9).sum()) > 600 and int((betas < 0.5).sum()) < 50


def test_gibbs_samples_follow_the_exact_distribution():
    model = tiny(hidden=4, gibbs_steps="30")
    x = model.sample(4000, generator=torch.Generator().manual_seed(1))
    assert x.shape == (4000, 1, 2, 3) and set(x.unique().tolist()) <= {0.0, 1.0}
    codes = (x.flatten(1) * 2 ** torch.arange(5, -1, -1)).sum(1).long()            # states() order
    seen = torch.bincount(codes, minlength=64).double() / len(codes)
    exact = (-model.free_energy(states(6)).detach().double() - model.exact_log_z()).exp()
    assert 0.5 * float((seen - exact).abs().sum()) < 0.06        # total variation; ~0.03 from 4000 draws


def test_ais_runs_once_per_set_of_weights(monkeypatch):
    model = tiny(hidden=5, ais_temperatures="50")
    calls = []
    real = ais.ais_log_z
    monkeypatch.setattr("genlab.models.energy.rbm.ais_log_z", lambda *a, **k: calls.append(1) or real(*a, **k))
    x = torch.bernoulli(torch.full((8, 1, 2, 3), 0.5))
    first = model.eval_terms(x[:4])
    model.eval_terms(x[4:])                                      # another test batch: the same estimate
    assert len(calls) == 1
    with torch.no_grad():
        model.hidden_bias[0] += 0.5                              # new weights: a new estimate
    second = model.eval_terms(x[:4])
    assert len(calls) == 2 and not torch.equal(first["nll_ais"], second["nll_ais"])


def test_the_ais_figure_carries_the_uncertainty_of_log_z_as_well_as_of_the_test_images():
    model = tiny(hidden=5, ais_temperatures="20", ais_chains="10")
    x = torch.bernoulli(torch.full((50, 1, 2, 3), 0.5), generator=torch.Generator().manual_seed(0))
    terms = {k: v.double() for k, v in model.eval_terms(x).items()}
    out = summarise(model, terms)
    log_z, log_z_se = model.log_z()
    assert out["ais_log_z"] == log_z and out["ais_log_z_se"] == log_z_se > 0
    f = model.free_energy(x).detach().double()
    assert out["nll_ais_nats"] == pytest.approx(float(f.mean()) + log_z)
    spread = float(f.std()) / math.sqrt(len(f))
    assert out["nll_ais_nats_se"] == pytest.approx(math.hypot(spread, log_z_se))
    assert "log Z" in out["standard_error"]
    table = format_table([{"run": "/r/rbm", "model": "rbm", "data": "digits", "pixels": "dynamic", **out}])
    assert "AIS estimate" in table and f"{out['nll_ais_nats']:.3f}±{out['nll_ais_nats_se']:.3f}" in table
    assert "not a bound" in table


def test_wrong_pixels_and_too_large_exact_sums_are_one_line():
    with pytest.raises(UserError, match="binary pixels"):
        RBM(RBM.Config(), DataInfo(shape=(1, 2, 3), pixels="continuous"))
    with pytest.raises(UserError, match="AIS"):
        tiny(hidden=30, shape=(1, 5, 6)).exact_log_z()


@pytest.mark.parametrize("persistent", [False, True])
def test_it_learns_digits_beyond_the_independent_pixel_baseline(tmp_path, persistent):
    run = genlab.train("rbm", "digits", tmp_path / "rbm", epochs=8, lr=1e-2, threads=1, quiet=True, samples=0,
                       hidden=100, persistent=persistent)
    (r,) = genlab.evaluate([run.path], iwae_k=0, threads=1, live=False)
    # CD-1: 25.3 against 27.1; PCD-1: 24.6 (batches of 20, Adam at 1e-2: quicker than the defaults' 1e-3,
    # which need 5,000 steps).
    assert r["nll_ais_nats"] < r["baseline_nll_nats"] - 1.0, r
    assert 0 < r["ais_log_z_se"] < r["nll_ais_nats_se"]
    x = genlab.load(run.path).sample(64, generator=torch.Generator().manual_seed(0))
    assert x.shape == (64, 1, 8, 8) and set(x.unique().tolist()) <= {0.0, 1.0}
    data = modalities.get("image").load("digits", {}).train_x.double().div(255).mean()
    assert abs(float(x.mean()) - float(data)) < 0.1            # the chains reach digits' ink, not a blank
