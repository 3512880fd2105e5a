"""The VAE's bounds and networks, checked against their definitions."""
import math

import pytest

import torch

from genlab.data.containers.batch import Batch

from genlab.data.containers.base import DataInfo
from genlab.models.latent.vae import VAE, VAEConfig


def small_vae(shape=(1, 8, 8), pixels="binary", **kw):
    torch.manual_seed(0)
    return VAE(VAEConfig(latent_dim=3, hidden=32, **kw), DataInfo(shape=shape, pixels=pixels)).eval()


@pytest.mark.slow
def test_iwae_is_below_the_negative_elbo_and_tightens_with_k():
    model = small_vae()
    x = (torch.rand(64, 1, 8, 8) < 0.3).float()
    torch.manual_seed(1)
    nelbo = torch.stack([model.eval_terms(x, iwae_k=0)["nelbo"] for _ in range(50)]).mean(0)
    bounds = {}
    for k in (1, 5, 50, 500):
        torch.manual_seed(2)
        bounds[k] = torch.stack([model.iwae_nll(x, k=k) for _ in range(10)]).mean(0).mean().item()
    assert abs(bounds[1] - nelbo.mean().item()) < 0.3        # k = 1 is the ELBO itself
    assert bounds[1] > bounds[5] > bounds[50] > bounds[500]   # tighter with every k (Burda et al. 2016)


def test_elbo_matches_a_direct_computation():
    model = small_vae()
    x = (torch.rand(4, 1, 8, 8) < 0.5).float()
    mu, logvar = model.encode(x)
    torch.manual_seed(3)
    terms = model.eval_terms(x, iwae_k=0)
    torch.manual_seed(3)
    z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
    p = model.decode(z)
    recon = -(x * p.log() + (1 - x) * (1 - p).log()).flatten(1).sum(1)
    kl = torch.distributions.kl_divergence(
        torch.distributions.Normal(mu, torch.exp(0.5 * logvar)), torch.distributions.Normal(0, 1)).sum(1)
    assert torch.allclose(terms["recon"], recon, atol=1e-4) and torch.allclose(terms["kl"], kl, atol=1e-5)


def test_gaussian_decoder_density_matches_torch_distributions():
    model = small_vae(pixels="continuous")
    assert model.likelihood == "gaussian"
    x = torch.rand(3, 1, 8, 8)
    z = torch.randn(3, 3)
    from genlab.models.latent.nets import pixel_log_likelihood
    out = model.decoder(z)
    mine = pixel_log_likelihood(x, out, "gaussian", model._log_sigma())
    ref = torch.distributions.Normal(torch.sigmoid(out), model._log_sigma().exp()).log_prob(x).flatten(1).sum(1)
    assert torch.allclose(mine, ref, atol=1e-4)


def test_convolutional_nets_for_28_and_32_pixel_images():
    for shape in ((1, 28, 28), (3, 32, 32)):
        model = small_vae(shape=shape, pixels="continuous")
        assert any(isinstance(m, torch.nn.Conv2d) for m in model.modules())
        x = torch.rand(2, *shape)
        assert model.sample(2).shape == (2, *shape)
        assert model.eval_terms(x, iwae_k=3)["iwae"].shape == (2,)
    assert not any(isinstance(m, torch.nn.Conv2d) for m in small_vae().modules())   # 8×8: fully connected


def test_kl_warmup_and_beta_weigh_the_kl_term():
    model = small_vae(kl_warmup=10, beta=2.0).train()
    opt = model.configure_optimizers(1e-3)
    x = (torch.rand(8, 1, 8, 8) < 0.5).float()
    logs = model.train_step(Batch(x, None), opt)
    # After one step the weight is 2.0 · 1/10: loss = recon + 0.2 · kl.
    assert math.isclose(logs["loss"], logs["recon"] + 0.2 * logs["kl"], rel_tol=1e-5)
