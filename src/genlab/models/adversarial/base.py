"""What every adversarial model shares: a generator and a discriminator (each its own module, so a
distributed wrapper can take them one by one), trained in turns by `train_step`.

One `train_step` is one discriminator step on its batch (real images against fresh fakes), and every
`n_critic`-th one is followed by one generator step through G+D with D's weights frozen: each critic
iteration sees its own real minibatch, as in Algorithm 1 of both WGAN papers (Arjovsky et al. 2017;
Gulrajani et al. 2017) and their code, not one batch `n_critic` times over. An epoch is thus one pass
of the critic over the data and len(train) / n_critic generator steps. The count of critic steps is a
buffer (`critic_steps`), saved with the weights, so that a resumed run takes its generator steps where
the uninterrupted one did; a weights file written before it existed loads with the count at 0.
With n_critic = 1 (gan, dcgan, cgan) every step is one D step then one G step, as it always was.

Every step logs g_loss, the generator's loss at that step, so that the trainer's epoch figure (each
key summed over the steps' examples, divided by all the epoch's examples) is its true mean: the loss
of the generator step on a step that takes one, else the same loss on that step's fakes, scored by
the critic just before its update.

Data arrive in [0, 1] and are scaled to [-1, 1] (G ends in tanh); samples go back to [0, 1].

A GAN has no likelihood: `log_prob` stays None and `eval_terms` {} (the evaluator shows "—").
Its indicators instead: per step D's accuracy on real and fake (and the critic's Wasserstein estimate
for the WGANs); per epoch the sample diversity against the data's, with a warning on collapse.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from ..base import GenerativeModel, option
from ..nets import NetConfigBase, choose_net, net_option
from .indicators import diversity_report, mean_pairwise_distance
from .nets import ConvDiscriminator, ConvGenerator, MLPDiscriminator, MLPGenerator

DIVERSITY_SAMPLES = 256


def latent_dim_option():
    return option(100, "size of the code z ~ N(0, I) fed to G", low=1)


def hidden_option():
    return option(512, "width of the fully connected layers (mlp)", low=1)


def features_option():
    return option(64, "channels of D's first convolution and G's last (conv), doubling per halving", low=1)


@dataclass
class NetConfig(NetConfigBase):
    """The nets of the models that take either kind (wgan, wgan-gp, cgan)."""
    conv_from: ClassVar[int] = 16         # DCGAN's nets for real images; an MLP for tiny ones (8×8 digits)
    latent_dim: int = latent_dim_option()
    net: str = net_option(conv_from, "conv (DCGAN's)")
    hidden: int = hidden_option()
    features: int = features_option()


class AdversarialModel(GenerativeModel):
    family = "adversarial"
    abilities = ("decode",)
    default_binarize = "none"
    default_lr: ClassVar[float] = 2e-4
    default_batch_size: ClassVar[int] = 64   # DCGAN's 128 halved: twice the steps for the same images on a CPU
    default_steps: ClassVar[int] = 2000      # critic steps (one per batch): 87 epochs of digits, 16 of mnist
    critic_norm: ClassVar[bool] = True       # batch norm in the convolutional discriminator
    default_net: ClassVar[str | None] = None  # its nets; None: its Config's `net` setting chooses

    def __init__(self, config, info):
        super().__init__(config, info)
        shape, cond = info.shape, self.cond_dim()
        net = config.net if self.default_net is None else self.default_net
        if choose_net(net, shape, conv_from=NetConfig.conv_from) == "mlp":
            self.generator = MLPGenerator(shape, config.latent_dim, config.hidden, cond_dim=cond)
            self.discriminator = MLPDiscriminator(shape, config.hidden, cond_dim=cond)
        else:
            self.generator = ConvGenerator(shape, config.latent_dim, config.features, cond_dim=cond)
            self.discriminator = ConvDiscriminator(shape, config.features, cond_dim=cond, norm=self.critic_norm)
        self._data_diversity: float | None = None
        self.register_buffer("critic_steps", torch.zeros((), dtype=torch.long))   # D steps taken so far

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # Weights saved before the critic-step count existed (every older GAN run) still load: count 0.
        state_dict.setdefault(prefix + "critic_steps", torch.zeros((), dtype=torch.long))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    # -- conditioning hooks (the conditional GAN fills them in) --
    def cond_dim(self) -> int:
        return 0

    def cond(self, y: torch.Tensor | None) -> torch.Tensor | None:
        return None

    def _sampling_condition(self, n: int, condition: torch.Tensor | None) -> torch.Tensor | None:
        return condition

    # -- what each variant defines --
    def configure_optimizers(self, lr):
        return {"generator": torch.optim.Adam(self.generator.parameters(), lr=lr, betas=(0.5, 0.999)),
                "discriminator": torch.optim.Adam(self.discriminator.parameters(), lr=lr, betas=(0.5, 0.999))}

    def discriminator_loss(self, real_out, fake_out, real, fake, c) -> tuple[torch.Tensor, dict[str, float]]:
        raise NotImplementedError

    def generator_loss(self, fake_out) -> torch.Tensor:
        raise NotImplementedError

    def after_discriminator_step(self) -> None:
        """Called after each D update (WGAN clips the critic's weights here)."""

    @property
    def n_critic(self) -> int:
        """Critic steps per generator step (WGAN's: its Config's)."""
        return 1

    # -- training --
    def train_step(self, batch, optimizers):
        x, y = batch.x, batch.condition
        if len(x) == 1:      # batch norm needs two examples: a last batch of one image is doubled
            x, y = x.repeat(2, 1, 1, 1), (None if y is None else y.repeat(2))
        real, c = x * 2 - 1, self.cond(y)
        logs, fake_out = self._discriminator_step(real, c, optimizers["discriminator"])
        self.critic_steps += 1
        if int(self.critic_steps) % self.n_critic == 0:
            logs.update(self._generator_step(len(real), c, optimizers["generator"]))
        else:
            with torch.no_grad():
                logs["g_loss"] = self.generator_loss(fake_out).item()
        return logs

    def _noise(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.randn(n, self.config.latent_dim, generator=generator, device=self.device)

    def _discriminator_step(self, real, c, opt) -> tuple[dict[str, float], torch.Tensor]:
        """One D update; its logs and its scores of the fakes (detached, taken before the update)."""
        with torch.no_grad():
            fake = self.generator(self._noise(len(real)), c)
        # Real and fake in separate batches, as DCGAN does: batch norm then sees one kind at a time.
        real_out = self.discriminator(real, c)
        fake_out = self.discriminator(fake, c)
        loss, logs = self.discriminator_loss(real_out, fake_out, real, fake, c)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        self.after_discriminator_step()
        return logs, fake_out.detach()

    def _generator_step(self, n, c, opt) -> dict[str, float]:
        self.discriminator.requires_grad_(False)      # D fixed: G's loss flows through it, not into it
        try:
            loss = self.generator_loss(self.discriminator(self.generator(self._noise(n), c), c))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        finally:
            self.discriminator.requires_grad_(True)
        return {"g_loss": loss.item()}

    # -- sampling --
    @torch.no_grad()
    def decode(self, z: torch.Tensor, condition: torch.Tensor | None = None) -> torch.Tensor:
        """G's image in [0, 1] for each code (so `genlab explore grid` sweeps a GAN's code too).

        G's tanh keeps it in range; not clamped, so that a G with a linear output (a 2-D toy) stays exact."""
        return (self.generator(z, self.cond(condition)) + 1) / 2

    @torch.no_grad()
    def sample(self, n, *, condition=None, generator=None):
        self.check_condition(condition, n)
        return self.decode(self._noise(n, generator), self._sampling_condition(n, condition))

    # -- the trainer's per-epoch indicator --
    @torch.no_grad()
    def epoch_report(self, train_batches) -> dict:
        """Spread of a fixed set of samples against the spread of real training images.

        Its own random generator, and eval mode, so that neither the training RNG stream nor batch-norm
        statistics change: a resumed run stays identical to an uninterrupted one."""
        if self._data_diversity is None:
            real, n = [], 0
            for batch in train_batches.epoch(0):
                real.append(batch.x)
                n += len(batch)
                if n >= DIVERSITY_SAMPLES:
                    break
            self._data_diversity = mean_pairwise_distance(torch.cat(real)[:DIVERSITY_SAMPLES])
        was_training = self.training
        self.eval()
        g = torch.Generator(device=self.device).manual_seed(0)
        samples = self.sample(DIVERSITY_SAMPLES, generator=g)
        self.train(was_training)
        return diversity_report(samples, self._data_diversity)
