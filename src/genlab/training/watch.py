"""Warnings, once each, when a run is not learning: a latent model whose KL term stays near zero (the
decoder ignores its code: posterior collapse), or a likelihood model whose test figure is still no better
than its baseline (each pixel on its own) a quarter of the way through the run. Each says what usually
helps."""
from __future__ import annotations

import math
import sys

from .callbacks import Callback

COLLAPSED_KL = 0.5      # nats per example: a code this quiet carries next to nothing
HEADLINE = ("test_nll_nats", "test_iwae_nats", "test_nelbo_nats")      # any test_nll_…_nats estimate after the first


def headline_figure(row: dict) -> float | None:
    """The test figure a run is judged by: the exact NLL, else an estimate of it (AIS...), else a bound."""
    estimates = sorted(k for k in row if k.startswith("test_nll_") and k.endswith("_nats"))
    return next((row[k] for k in (HEADLINE[0], *estimates, *HEADLINE[1:]) if k in row), None)


class LearningWatch(Callback):
    def __init__(self, baseline_nats: float | None, quiet: bool = False,
                 baseline_name: str = "each pixel on its own"):
        self.baseline, self.quiet, self.baseline_name = baseline_nats, quiet, baseline_name
        self.said: set[str] = set()

    def on_epoch_end(self, trainer, row):
        epoch, total = row["epoch"], trainer.opts.epochs
        settled = epoch >= max(2, math.ceil(total / 4)) or epoch == total
        kl = row.get("test_kl_nats")
        if kl is not None and settled and kl < COLLAPSED_KL:
            self._say(row, "collapse", f"the KL term is {kl:.2f} nats per example after epoch {epoch}: the "
                                       f"decoder is ignoring the code (posterior collapse); more --epochs, a "
                                       f"--kl-warmup of a few thousand steps or a smaller --latent-dim usually help")
        figure = headline_figure(row)
        if self.baseline is not None and figure is not None and settled and figure >= self.baseline - 0.05:
            self._say(row, "baseline", f"the test figure {figure:.2f} nats is no better than "
                                       f"{self.baseline_name}: {self.baseline:.2f}, after epoch {epoch}: if the loss rose, a lower "
                                       f"--lr; if it is still falling, more --epochs")

    def _say(self, row: dict, what: str, text: str) -> None:  # noqa: ARG002  (row: the epoch it is about)
        if what in self.said:
            return
        self.said.add(what)
        if not self.quiet:
            print(f"genlab: warning: {text}", file=sys.stderr, flush=True)
