"""Training curves as a picture: every logged figure against training time (from steps.jsonl) and the
test figures against epochs (from metrics.jsonl), redrawn while a run trains."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np


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

    steps_file, metrics_file = run_dir / "steps.jsonl", run_dir / "metrics.jsonl"
    steps = [json.loads(l) for l in steps_file.read_text().splitlines()] if steps_file.exists() else []
    epochs = [json.loads(l) for l in metrics_file.read_text().splitlines()] if metrics_file.exists() else []
    skip = {"step", "epoch", "seconds"}
    step_keys = [k for k in (steps[0] if steps else {}) if k not in skip and isinstance(steps[0][k], (int, float))]
    test_keys = [k for k in (epochs[0] if epochs else {}) if k.startswith("test_")]
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
            ax.plot([e["epoch"] for e in epochs], [e[key] for e in epochs], "o-", color="C1", ms=3)
            ax.set_xlabel("epoch")
        ax.set_title(key, fontsize=10)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.tight_layout()
    out = out or run_dir / "curves.png"
    tmp = out.with_name(f".{out.name}.tmp.png")
    fig.savefig(tmp, dpi=90)
    plt.close(fig)
    os.replace(tmp, out)
    return out
