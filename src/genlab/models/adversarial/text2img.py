"""Text to image (Reed et al. 2016, "Generative Adversarial Text to Image Synthesis"): a GAN whose
generator and discriminator both read a caption, through a sentence encoder trained with them.

The sentence encoder: word embeddings read by a GRU; its state at the caption's end token is the
caption's code φ(t). G and D each compress φ(t) to `text_dim` numbers (a linear layer and leaky ReLU, as
the paper's): G draws from [z, that]; D judges the image and the caption together. The convolutional D
reads the image first and joins the caption late, as the paper's: the compressed code copied over every
place of D's last feature map, a 1×1 convolution, then the score; the fully connected D (small images)
reads the code beside the pixels.

GAN-CLS, the matching-aware discriminator: D scores three kinds of pairs, and its loss is
    −log D(x, t) − ½ [log(1 − D(x, t̂)) + log(1 − D(G(z, t), t))]
a real image with its caption (real), a real image with another image's caption t̂ (to be rejected: D must
learn what the words say, not only whether the image is real) and a fake with its caption. The mismatched
caption of each image is the caption of another image of the batch; a pair whose two captions are the
very same words matches, and is left out of that term.

GAN-INT (`interpolation` > 0): G also fools D on the halfway codes between two captions of the batch,
½(φ(t₁) + φ(t₂)), for which no image exists: the paper's way of filling the gaps between the captions
seen, which helps new combinations of words (its GAN-INT-CLS was its best model).

Mode seeking (`diversity` > 0; Mao et al. 2019, "Mode Seeking Generative Adversarial Networks for Diverse
Image Synthesis"): a caption says what to draw, not every stroke, yet nothing in GAN-CLS makes G use z,
and without this term G drew one image per caption whatever z, the share of its features' variance that z
makes falling layer by layer (about 40% after its first layer, 4% in the image). So G draws each caption
of the batch with two noises z₁, z₂ (D judges both) and also minimises
    λ_ms / (mean|G(z₁, t) − G(z₂, t)| / mean|z₁ − z₂| + ε)
with the paper's λ_ms = 1 and ε = 1e-5: the images of one caption must differ as their noises do, in all
that the caption leaves open. Small nets trained fast bear less: at ten times the learning rate, a net of
128 units learns the classes slowly at 1 and well at 0.2.

The sentence encoder learns with D (D's optimiser holds it): telling matched pairs from mismatched ones is
D's task, and it is what makes the code say what the caption says; G reads the codes as they are.

A batch's `condition` is its captions as token ids N×T (each ended by </s>, padded with <pad>: the
image modality writes them, data/captions/). `sample(n)` without captions draws the run's example
captions in turn (one per class for the captions genlab writes); `genlab sample RUN --text "..."` one.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from ...data.captions.batches import token_ids
from ...data.text.vocab import PAD
from ...errors import UserError
from ..base import option
from ..nets import choose_net
from .base import AdversarialModel, NetConfig
from .indicators import accuracy
from .nets import MLPDiscriminator, dcgan_init, dcgan_plan

HALFWAY = 0.5       # β of GAN-INT: the paper's halfway points
MS_EPS = 1e-5       # MSGAN's ε


@dataclass
class Text2ImgConfig(NetConfig):
    word_dim: int = option(64, "size of each word's embedding", low=1)
    text_hidden: int = option(128, "units of the GRU that reads a caption: the size of its code φ(t)", low=1)
    text_dim: int = option(128, "numbers G and D each compress the caption's code to (the paper's 128)", low=1)
    interpolation: float = option(1.0, "weight of GAN-INT's term: G fools D on codes halfway between two "
                                       "captions (0: GAN-CLS alone)", low=0.0)
    diversity: float = option(1.0, "weight of MSGAN's mode-seeking term: G's images of one caption must differ as "
                                   "their noises z do, so that a caption has many drawings (0: off)", low=0.0)
    holdout: str = option("", "class and attribute pairs never said in the captions genlab writes, e.g. 'thick 7, "
                              "small 3': their images are captioned without that word, so that 'a thick seven' "
                              "is a caption never seen in training")


class SentenceEncoder(nn.Module):
    """Token ids N×T (padded with <pad>) → φ(t), N×hidden: the GRU's state at each caption's last token."""

    def __init__(self, vocab_size: int, word_dim: int, hidden: int):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, word_dim, padding_idx=PAD)
        self.gru = nn.GRU(word_dim, hidden, batch_first=True)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        states, _ = self.gru(self.embed(tokens))
        last = (tokens != PAD).sum(1).clamp_min(1) - 1        # padding comes after: the state there is unchanged
        return states[torch.arange(len(tokens), device=tokens.device), last]


def mode_seeking(a: torch.Tensor, b: torch.Tensor, za: torch.Tensor, zb: torch.Tensor) -> torch.Tensor:
    """MSGAN's term for images a, b drawn from noises za, zb with the same conditions: 1 / (the images'
    mean absolute difference over the noises' + ε), least when the images differ as much as the noises."""
    return 1 / ((a - b).abs().mean() / (za - zb).abs().mean() + MS_EPS)


def compress(hidden: int, text_dim: int) -> nn.Module:
    return nn.Sequential(nn.Linear(hidden, text_dim), nn.LeakyReLU(0.2))


class TextGenerator(nn.Module):
    """G(z, φ(t)): the caption's code compressed, then a net of the GAN family's (conv or mlp) given it beside z."""

    def __init__(self, net: nn.Module, hidden: int, text_dim: int):
        super().__init__()
        self.text, self.net = compress(hidden, text_dim), net

    def forward(self, z, code):
        return self.net(z, self.text(code))


class TextMLPDiscriminator(nn.Module):
    """D(x, φ(t)) for small images: the compressed code beside the pixels."""

    def __init__(self, shape, hidden_units: int, hidden: int, text_dim: int):
        super().__init__()
        self.text, self.net = compress(hidden, text_dim), MLPDiscriminator(shape, hidden_units, cond_dim=text_dim)

    def forward(self, x, code):
        return self.net(x, self.text(code))


class TextConvDiscriminator(nn.Module):
    """D(x, φ(t)) as the paper's: DCGAN's strided convolutions on the image; the compressed code copied over
    every place of the last map and joined to it; a 1×1 convolution; one score over the whole map."""

    def __init__(self, shape, features: int, hidden: int, text_dim: int):
        super().__init__()
        k, h0, w0 = dcgan_plan(shape)
        widths = [shape[0]] + [features * 2 ** i for i in range(k)]
        layers: list[nn.Module] = []
        for i in range(k):
            layers.append(nn.Conv2d(widths[i], widths[i + 1], 4, 2, 1, bias=i == 0))
            layers += [nn.BatchNorm2d(widths[i + 1])] if i > 0 else []
            layers.append(nn.LeakyReLU(0.2))
        self.image = nn.Sequential(*layers)
        self.text = compress(hidden, text_dim)
        self.joint = nn.Sequential(nn.Conv2d(widths[-1] + text_dim, widths[-1], 1, bias=False),
                                   nn.BatchNorm2d(widths[-1]), nn.LeakyReLU(0.2),
                                   nn.Conv2d(widths[-1], 1, (h0, w0)))
        dcgan_init(self)

    def forward(self, x, code):
        f = self.image(x)
        t = self.text(code)[:, :, None, None].expand(-1, -1, *f.shape[2:])
        return self.joint(torch.cat([f, t], 1)).flatten()


@dataclass
class Text2ImgSampling:
    text: str | None = option(None, "the caption to draw, e.g. \"a thin upright three\" (default: the run's "
                                    "example captions in turn)")


class TextToImage(AdversarialModel):
    name = "text2img"
    Config = Text2ImgConfig
    SampleSettings = Text2ImgSampling
    conditioning = "text"
    default_steps = 3000         # the words must be learnt beside the images: half as many again as a GAN's

    @classmethod
    def data_request(cls, config):
        return {"holdout": config.holdout}          # pairs the captions genlab writes never say

    def __init__(self, config, info):
        if not info.vocab:
            raise UserError(f"{self.name} learns from captions: train it with genlab (--data captions:FILE, or "
                            f"labelled images such as digits, mnist or fashion-mnist, whose captions genlab writes)")
        # The GAN family's G, given the compressed caption beside z, and its D, which a caption-reading D
        # replaces (the convolutional one joins the caption late, as the paper's, not as input planes).
        super().__init__(config, info)
        self.encoder = SentenceEncoder(len(info.vocab), config.word_dim, config.text_hidden)
        self.generator = TextGenerator(self.generator, config.text_hidden, config.text_dim)
        if choose_net(config.net, info.shape, conv_from=NetConfig.conv_from) == "mlp":
            self.discriminator = TextMLPDiscriminator(info.shape, config.hidden, config.text_hidden, config.text_dim)
        else:
            self.discriminator = TextConvDiscriminator(info.shape, config.features, config.text_hidden,
                                                       config.text_dim)
        self.register_buffer("examples", token_ids(info.vocab, list(info.captions) or [""]), persistent=False)

    def cond_dim(self) -> int:
        return self.config.text_dim

    def configure_optimizers(self, lr):
        # The sentence encoder learns with D: matching words to images is D's task.
        d_params = list(self.discriminator.parameters()) + list(self.encoder.parameters())
        return {"generator": torch.optim.Adam(self.generator.parameters(), lr=lr, betas=(0.5, 0.999)),
                "discriminator": torch.optim.Adam(d_params, lr=lr, betas=(0.5, 0.999))}

    # -- the condition: captions as token ids --
    def check_condition(self, condition, n=None):
        if condition is None:
            return
        if not torch.is_tensor(condition) or condition.is_floating_point() or condition.dim() != 2 \
                or condition.numel() == 0:
            shape = tuple(condition.shape) if torch.is_tensor(condition) else type(condition).__name__
            raise UserError(f"{self.name} draws what a caption says: its condition is captions as token ids N×T, "
                            f"not {shape} (genlab sample RUN --text \"...\")")
        if int(condition.min()) < 0 or int(condition.max()) >= len(self.info.vocab):
            raise UserError(f"a caption's token ids must be between 0 and {len(self.info.vocab) - 1}")
        if n is not None and len(condition) not in (1, n):
            raise UserError(f"{len(condition)} captions for {n} images")

    def captions(self, n: int, condition: torch.Tensor | None) -> torch.Tensor:
        """The token ids of n captions: those given (one for all, or one each), else the examples in turn."""
        self.check_condition(condition, n)
        if condition is None:
            return self.examples[torch.arange(n, device=self.device) % len(self.examples)]
        return condition.to(self.device).expand(n, -1) if len(condition) == 1 else condition.to(self.device)

    def cond(self, tokens):
        return self.encoder(tokens)

    # -- training --
    def train_step(self, batch, optimizers):
        x, tokens = batch.x, batch.condition
        if tokens is None:
            raise UserError(f"{self.name} needs a caption for every image")
        if len(x) == 1:      # batch norm needs two examples: a last batch of one image is doubled
            x, tokens = x.repeat(2, 1, 1, 1), tokens.repeat(2, 1)
        real = x * 2 - 1
        logs = self._discriminator_step(real, tokens, optimizers["discriminator"])
        logs.update(self._generator_step(tokens, optimizers["generator"]))
        self.critic_steps += 1
        return logs

    @staticmethod
    def _others(tokens: torch.Tensor) -> torch.Tensor:
        """For each row, another row of the batch: all rotated by one random step."""
        n = len(tokens)
        shift = int(torch.randint(1, n, ())) if n > 1 else 0
        return (torch.arange(n, device=tokens.device) + shift) % n

    def discriminator_terms(self, real, tokens, fake) -> dict[str, torch.Tensor]:
        """GAN-CLS's three terms, each D's loss on one kind of pair (scores are logits): a real image with
        its caption, a real image with another's caption, a fake with its caption; and the scores."""
        code = self.encoder(tokens)
        other = self._others(tokens)
        differ = (tokens != tokens[other]).any(1)         # the very same words match: not a mismatch
        real_out = self.discriminator(real, code)
        wrong_out = self.discriminator(real, code[other])
        fake_out = self.discriminator(fake, code)
        wrong = F.softplus(wrong_out)[differ].mean() if bool(differ.any()) else wrong_out.sum() * 0
        return {"real": F.softplus(-real_out).mean(), "wrong": wrong, "fake": F.softplus(fake_out).mean(),
                "real_out": real_out, "wrong_out": wrong_out[differ], "fake_out": fake_out}

    def _discriminator_step(self, real, tokens, opt) -> dict[str, float]:
        with torch.no_grad():
            fake = self.generator(self._noise(len(real)), self.encoder(tokens))
        t = self.discriminator_terms(real, tokens, fake)
        loss = t["real"] + (t["wrong"] + t["fake"]) / 2
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return {"d_loss": loss.item(), **accuracy(t["real_out"], t["fake_out"]),
                "d_wrong_acc": (t["wrong_out"] < 0).float().mean().item() if len(t["wrong_out"]) else 0.0}

    def _generator_step(self, tokens, opt) -> dict[str, float]:
        self.discriminator.requires_grad_(False)      # D fixed: G's loss flows through it, not into it
        try:
            with torch.no_grad():
                code = self.encoder(tokens)
            n = len(code)
            # Mode seeking draws each caption with two noises, in one pass (batch norm sees both); D judges all.
            draws = 2 if self.config.diversity > 0 else 1
            z, codes = self._noise(draws * n), code.repeat(draws, 1)
            fake = self.generator(z, codes)
            loss = F.softplus(-self.discriminator(fake, codes)).mean()
            logs = {"g_loss": loss.item()}
            if draws == 2:
                seeking = mode_seeking(fake[:n], fake[n:], z[:n], z[n:])
                loss = loss + self.config.diversity * seeking
                logs["g_ms_loss"] = seeking.item()
            if self.config.interpolation > 0 and n > 1:
                mixed = HALFWAY * code + (1 - HALFWAY) * code[self._others(tokens)]
                between = F.softplus(-self.discriminator(self.generator(self._noise(n), mixed), mixed)).mean()
                loss = loss + self.config.interpolation * between
                logs["g_int_loss"] = between.item()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        finally:
            self.discriminator.requires_grad_(True)
        return logs

    # -- sampling --
    @torch.no_grad()
    def decode(self, z, condition=None):
        """G's images in [0, 1] for codes z, of the captions given (token ids), else the example captions."""
        return (self.generator(z, self.encoder(self.captions(len(z), condition))) + 1) / 2

    @torch.no_grad()
    def sample(self, n, *, condition=None, generator=None, text: str | None = None):
        """n images of the captions given as token ids (`condition`), or of one caption typed (`text`), else
        of the example captions in turn."""
        if text is not None:
            if condition is not None:
                raise UserError("give the caption once: as text or as token ids, not both")
            condition = token_ids(self.info.vocab, [text], self.device, strict=True)
        tokens = self.captions(n, condition)
        return self.decode(self._noise(n, generator), tokens)
