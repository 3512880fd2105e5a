"""Sentence VAE (Bowman, Vilnis, Vinyals, Dai, Jozefowicz & Bengio, "Generating Sentences from a
Continuous Space", 2015): the VAE with a sentence in place of the image.

Token embeddings → a recurrent encoder → the mean and log-variance of q(z | x) → a code z → a recurrent
decoder that starts from z (its initial state) and sees z again beside every input token. A decoder this
strong can model the text on its own and learn to ignore z ("posterior collapse": KL(q‖p) → 0); two
tricks from the paper keep the code in use: word dropout (the decoder sees only a share `word_keep` of
the previous tokens, the rest as <unk>, so it must lean on z) and KL annealing (the KL weight rises from
0 to 1 over `kl_warmup` steps, so the encoder puts information in z before it is charged for it).

Figures are in nats per line (sentence); the end token counts as a token, so per-token figures and the
perplexity divide by the number of words or characters plus one per line.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ...data.text.batches import pad
from ...data.text.vocab import BOS, EOS, PAD, UNK, TextInfo
from ...errors import UserError
from ..base import GenerativeModel, option
from .gaussian import gaussian_kl, iwae_nll, reparameterise

COLLAPSE_KL = 0.1       # nats per line: below it, the code carries next to nothing (posterior collapse)
LOGITS_BUDGET = 2**24   # logits held at once by the IWAE bound (samples × lines × tokens × vocabulary)


@dataclass
class SentenceVAEConfig:
    cell: str = option("gru", "recurrent cell of the encoder and the decoder", choices=("gru", "lstm"))
    embed_dim: int = option(128, "size of the token embeddings (shared by encoder and decoder)", low=1)
    hidden: int = option(256, "size of the recurrent state", low=1)
    latent_dim: int = option(16, "size of the code z", low=1)
    word_keep: float = option(0.75, "word dropout: the share of previous tokens the decoder sees while it "
                              "trains, the others shown as <unk> (1: all of them, 0: none)", low=0.0)
    kl_schedule: str = option("sigmoid", "how the KL weight rises from 0 to 1: sigmoid (the paper's), linear, "
                              "or none (1 from the first step)", choices=("sigmoid", "linear", "none"))
    kl_warmup: int = option(1000, "training steps for the KL weight to reach 1", low=0)
    dropout: float = option(0.2, "dropout on the embeddings and on the decoder's output", low=0.0)
    # How the corpus becomes tokens: used once, when the vocabulary is built from the training split.
    tokens: str = option("auto", "read the text by word or by character (auto: by character for Chinese "
                         "corpora, by word otherwise)", choices=("auto", "word", "char"))
    lowercase: bool = option(True, "lower-case words (with word tokens)")
    min_count: int = option(2, "a token seen fewer times in the training split is read as <unk>", low=1)
    max_len: int = option(40, "lines longer than this many tokens are left out of training and test", low=1)


class SentenceVAE(GenerativeModel):
    name = "sentence-vae"
    Config = SentenceVAEConfig
    family = "latent"
    modality = "text"      # reads and writes lines of text, not images
    likelihood_kind = "bound"
    has_iwae = True
    abilities = ("encode", "decode")
    default_batch_size = 32
    # Without --epochs: 3,000 steps, at most 30 epochs (the small corpora overfit past that; tang300's 30
    # epochs are 1,350 steps, past the KL warm-up's 1,000): songs-poems 20 epochs, fortunes 5.
    default_steps = 3000
    default_epoch_range = (2, 30)
    default_train = {"clip_grad": 5.0}     # the trainer clips gradients: the usual guard for recurrent nets

    def __init__(self, config: SentenceVAEConfig, info: TextInfo):
        super().__init__(config, info)
        if not isinstance(info, TextInfo):
            raise UserError(f"{self.name} reads text: give it a text corpus (tang300, fortunes, text:PATH)")
        if not 0 <= config.word_keep <= 1:
            raise UserError(f"word_keep must be between 0 and 1, not {config.word_keep!r}")
        if not 0 <= config.dropout < 1:
            raise UserError(f"dropout must be at least 0 and below 1, not {config.dropout!r}")
        rnn = nn.GRU if config.cell == "gru" else nn.LSTM
        h, z, v = config.hidden, config.latent_dim, info.size
        self.embedding = nn.Embedding(v, config.embed_dim, padding_idx=PAD)
        self.encoder = rnn(config.embed_dim, h, batch_first=True)
        self.to_code = nn.Linear(h, 2 * z)                                   # mean and log-variance
        self.code_to_state = nn.Linear(z, h * (2 if config.cell == "lstm" else 1))
        self.decoder = rnn(config.embed_dim + z, h, batch_first=True)
        self.project = nn.Linear(h, v)
        self.drop = nn.Dropout(config.dropout)
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))    # saved: the KL schedule resumes exactly
        self._reset_tally()

    # ---- the networks -------------------------------------------------------------------------------
    def encode(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """q(z | x): mean and log-variance for each line of token ids (N×T, padded, end token included)."""
        lengths = (x != PAD).sum(1) if lengths is None else lengths
        out, _ = self.encoder(self.drop(self.embedding(x)))
        last = out[torch.arange(len(x), device=x.device), lengths - 1]      # the state after the end token
        mu, logvar = self.to_code(last).chunk(2, dim=-1)
        return mu, logvar.clamp(-20, 10)

    def _initial_state(self, z: torch.Tensor):
        s = torch.tanh(self.code_to_state(z)).unsqueeze(0)
        return tuple(s.chunk(2, dim=-1)) if self.config.cell == "lstm" else s

    def _decode_steps(self, z: torch.Tensor, inputs: torch.Tensor, state=None):
        """The decoder's output at each input token (before the projection to the vocabulary); z is beside
        every input."""
        e = self.drop(self.embedding(inputs))
        e = torch.cat([e, z.unsqueeze(1).expand(-1, inputs.shape[1], -1)], dim=-1)
        return self.decoder(e, self._initial_state(z) if state is None else state)

    def _decoder_inputs(self, x: torch.Tensor) -> torch.Tensor:
        inputs = torch.cat([x.new_full((len(x), 1), BOS), x[:, :-1]], dim=1)
        if self.training and self.config.word_keep < 1:
            hidden = (torch.rand(inputs.shape, device=x.device) >= self.config.word_keep) & (inputs != PAD)
            hidden[:, 0] = False                                             # the start token always shows
            inputs = inputs.masked_fill(hidden, UNK)
        return inputs

    def _recon(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """−log p(x | z) per line, in nats."""
        out, _ = self._decode_steps(z, self._decoder_inputs(x))
        real = x != PAD                       # the vocabulary projection, the costliest part, skips padding
        nll = F.cross_entropy(self.project(self.drop(out[real])), x[real], reduction="none")
        line = torch.arange(len(x), device=x.device).unsqueeze(1).expand_as(x)[real]
        return torch.zeros(len(x), dtype=nll.dtype, device=x.device).index_add_(0, line, nll)

    def _terms(self, x, lengths=None, generator=None):
        mu, logvar = self.encode(x, lengths)
        if generator is None:
            z = reparameterise(mu, logvar)
        else:                                       # the ELBO's own stream (eval_terms)
            z = mu + torch.exp(0.5 * logvar) * torch.randn(mu.shape, generator=generator, device=mu.device,
                                                           dtype=mu.dtype)
        return self._recon(z, x), gaussian_kl(mu, logvar)

    # ---- training -----------------------------------------------------------------------------------
    def kl_weight(self) -> float:
        s, n = int(self.steps), self.config.kl_warmup
        if self.config.kl_schedule == "none" or n == 0 or s >= n:
            return 1.0
        if self.config.kl_schedule == "linear":
            return s / n
        return 1 / (1 + math.exp(-10 * (s - n / 2) / n))       # logistic: 0.007 at step 0, 0.993 at n

    def loss(self, batch):
        x, lengths = batch.x, batch.lengths
        recon, kl = self._terms(x, lengths)
        w = self.kl_weight()
        self.steps += 1
        loss = (recon + w * kl).mean()
        recon, kl = recon.detach(), kl.detach()
        tokens = int((x != PAD).sum())
        self._tally["lines"] += len(x)
        self._tally["kl"] += float(kl.sum())
        return loss, {"recon": recon.mean().item(), "kl": kl.mean().item(), "kl_weight": w,
                      "nats_per_token": float((recon + kl).sum()) / tokens}

    def _reset_tally(self) -> None:
        self._tally = {"lines": 0, "kl": 0.0}      # the epoch's KL term, for the collapse warning

    def epoch_report(self, train) -> dict:
        """The epoch's KL term; a warning when the code is falling out of use (the trainer times the epoch)."""
        t = self._tally
        self._reset_tally()
        if t["lines"] == 0:
            return {}
        kl, w = t["kl"] / t["lines"], self.kl_weight()
        report = {"kl": kl, "kl_weight": w}
        if kl < COLLAPSE_KL:
            report["warning"] = (f"the KL term is {kl:.3f} nats per line (KL weight {w:.2f}): the decoder is "
                                 f"ignoring the code (posterior collapse); lower --word-keep or lengthen --kl-warmup")
        return report

    # ---- likelihood ---------------------------------------------------------------------------------
    def log_prob(self, x, condition=None):
        """The ELBO, a lower bound on log p(x), in nats per line (one code sample)."""
        self.check_condition(condition, len(x))
        recon, kl = self._terms(x)
        return -(recon + kl)

    @torch.no_grad()
    def iwae_nll(self, x: torch.Tensor, lengths: torch.Tensor | None = None, k: int = 100) -> torch.Tensor:
        """−log of the k-sample importance-weighted bound (Burda et al. 2016) per line: an upper bound on
        −log p(x) that tightens as k grows."""
        mu, logvar = self.encode(x, lengths)
        chunk = max(1, min(k, LOGITS_BUDGET // (x.numel() * self.info.size)))
        return iwae_nll(mu, logvar, lambda z: -self._recon(z, x.repeat(len(z) // len(x), 1)), k, chunk)

    @torch.no_grad()
    def eval_terms(self, x, condition=None, *, iwae_k=100, generator=None):
        """Per line: −ELBO and its parts (one code per line, from `generator` when given), the token count
        (end token included) and the IWAE bound (samples of its own)."""
        self.check_condition(condition, len(x))
        recon, kl = self._terms(x, generator=generator)
        terms = {"nelbo": recon + kl, "recon": recon, "kl": kl, "tokens": (x != PAD).sum(1).double()}
        if iwae_k > 0:
            terms["iwae"] = self.iwae_nll(x, k=iwae_k)
        return terms

    # ---- writing ------------------------------------------------------------------------------------
    @torch.no_grad()
    def generate(self, z: torch.Tensor, *, temperature: float = 1.0, greedy: bool = False,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        """Token ids (N×T, padded after the end token) decoded from codes, one token at a time: the most
        likely token (greedy) or a draw from the softmax at `temperature`. At most max_len + 1 tokens.

        <unk> is never written: it stands for many rare tokens and cannot be shown, so its share goes to
        the others (the likelihood figures keep it)."""
        n = len(z)
        state, token = None, torch.full((n, 1), BOS, dtype=torch.long, device=z.device)
        done = torch.zeros(n, dtype=torch.bool, device=z.device)
        out = []
        for _ in range(self.info.max_len + 1):
            h, state = self._decode_steps(z, token, state)
            logits = self.project(h[:, -1])
            logits[:, [PAD, BOS, UNK]] = -math.inf                            # never emitted
            if greedy:
                nxt = logits.argmax(-1)
            else:
                nxt = torch.multinomial(torch.softmax(logits / temperature, -1), 1, generator=generator).squeeze(1)
            nxt = nxt.masked_fill(done, PAD)
            out.append(nxt)
            done |= nxt == EOS
            if bool(done.all()):
                break
            token = nxt.unsqueeze(1)
        return torch.stack(out, 1)

    @torch.no_grad()
    def decode(self, z: torch.Tensor, condition=None) -> torch.Tensor:
        """Token ids of the likeliest line for each code (greedy decoding)."""
        self.check_condition(condition, len(z))
        return self.generate(z, greedy=True)

    @torch.no_grad()
    def sample(self, n, *, condition=None, generator=None):
        """Token ids of n lines drawn from the model: z ~ N(0, I), then the decoder's softmax."""
        self.check_condition(condition, n)
        z = torch.randn(n, self.config.latent_dim, generator=generator, device=self.device)
        return self.generate(z, generator=generator)

    @torch.no_grad()
    def sample_text(self, n: int, *, generator=None, temperature: float = 1.0, greedy: bool = False) -> list[str]:
        """n new lines: a code from the prior each, decoded greedily or by sampling at `temperature`."""
        z = torch.randn(n, self.config.latent_dim, generator=generator, device=self.device)
        return self.decode_text(z, temperature=temperature, greedy=greedy, generator=generator)

    @torch.no_grad()
    def encode_text(self, lines: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """q(z | line) of each line: its mean and log-variance."""
        x, lengths = pad([self.info.encode(line) for line in lines], self.device)
        return self.encode(x, lengths)

    @torch.no_grad()
    def decode_text(self, z: torch.Tensor, **how) -> list[str]:
        return [self.info.decode(row) for row in self.generate(z, **how).tolist()]
