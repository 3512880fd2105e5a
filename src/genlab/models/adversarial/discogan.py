"""DiscoGAN (Kim, Cha, Kim, Lee and Kim 2017): cross-domain relations learnt from unpaired images.

Two generators, G_AB and G_BA (encoder-decoders: strided convolutions down, transposed ones up, batch
norm, LeakyReLU / ReLU, tanh), and two discriminators D_A and D_B (DCGAN's convolutional one). Each
direction has the standard GAN loss (the non-saturating −log D_B(G_AB(a)) for the generator, the log
loss for D) and a reconstruction loss, the squared distance between a and G_BA(G_AB(a)) (the paper's
choice among its distances); the generators' loss is the sum of both directions' GAN and reconstruction
losses, unweighted, as the paper's L_G = L_GAN_B + L_CONST_A + L_GAN_A + L_CONST_B. Adam(0.0002,
β = (0.5, 0.999)) with a small weight decay (10⁻⁵), as the authors' code.

Unlike CycleGAN: no pool of past fakes, no identity loss, squared rather than absolute reconstruction
error with no λ, an image-level discriminator instead of patches, batch norm instead of instance norm.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..base import option
from . import losses
from .cyclegan import Translator
from .nets import ConvDiscriminator
from .translation_nets import EncoderDecoderGenerator


@dataclass
class DiscoGANConfig:
    features: int = option(32, "channels of the generators' first layer and the discriminators' (the paper's 64)",
                           low=1)


class DiscoGAN(Translator):
    name = "discogan"
    Config = DiscoGANConfig
    default_batch_size = 64
    default_steps = 4000            # 385 epochs of the 665 Pokémon sprites: the nets are light
    weight_decay = 1e-5

    def __init__(self, config, info):
        super().__init__(config, info)
        shape = info.shape
        self.g_ab = EncoderDecoderGenerator(shape, config.features)
        self.g_ba = EncoderDecoderGenerator(shape, config.features)
        self.d_a = ConvDiscriminator(shape, config.features)
        self.d_b = ConvDiscriminator(shape, config.features)

    def train_step(self, batch, optimizers):
        a, b = self._domains(batch)
        if len(a) == 1:          # batch norm needs two examples: a last batch of one is doubled
            a, b = a.repeat(2, 1, 1, 1), b.repeat(2, 1, 1, 1)
        self._discriminators_fixed(True)
        try:
            fake_b, fake_a = self.g_ab(a), self.g_ba(b)
            gan = losses.generator_loss(self.d_b(fake_b)) + losses.generator_loss(self.d_a(fake_a))
            recon = ((self.g_ba(fake_b) - a) ** 2).mean() + ((self.g_ab(fake_a) - b) ** 2).mean()
            optimizers["generator"].zero_grad(set_to_none=True)
            (gan + recon).backward()
            optimizers["generator"].step()
        finally:
            self._discriminators_fixed(False)
        # Real and fake in separate batches, as DCGAN's: batch norm sees one kind at a time.
        d_b = losses.discriminator_loss(self.d_b(b), self.d_b(fake_b.detach()))
        d_a = losses.discriminator_loss(self.d_a(a), self.d_a(fake_a.detach()))
        optimizers["discriminator"].zero_grad(set_to_none=True)
        (d_a + d_b).backward()
        optimizers["discriminator"].step()
        return {"g_loss": gan.item(), "recon_loss": recon.item(), "d_a_loss": d_a.item(), "d_b_loss": d_b.item()}
