"""The adversarial models' pieces, on tiny nets: the gradient penalty, clipping, the 8-Gaussians ring,
D and G as separate modules, and the indicators."""
import math

import pytest
import torch

from genlab.data.containers.batch import Batch
from torch import nn

from genlab.data.containers.base import DataInfo
from genlab.models.adversarial import losses
from genlab.models.adversarial.indicators import critic_accuracy, diversity_report, mean_pairwise_distance
from genlab.models.adversarial.nets import MLPGenerator
from genlab.models import get_model_class
from genlab.models.base import make_config

DIGITS = DataInfo((1, 8, 8), 10, "continuous")


pytestmark = pytest.mark.usefixtures("one_thread")


def build(name, info=DIGITS, **settings):
    """A model with the given settings, those its Config lacks left out (gan has no `features`...)."""
    cls = get_model_class(name)
    known = cls.Config.__dataclass_fields__
    return cls(make_config(cls.Config, {k: str(v) for k, v in settings.items() if k in known}), info)


def test_gradient_penalty_equals_a_direct_autograd_computation():
    torch.manual_seed(0)
    model = build("wgan-gp", net="conv", features=8)
    real, fake = torch.rand(5, 1, 8, 8) * 2 - 1, torch.rand(5, 1, 8, 8) * 2 - 1
    eps = torch.rand(5, 1, 1, 1)
    gp = model.penalty(real, fake, eps=eps)
    direct = []
    for i in range(5):                      # one example at a time: no batch trick can hide a mistake
        x_hat = (eps[i] * real[i] + (1 - eps[i]) * fake[i]).unsqueeze(0).requires_grad_(True)
        (g,) = torch.autograd.grad(model.discriminator(x_hat).sum(), x_hat)
        direct.append((g.flatten().norm() - 1) ** 2)
    assert gp.item() == pytest.approx(torch.stack(direct).mean().item(), rel=1e-5)
    gp.backward()                           # the penalty trains the critic: its gradient reaches the weights
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.discriminator.parameters())


def test_wgan_gp_critic_loss_is_minus_wasserstein_plus_ten_penalties():
    torch.manual_seed(0)
    model = build("wgan-gp", net="conv", features=8, latent_dim=8, n_critic=1)
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.discriminator.modules())
    logs = model.train_step(Batch(torch.rand(16, 1, 8, 8), None), model.configure_optimizers(1e-4))
    assert logs["d_loss"] == pytest.approx(-logs["wasserstein"] + 10 * logs["gradient_penalty"], rel=1e-5)
    adam = model.configure_optimizers(1e-4)["discriminator"]
    assert isinstance(adam, torch.optim.Adam) and adam.defaults["betas"] == (0.0, 0.9)


def test_clipping_keeps_every_critic_weight_in_the_box():
    torch.manual_seed(0)
    c = 0.01
    model = build("wgan", net="conv", features=8, latent_dim=8, clip=c, n_critic=2)
    opts = model.configure_optimizers(0.05)             # a step far larger than the box
    for _ in range(3):
        model.train_step(Batch(torch.rand(16, 1, 8, 8), None), opts)
    params = list(model.discriminator.parameters())
    assert all(p.abs().max() <= c for p in params)
    assert max(p.abs().max().item() for p in params) == pytest.approx(c)      # the box was reached
    assert isinstance(opts["discriminator"], torch.optim.RMSprop)


@pytest.mark.parametrize("name", ["gan", "dcgan", "wgan", "wgan-gp", "cgan"])
def test_generator_and_discriminator_are_separate_modules(name):
    model = build(name, features=8, hidden=16, latent_dim=8)
    assert isinstance(model.generator, nn.Module) and isinstance(model.discriminator, nn.Module)
    g, d = set(model.generator.parameters()), set(model.discriminator.parameters())
    assert not g & d and g | d == set(model.parameters())
    opts = model.configure_optimizers(1e-4)
    assert set(opts) == {"generator", "discriminator"}
    assert {id(p) for grp in opts["generator"].param_groups for p in grp["params"]} == {id(p) for p in g}
    assert model.log_prob(torch.rand(2, 1, 8, 8)) is None and model.eval_terms(torch.rand(2, 1, 8, 8)) == {}
    logs = model.train_step(Batch(torch.rand(1, 1, 8, 8), torch.tensor([3])), opts)   # a last batch of one image
    assert {"d_loss", "g_loss", "d_real_acc", "d_fake_acc"} <= set(logs)
    x = model.sample(6)
    assert x.shape == (6, 1, 8, 8) and 0 <= x.min() and x.max() <= 1


@pytest.mark.parametrize("side,start", [(28, 7), (32, 4), (64, 4), (8, 2)])
def test_dcgan_nets_are_sized_from_the_data(side, start):
    for channels in (1, 3):
        model = build("dcgan", DataInfo((channels, side, side), 0, "continuous"), features=4, latent_dim=8)
        assert model.generator.net[0].kernel_size == (start, start)
        x = model.sample(2)
        assert x.shape == (2, channels, side, side)
        assert model.discriminator(x * 2 - 1).shape == (2,)


def test_gan_losses_are_the_papers_formulas():
    logits = torch.tensor([-3.0, 0.0, 2.0])
    d = torch.sigmoid(logits)
    assert losses.generator_loss(logits, "minimax").item() == pytest.approx(torch.log(1 - d).mean().item(), rel=1e-6)
    assert losses.generator_loss(logits, "non-saturating").item() == pytest.approx(-torch.log(d).mean().item(),
                                                                                   rel=1e-6)
    real, fake = torch.tensor([1.0, 2.0]), torch.tensor([-1.0, 0.5])
    expected = -(torch.log(torch.sigmoid(real)).mean() + torch.log(1 - torch.sigmoid(fake)).mean())
    assert losses.discriminator_loss(real, fake).item() == pytest.approx(expected.item(), rel=1e-6)


def test_indicators():
    x = torch.rand(50, 1, 8, 8)
    assert mean_pairwise_distance(x[:1].repeat(10, 1, 1, 1)) == 0
    assert mean_pairwise_distance(x) == pytest.approx(math.sqrt(1 / 6), rel=0.1)   # E(u−v)² = 1/6 for U[0,1]
    assert "warning" in diversity_report(x[:1].repeat(10, 1, 1, 1) + 0.01 * x[:10], 0.4)
    assert "warning" not in diversity_report(x, mean_pairwise_distance(x))
    acc = critic_accuracy(torch.tensor([5.0, 6.0, 2.0]), torch.tensor([3.0, 1.0, 0.0]))  # midpoint 2.83
    assert acc == {"d_real_acc": pytest.approx(2 / 3), "d_fake_acc": pytest.approx(2 / 3)}


# ---- the 8-Gaussians ring: mode coverage ----------------------------------------------------------

RADIUS, STD = 2.0, 0.05
CENTRES = RADIUS * torch.stack([torch.cos(torch.arange(8) * math.pi / 4), torch.sin(torch.arange(8) * math.pi / 4)], 1)


def ring(n, g):
    return CENTRES[torch.randint(0, 8, (n,), generator=g)] + STD * torch.randn(n, 2, generator=g)


def modes_covered(points, min_share=0.02):
    """A mode is covered when at least `min_share` of the points lie within 3 standard deviations of it."""
    near = torch.cdist(points, CENTRES) < 3 * STD
    return int((near.float().mean(0) >= min_share).sum())


def test_a_tiny_wgan_gp_covers_the_eight_gaussians():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    # The model's own WGAN-GP step; the toy's nets as in the authors' gan_toy.py: a G without tanh (the
    # ring reaches radius 2) nor batch norm, and λ = 0.1 ("smaller lambda seems to help for toy tasks specifically").
    model = build("wgan-gp", DataInfo((2, 1, 1), 0, "continuous"), net="mlp", hidden=64, latent_dim=2,
                  gp_weight=0.1)
    model.generator = MLPGenerator((2, 1, 1), latent_dim=2, hidden=64, output="linear", norm=False)
    opts = model.configure_optimizers(1e-3)
    for _ in range(5000):      # 5,000 critic steps, 1,000 generator steps; data from [0, 1]: give it (p + 1) / 2
        model.train_step(Batch(((ring(128, g) + 1) / 2).view(-1, 2, 1, 1), None), opts)
    samples = model.sample(2000).view(-1, 2) * 2 - 1
    assert modes_covered(ring(2000, g)) == 8                           # the check itself is sound
    assert modes_covered(samples) >= 6, torch.cdist(samples, CENTRES).lt(3 * STD).float().mean(0)


# ---- n_critic: one critic step per batch, the generator every n_critic batches ---------------------

def changed(before, module):
    return any(not torch.equal(a, b) for a, b in zip(before, module.parameters()))


def snapshot(module):
    return [p.detach().clone() for p in module.parameters()]


@pytest.mark.parametrize("name", ["wgan", "wgan-gp"])
def test_each_critic_step_takes_its_own_batch_and_the_generator_steps_every_n_critic(name):
    """Algorithm 1 of both WGAN papers: every critic iteration samples its own real minibatch."""
    torch.manual_seed(0)
    model = build(name, net="mlp", hidden=16, latent_dim=8, n_critic=3)
    opts = model.configure_optimizers(1e-3)
    g = torch.Generator().manual_seed(0)
    generator_moved, seen = [], []
    real_forward = model.discriminator.forward

    def spy(x, cond=None):         # every input D scores: real images, fakes, the penalty's points
        seen.append(x.detach().clone())
        return real_forward(x, cond)
    model.discriminator.forward = spy
    for _ in range(7):
        batch = torch.rand(8, 1, 8, 8, generator=g)
        g0, d0 = snapshot(model.generator), snapshot(model.discriminator)
        seen.clear()
        logs = model.train_step(Batch(batch, None), opts)
        assert changed(d0, model.discriminator)                    # one critic step every call ...
        assert torch.equal(seen[0], batch * 2 - 1)                 # ... on that call's batch
        assert sum(torch.equal(x, batch * 2 - 1) for x in seen) == 1   # ... seen once, not n_critic times
        generator_moved.append(changed(g0, model.generator))
        assert {"d_loss", "g_loss", "wasserstein"} <= set(logs) and math.isfinite(logs["g_loss"])
    assert generator_moved == [False, False, True, False, False, True, False]
    assert int(model.critic_steps) == 7


def test_one_call_is_one_critic_step_whatever_n_critic():
    """The critic after one call is the same whether the generator steps every call or every fifth."""
    critics = []
    for n_critic in (1, 5):
        torch.manual_seed(0)
        model = build("wgan-gp", net="conv", features=8, latent_dim=8, n_critic=n_critic)
        model.train_step(Batch(torch.rand(16, 1, 8, 8, generator=torch.Generator().manual_seed(1)), None),
                         model.configure_optimizers(1e-3))
        critics.append(model.discriminator.state_dict())
    assert all(torch.equal(critics[0][k], critics[1][k]) for k in critics[0])


def test_weights_saved_before_the_critic_step_count_still_load(tmp_path):
    from safetensors.torch import save_file

    from genlab.models.weights import read_weights
    model = build("wgan-gp", net="mlp", hidden=16, latent_dim=8)
    model.critic_steps += 4
    state = {k: v.contiguous() for k, v in model.state_dict().items() if k != "critic_steps"}
    save_file(state, str(tmp_path / "old.safetensors"), metadata={"model": "wgan-gp"})
    fresh = build("wgan-gp", net="mlp", hidden=16, latent_dim=8)
    read_weights(fresh, tmp_path / "old.safetensors")
    assert int(fresh.critic_steps) == 0
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), fresh.parameters()))
