"""The sample-quality table as a picture: where each run stands in precision/recall and density/coverage
(the held-out test images and the real-versus-real floor marked as targets), and FID side by side; every
figure with its bootstrap standard deviation as an error bar."""
from __future__ import annotations

import math
import os
from pathlib import Path

from ..errors import UserError


def check_plot_path(out: str | Path) -> Path:
    out = Path(out)
    if out.suffix.lower() not in (".png", ".pdf", ".svg"):
        raise UserError(f"cannot write {out}: the plot must end in .png, .pdf or .svg")
    return out


def draw_quality(results: list[dict], out: str | Path) -> Path:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = [r for r in results if "precision" in r or "fid" in r]
    if not runs:
        raise UserError("--plot needs sample metrics: add --metrics prdc,fid (or all)")
    out = check_plot_path(out)
    names = [Path(r["run"]).name for r in runs]
    # Real images judged like samples, per data set and pixel kind (binarised, 8-bit, ...): the held-out test
    # images, and the floor (as many training images again, disjoint from the reference).
    targets = {}
    for r in runs:
        data = " ".join([r["data"], *r.get("pixels", "").split()[:1]])       # sound runs have no pixels
        for key, label, colour in (("data_reference", "test images", "black"),
                                   ("data_floor", "training images (floor)", "grey")):
            if r.get(key):
                targets[f"{data} {label}"] = (r[key], colour)

    def value(r, key):
        v = r.get(key)
        return v if isinstance(v, (int, float)) and math.isfinite(v) else None

    def std(r, key):
        return value(r, f"{key}_std") or 0.0

    fig, axes = plt.subplots(1, 3, figsize=(16, 5))
    for ax, (kx, ky) in zip(axes[:2], (("recall", "precision"), ("coverage", "density"))):
        for name, r in zip(names, runs):
            if value(r, kx) is not None and value(r, ky) is not None:
                ax.errorbar(r[kx], r[ky], xerr=std(r, kx), yerr=std(r, ky), fmt="o", ms=5, capsize=2)
                ax.annotate(name, (r[kx], r[ky]), fontsize=7, xytext=(3, 3), textcoords="offset points")
        for label, (ref, colour) in targets.items():
            if value(ref, kx) is not None and value(ref, ky) is not None:
                ax.errorbar(ref[kx], ref[ky], xerr=std(ref, kx), yerr=std(ref, ky), fmt="*", ms=14, color=colour,
                            capsize=2)
                ax.annotate(label, (ref[kx], ref[ky]), fontsize=7, xytext=(4, -10), textcoords="offset points")
        ax.set_xlabel(kx)
        ax.set_ylabel(ky)
        ax.set_xlim(-0.02, 1.05)
        ax.grid(alpha=0.3)
    fids = [(n, r, "C0") for n, r in zip(names, runs) if value(r, "fid") is not None]
    fids += [(label, ref, colour) for label, (ref, colour) in targets.items() if value(ref, "fid") is not None]
    if fids:
        axes[2].barh([n for n, _, _ in fids], [r["fid"] for _, r, _ in fids], xerr=[std(r, "fid") for _, r, _ in fids],
                     color=[c for _, _, c in fids], capsize=2)
        axes[2].invert_yaxis()
        axes[2].set_xlabel("FID (lower is better; bars: ± one bootstrap std)")
        axes[2].tick_params(axis="y", labelsize=7)
    network = next((r["feature_network"] for r in runs if r.get("feature_network")), "")
    fig.suptitle(f"{runs[0]['samples']} samples per run; features: {network}", fontsize=9)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp{out.suffix}")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, out)
    return out
