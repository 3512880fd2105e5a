"""Models by name: one line a model. `get_model_class("vae")` imports the model's file on first use, so the
registry imports no model and no model imports the registry."""
from __future__ import annotations

import importlib

from ..errors import UserError

# name -> "module:Class" under genlab.models
MODELS = {
    "ae": "latent.autoencoder:Autoencoder",
    "vae": "latent.vae:VAE",
    "cvae": "latent.cvae:ConditionalVAE",
    "gmm": "latent.gmm:GaussianMixture",
    "fa": "latent.factor_analysis:FactorAnalysis",
    "sentence-vae": "latent.sentence_vae:SentenceVAE",
    "pixelcnn": "autoregressive.pixelcnn:PixelCNN",
    "gated-pixelcnn": "autoregressive.gated_pixelcnn:GatedPixelCNN",
    "pixelrnn-row": "autoregressive.row_lstm:RowLSTM",
    "pixelrnn-diag": "autoregressive.diagonal_bilstm:DiagonalBiLSTM",
    "pixel-lstm": "autoregressive.pixel_lstm:PixelLSTM",
    "made": "autoregressive.made:MADE",
    "wavenet": "autoregressive.wavenet:WaveNet",
    "vpn": "autoregressive.vpn:VPN",
    "nade": "autoregressive.nade:NADE",
    "rbm": "energy.rbm:RBM",
    "gsn": "energy.gsn:GSN",
    "gan": "adversarial.gan:GAN",
    "dcgan": "adversarial.dcgan:DCGAN",
    "wgan": "adversarial.wgan:WGAN",
    "wgan-gp": "adversarial.wgan_gp:WGANGP",
    "cgan": "adversarial.cgan:ConditionalGAN",
    "cyclegan": "adversarial.cyclegan:CycleGAN",
    "discogan": "adversarial.discogan:DiscoGAN",
    "text2img": "adversarial.text2img:TextToImage",
    "ddpm": "diffusion.ddpm:DDPM",
    "realnvp": "flows.realnvp:RealNVP",
    "glow": "flows.glow:Glow",
}


def model_names() -> list[str]:
    return sorted(MODELS)


def get_model_class(name: str):
    if name not in MODELS:
        raise UserError(f"unknown model {name!r}; known: {', '.join(model_names())}")
    module, cls = MODELS[name].split(":")
    return getattr(importlib.import_module(f"{__package__}.{module}"), cls)
