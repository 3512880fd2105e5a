"""Training curves as a picture: every logged figure against training time (from steps.jsonl) and the
test figures against epochs (from metrics.jsonl), redrawn while a run trains."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..atomic import write_atomic
from ..runs import Run


def _smooth(y: np.ndarray, n: int) -> np.ndarray:
    if n <= 1 or len(y) < n:
        return y
    k = np.ones(n) / n
    return np.convolve(y, k, mode="valid")


def draw_curves(run_dir: Path, out: Path | None = None) -> Path | None:
    """Write run_dir/curves.png; None when there is nothing to draw yet."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run = Run(run_dir, {})                       # its readers drop a torn last line (a crash while appending)
    steps, epochs = run.steps(), run.metrics()
    skip = {"step", "epoch", "seconds"}
    step_keys = [k for k in (steps[0] if steps else {}) if k not in skip and isinstance(steps[0][k], (int, float))]
    # Every row's test figures, in order of first appearance: a run begun before the figures carried their
    # unit (test_nelbo) and resumed after (test_nelbo_nats) draws both, each over its own epochs. A
    # figure's standard error (…_se) is drawn as its error bars, not as a panel of its own.
    test_keys = list(dict.fromkeys(k for e in epochs for k in e
                                   if k.startswith("test_") and not k.endswith("_se")
                                   and isinstance(e[k], (int, float)) and not isinstance(e[k], bool)))
    panels = [("step", k) for k in step_keys] + [("test", k) for k in test_keys]
    if not panels:
        return None
    cols = min(3, len(panels))
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 2.8 * rows), squeeze=False)
    for ax, (kind, key) in zip(axes.flat, panels):
        if kind == "step":
            t = np.array([s["seconds"] for s in steps])
            y = np.array([s.get(key, np.nan) for s in steps], dtype=float)
            n = max(1, len(y) // 100)                       # light smoothing of noisy per-step figures
            ax.plot(t, y, color="0.8", lw=0.6)
            ax.plot(t[n - 1:] if n > 1 else t, _smooth(y, n), color="C0", lw=1.2)
            ax.set_xlabel("training time (s)")
        else:
            have = [e for e in epochs if isinstance(e.get(key), (int, float))]
            se = [e.get(f"{key}_se") for e in have]
            ax.errorbar([e["epoch"] for e in have], [e[key] for e in have], fmt="o-", color="C1", ms=3,
                        yerr=[v if isinstance(v, (int, float)) else 0.0 for v in se] if any(se) else None)
            ax.set_xlabel("epoch")
        ax.set_title(key, fontsize=10)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.tight_layout()
    out = out or run_dir / "curves.png"
    try:        # whole or not at all; a full disk or a folder it may not write is one line, no file left
        # at least 256 px on the short side, as every picture a person opens (one row of curves: 2.8 in)
        write_atomic(out, lambda tmp: fig.savefig(tmp, dpi=max(90, -(-256 // (2.8 * rows))), format="png"))
    finally:
        plt.close(fig)
    return out
