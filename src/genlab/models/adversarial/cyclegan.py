"""CycleGAN (Zhu, Park, Isola and Efros 2017): translation between two domains of images learnt from
unpaired examples.

Two generators, G: A → B and F: B → A, and two discriminators, D_B telling real B from G's fakes and D_A
real A from F's. The adversarial loss is least squares (Mao et al. 2017: D pushes real scores to 1 and
fakes to 0, G pushes its fakes' scores to 1), which the paper found steadier than the log loss. Since
many maps fool a discriminator, the cycle-consistency loss ties the two together: λ·(‖F(G(a)) − a‖₁ +
‖G(F(b)) − b‖₁), λ = 10; the optional identity loss λ_id·λ·(‖G(b) − b‖₁ + ‖F(a) − a‖₁) (λ_id = 0.5 in
the authors' code) keeps a generator from changing what is already of its target domain. The
discriminators learn from a pool of the last 50 fakes (translation_nets.ImagePool) and their loss is
halved, as the paper's, "to slow down the rate at which D learns relative to G". Adam(0.0002,
β = (0.5, 0.999)); the paper holds the rate for 100 epochs and decays it linearly to 0 over 100 more:
here `--lr-schedule hold-linear` by default: constant for the first half of the run, then linear to 0.

The nets (translation_nets.py) are the paper's, with fewer halvings for small images.

A batch holds the two domains drawn independently (modalities/image.py): `x` domain A, `condition`
domain B; no image of one is ever paired with an image of the other. The generator step comes first,
then the discriminators' on its fakes (through the pool), as the paper's code.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn import functional as F

from ...errors import UserError
from ..base import GenerativeModel, option
from .translation_nets import ImagePool, PatchDiscriminator, ResnetGenerator

DIRECTIONS = ("a2b", "b2a")


class Translator(GenerativeModel):
    """What the two-domain translators share: G_ab and G_ba (`generators`), D_a and D_b, two optimisers,
    `translate`, and their test figures: the cycle error each way.

    A translator draws nothing of its own: `sample(n, condition=a)` is the translation of the images `a`
    (domain A) into domain B, and without images it is refused with one line. It has no likelihood;
    `eval_terms` gives, per test example, the mean absolute error of a round trip (A → B → A for the
    example of A, B → A → B for that of B) in 8-bit levels, the figures the trainer logs after each epoch
    and `genlab eval` reports beside its comparisons with the truth (modalities/image.py)."""

    family = "adversarial"
    conditioning = "image"          # the other domain's images: a batch's `condition`
    abilities = ("translate",)
    likelihood_kind = "none"
    default_binarize = "none"       # 8-bit pixels, dequantised
    default_lr = 2e-4
    weight_decay = 0.0

    def configure_optimizers(self, lr):
        gens = [p for g in (self.g_ab, self.g_ba) for p in g.parameters()]
        discs = [p for d in (self.d_a, self.d_b) for p in d.parameters()]
        return {name: torch.optim.Adam(params, lr=lr, betas=(0.5, 0.999), weight_decay=self.weight_decay)
                for name, params in (("generator", gens), ("discriminator", discs))}

    # -- what a translator is given --
    def check_condition(self, condition, n=None):
        """The images to translate: N×C×H×W floats of the data's shape (in [0, 1]); anything else is one line."""
        if condition is None:
            return
        c, h, w = self.info.shape
        if not torch.is_tensor(condition) or not condition.is_floating_point() or condition.dim() != 4 \
                or tuple(condition.shape[1:]) != (c, h, w):
            shape = tuple(condition.shape) if torch.is_tensor(condition) else type(condition).__name__
            raise UserError(f"{self.name} translates images: give N×{c}×{h}×{w} images in [0, 1], not {shape}")
        if n is not None and len(condition) != n:
            raise UserError(f"{len(condition)} images for {n} translations")

    def generator(self, direction: str):
        if direction not in DIRECTIONS:
            raise UserError(f"direction must be a2b or b2a, not {direction!r}")
        return self.g_ab if direction == "a2b" else self.g_ba

    def _domains(self, batch) -> tuple[torch.Tensor, torch.Tensor]:
        """A batch's two domains, in [-1, 1] (the generators' tanh range)."""
        if batch.condition is None:
            raise UserError(f"{self.name} learns from two domains of images: train it with --data-a A --data-b B")
        return batch.x * 2 - 1, batch.condition * 2 - 1

    def _discriminators_fixed(self, fixed: bool) -> None:
        self.d_a.requires_grad_(not fixed)
        self.d_b.requires_grad_(not fixed)

    # -- the abilities --
    @torch.no_grad()
    def translate(self, x: torch.Tensor, direction: str = "a2b") -> torch.Tensor:
        """Images of one domain (N×C×H×W in [0, 1]) as the other: direction a2b (A → B) or b2a."""
        g = self.generator(direction)
        self.check_condition(x)
        return ((g(x.to(self.device) * 2 - 1) + 1) / 2).clamp(0, 1)

    @torch.no_grad()
    def sample(self, n, *, condition=None, generator=None):
        if condition is None:
            raise UserError(f"{self.name} translates images and draws none of its own: give it images to translate "
                            f"(genlab translate RUN --image x.png; genlab sample RUN shows held-out ones)")
        self.check_condition(condition, n)
        return self.translate(condition, "a2b")

    @torch.no_grad()
    def eval_terms(self, x, condition=None, *, iwae_k=100, generator=None):
        """Per test example: the round trip's mean absolute error, in 8-bit levels (0–255)."""
        def round_trip(images, there, back):
            v = images * 2 - 1
            return (back(there(v)) - v).abs().flatten(1).mean(1) * 127.5
        out = {"cycle_a_mae": round_trip(x, self.g_ab, self.g_ba)}
        if condition is not None:
            out["cycle_b_mae"] = round_trip(condition, self.g_ba, self.g_ab)
        return out


@dataclass
class CycleGANConfig:
    features: int = option(32, "channels of the generators' first layer and the discriminators' (the paper's 64)",
                           low=1)
    blocks: int = option(6, "residual blocks in each generator (the paper: 6 for 128 px, 9 for 256 px)", low=0)
    cycle_weight: float = option(10.0, "λ, the weight of the cycle-consistency loss", low=0.0)
    identity_weight: float = option(0.5, "λ_id: the identity loss weighs λ_id·λ (0: off)", low=0.0)
    pool_size: int = option(50, "past fakes the discriminators learn from (0: the newest batch only)", low=0)


class CycleGAN(Translator):
    name = "cyclegan"
    Config = CycleGANConfig
    default_batch_size = 4          # the paper's 1 is slow on a CPU; instance norm makes the size matter little
    default_steps = 10_000          # 60 epochs of the 665 Pokémon sprites
    default_epoch_range = (1, 200)
    default_train = {"lr_schedule": "hold-linear"}     # the paper's: constant, then linear to 0 over the second half

    def __init__(self, config, info):
        super().__init__(config, info)
        shape = info.shape
        self.g_ab = ResnetGenerator(shape, config.features, config.blocks)
        self.g_ba = ResnetGenerator(shape, config.features, config.blocks)
        self.d_a = PatchDiscriminator(shape, config.features)
        self.d_b = PatchDiscriminator(shape, config.features)
        self.pool_a = ImagePool(config.pool_size, shape)      # F's fakes, for D_a
        self.pool_b = ImagePool(config.pool_size, shape)      # G's fakes, for D_b

    def train_step(self, batch, optimizers):
        a, b = self._domains(batch)
        cfg = self.config
        # The generators, through the discriminators held fixed.
        self._discriminators_fixed(True)
        try:
            fake_b, fake_a = self.g_ab(a), self.g_ba(b)
            adversarial = least_squares(self.d_b(fake_b), 1.0) + least_squares(self.d_a(fake_a), 1.0)
            cycle = (self.g_ba(fake_b) - a).abs().mean() + (self.g_ab(fake_a) - b).abs().mean()
            identity = torch.zeros((), device=a.device)
            if cfg.identity_weight > 0:
                identity = (self.g_ab(b) - b).abs().mean() + (self.g_ba(a) - a).abs().mean()
            loss = adversarial + cfg.cycle_weight * cycle + cfg.identity_weight * cfg.cycle_weight * identity
            optimizers["generator"].zero_grad(set_to_none=True)
            loss.backward()
            optimizers["generator"].step()
        finally:
            self._discriminators_fixed(False)
        # The discriminators: real against fakes from the pools, the loss halved.
        old_b, old_a = self.pool_b.query(fake_b.detach()), self.pool_a.query(fake_a.detach())
        d_b = 0.5 * (least_squares(self.d_b(b), 1.0) + least_squares(self.d_b(old_b), 0.0))
        d_a = 0.5 * (least_squares(self.d_a(a), 1.0) + least_squares(self.d_a(old_a), 0.0))
        optimizers["discriminator"].zero_grad(set_to_none=True)
        (d_a + d_b).backward()
        optimizers["discriminator"].step()
        return {"g_loss": adversarial.item(), "cycle_loss": cycle.item(), "identity_loss": identity.item(),
                "d_a_loss": d_a.item(), "d_b_loss": d_b.item()}


def least_squares(scores: torch.Tensor, target: float) -> torch.Tensor:
    """LSGAN's loss: the mean squared distance of the scores (one per patch) from the target."""
    return F.mse_loss(scores, torch.full_like(scores, target))
