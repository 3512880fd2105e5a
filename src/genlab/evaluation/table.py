"""Evaluation results as a plain-text table: one row per run, "—" where a model has no such figure."""
from __future__ import annotations

COLUMNS = [("name", "run"), ("model", "model"), ("data", "data"), ("pixels", "pixels"), ("nll_nats", "NLL"),
           ("nelbo_nats", "−ELBO"), ("iwae_nats", "IWAE"), ("recon_nats", "recon"), ("kl_nats", "KL"),
           ("nll_bpd", "NLL b/d"), ("nelbo_bpd", "−ELBO b/d"), ("iwae_bpd", "IWAE b/d"),
           ("baseline_nll_nats", "indep. px"), ("baseline_gaussian_nll_nats", "indep. Gauss")]


def _cell(v) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:.3f}" if abs(v) < 10 else f"{v:.2f}"
    return str(v)


def _grid(cols, rows) -> list[str]:
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(cols)]
    line = lambda cells: "  ".join(c.rjust(w) if i > 3 else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths)))  # noqa: E731
    return [line(cols), line(["-" * w for w in widths])] + [line(r) for r in rows]


def format_table(results: list[dict]) -> str:
    from pathlib import Path
    results = [{"name": Path(r["run"]).name, **r} for r in results]
    out = []
    cols = [(k, h) for k, h in COLUMNS if any(k in r for r in results)]
    quality = any("samples" in r for r in results)
    if not quality or any(k.endswith(("_nats", "_bpd")) for r in results for k in r):
        out += _grid([h for _, h in cols], [[_cell(r.get(k)) for k, _ in cols] for r in results])
        out.append("nats per image on the test split (b/d: bits per dimension; palette: per pixel); indep. px: "
                   "each pixel on its own (8-bit: a 256-way histogram; palette: an N-way one; indep. Gauss: a "
                   "Gaussian per pixel, the baseline within continuous densities). Conditional models score "
                   "log p(x | label).")
    if quality:
        out += [""] * bool(out) + format_quality(results)
    return "\n".join(out)


QUALITY = [("fid", "FID", "{:.2f}"), ("kid", "KID×10³", None), ("precision", "prec", "{:.3f}"),
           ("recall", "rec", "{:.3f}"), ("density", "dens", "{:.3f}"), ("coverage", "cov", "{:.3f}"),
           ("modes_covered", "modes", None), ("modes_kl", "KL(modes)", "{:.3f}"), ("inception_score", "IS", None),
           ("memorisation_ratio", "NN ratio", "{:.3f}"), ("near_copies", "near copies", "{:.3f}")]


def _quality_cell(r: dict, key: str, fmt) -> str:
    v = r.get(key)
    if v is None:
        return "—"
    if key == "kid":
        return f"{1e3 * v:.2f}±{1e3 * r.get('kid_std', 0):.2f}"
    if key == "modes_covered":
        return f"{v}/{r['modes_total']}"
    if key == "inception_score":
        return f"{v:.2f}±{r.get('inception_score_std', 0):.2f}"
    return fmt.format(v)


def format_quality(results: list[dict]) -> list[str]:
    """One row per run and, per data set, the held-out test images judged the same way (the data's own row)."""
    rows, networks, seen = [], [], set()
    for r in results:
        if "samples" not in r:
            continue
        rows.append([r["name"], r["model"], r["data"], r["pixels"], str(r["samples"])]
                    + [_quality_cell(r, k, f) for k, _, f in QUALITY])
        ref = r.get("data_reference")
        key = (r["data_hash"], r["pixels"].split()[0])
        if ref and key not in seen:
            seen.add(key)
            rows.append(["(test images)", "data", r["data"], r["pixels"].split()[0], str(ref["samples"])]
                        + [_quality_cell(ref, k, f) for k, _, f in QUALITY])
        if r.get("feature_network") and r["feature_network"] not in networks:
            networks.append(r["feature_network"])
    out = _grid(["run", "model", "data", "pixels", "n"] + [h for _, h, _ in QUALITY], rows)
    out.append("Samples against real training images (as many, a fixed subset) in the feature space of: "
               + ("; ".join(networks) or "none") + ". Figures compare only within one feature network and one n.")
    out.append("prec/rec: k=3 (Kynkäänniemi et al.); dens/cov: k=5 (Naeem et al.); modes: classes holding ≥10% of "
               "their data share, KL(sample classes ‖ data classes) in nats; IS: the classifier's Inception Score; "
               "NN ratio: median distance of samples to their nearest training image ÷ the same for test images "
               "(well below 1: copies); near copies: share of samples closer than 99% of test images are.")
    return out
