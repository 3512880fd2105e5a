"""Imports every model module so that each registers itself."""
from .latent import autoencoder, cvae, gmm, sentence_vae, vae  # noqa: F401
from .adversarial import cgan, dcgan, gan, wgan, wgan_gp  # noqa: F401
from .autoregressive import diagonal_bilstm, gated_pixelcnn, pixel_lstm, pixelcnn, row_lstm  # noqa: F401
