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


def format_table(results: list[dict]) -> str:
    from pathlib import Path
    results = [{"name": Path(r["run"]).name, **r} for r in results]
    cols = [(k, h) for k, h in COLUMNS if any(k in r for r in results)]
    rows = [[_cell(r.get(k)) for k, _ in cols] for r in results]
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, (_, h) in enumerate(cols)]
    line = lambda cells: "  ".join(c.rjust(w) if i > 3 else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths)))  # noqa: E731
    out = [line([h for _, h in cols]), line(["-" * w for w in widths])] + [line(r) for r in rows]
    out.append("nats per image on the test split (b/d: bits per dimension); indep. px: each pixel on its own (8-bit: a 256-way histogram; "
               "indep. Gauss: a Gaussian per pixel, the baseline within continuous densities). "
               "Conditional models score log p(x | label).")
    return "\n".join(out)
