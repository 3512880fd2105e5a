"""The sample-quality table as a picture: where each run stands in precision/recall and density/coverage
(the held-out test images marked as the target), and FID side by side."""
from __future__ import annotations

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
    # The test images judged like samples: one target per data set and pixel kind (binarised, 8-bit, ...).
    refs = {f"{r['data']} {r['pixels'].split()[0]}": r["data_reference"] for r in runs if r.get("data_reference")}
    fig, axes = plt.subplots(1, 3, figsize=(16, 5))
    for ax, (kx, ky) in zip(axes[:2], (("recall", "precision"), ("coverage", "density"))):
        for name, r in zip(names, runs):
            if kx in r:
                ax.scatter(r[kx], r[ky], s=30)
                ax.annotate(name, (r[kx], r[ky]), fontsize=7, xytext=(3, 3), textcoords="offset points")
        for data, ref in refs.items():
            if kx in ref:
                ax.scatter(ref[kx], ref[ky], marker="*", s=200, color="black")
                ax.annotate(f"{data} test images", (ref[kx], ref[ky]), fontsize=7, xytext=(4, -10),
                            textcoords="offset points")
        ax.set_xlabel(kx)
        ax.set_ylabel(ky)
        ax.set_xlim(-0.02, 1.05)
        ax.grid(alpha=0.3)
    fids = [(n, r["fid"]) for n, r in zip(names, runs) if "fid" in r]
    fids += [(f"{d} test images", ref["fid"]) for d, ref in refs.items() if "fid" in ref]
    if fids:
        axes[2].barh([n for n, _ in fids], [v for _, v in fids],
                     color=["black" if n.endswith("test images") else "C0" for n, _ in fids])
        axes[2].invert_yaxis()
        axes[2].set_xlabel("FID (lower is better)")
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
