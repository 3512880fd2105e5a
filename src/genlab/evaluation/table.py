"""Evaluation results as a plain-text table: one row per run, "—" where a model has no such figure."""
from __future__ import annotations

COLUMNS = [("name", "run"), ("model", "model"), ("data", "data"), ("pixels", "pixels"), ("nll_nats", "NLL"),
           ("nelbo_nats", "−ELBO"), ("iwae_nats", "IWAE"), ("recon_nats", "recon"), ("kl_nats", "KL"),
           ("nll_bpd", "NLL b/d"), ("nelbo_bpd", "−ELBO b/d"), ("iwae_bpd", "IWAE b/d"),
           ("binarisation_sd_nats", "binar. SD"),
           ("baseline_nll_nats", "indep. px"), ("baseline_gaussian_nll_nats", "indep. Gauss")]


def _cell(v, se=None) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        text = f"{v:.3f}" if abs(v) < 10 else f"{v:.2f}"
        if isinstance(se, (int, float)) and not isinstance(se, bool):
            text += f"±{se:.3f}" if abs(v) < 10 else f"±{se:.2f}"
        return text
    return str(v)


def _grid(cols, rows) -> list[str]:
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(cols)]
    line = lambda cells: "  ".join(c.rjust(w) if i > 3 else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths)))  # noqa: E731
    return [line(cols), line(["-" * w for w in widths])] + [line(r) for r in rows]


def format_table(results: list[dict]) -> str:
    from pathlib import Path
    results = [{"name": Path(r["run"]).name, **r} for r in results]
    out = []
    # A model's estimates of the NLL (the rbm's AIS...) come as columns after the exact NLL, named by the model.
    estimates = {k: v for r in results for k, v in r.get("estimates", {}).items()}
    columns = COLUMNS[:5] + [(k, heading) for k, (heading, _) in estimates.items()] + COLUMNS[5:]
    cols = [(k, h) for k, h in columns if any(k in r for r in results)]
    quality = any("samples" in r for r in results)
    # (a sample metric's own nats, the Parzen estimate, belong to the quality table)
    if not quality or any(k.endswith(("_nats", "_bpd")) and not k.startswith("parzen_") for r in results for k in r):
        out += _grid([h for _, h in cols], [[_cell(r.get(k), r.get(f"{k}_se")) for k, _ in cols] for r in results])
        out.append("nats per image on the test split (8-bit densities: their NLL + D·log 256, recon likewise, KL "
                   "unchanged; b/d: bits per dimension; palette: per pixel), ± their standard error over the test "
                   "images (a bound's Monte Carlo noise included; exact NLL: the test split's sampling noise). "
                   + _binarisations(results) + "".join(f"{heading}: {note} " for heading, note in estimates.values())
                   + "indep. px: each pixel on its own (8-bit: a 256-way histogram; palette: an N-way one; indep. "
                   "Gauss: a Gaussian per pixel, the baseline within continuous densities). Conditional models "
                   "score log p(x | label).")
    if quality:
        out += [""] * bool(out) + format_quality(results)
    return "\n".join(out)


def _binarisations(results: list[dict]) -> str:
    """The footnote's sentence on the binar. SD column, where it is shown."""
    counts = sorted({r["binarisations"] for r in results if isinstance(r.get("binarisations"), int)})
    if not counts:
        return ""
    return (f"binar. SD: the headline figure's (NLL, else an estimate, else IWAE, else −ELBO) standard "
            f"deviation over {'/'.join(map(str, counts))} fixed binarisations of the test split (the figures are "
            f"seed 0's). ")


QUALITY_ALL = [("fid", "FID", "{:.2f}"), ("kid", "KID×10³", None), ("precision", "prec", "{:.3f}"),
           ("recall", "rec", "{:.3f}"), ("density", "dens", "{:.3f}"), ("coverage", "cov", "{:.3f}"),
           ("modes_covered", "modes", None), ("modes_kl", "KL(modes)", "{:.3f}"), ("inception_score", "IS", "{:.2f}"),
           ("memorisation_ratio", "NN ratio", "{:.3f}"), ("copy_excess", "copies", "{:+.3f}"),
           ("data_copying_ct", "C_T", "{:.1f}"),
           ("class_agreement", "class agr.", "{:.3f}"), ("parzen_nats", "Parzen", "{:.1f}"), ("mixing_label_changes_per_100", "changes/100", "{:.1f}"),
           ("mixing_classes_visited", "visited", "{:.1f}"), ("mixing_autocorr_lag10", "autocorr@10", "{:.2f}")]
OPTIONAL = {"class_agreement", "parzen_nats", "mixing_label_changes_per_100", "mixing_classes_visited", "mixing_autocorr_lag10"}
WITHIN_FLOOR = "≈"


def _quality_cell(r: dict, key: str, fmt, marked=(), compared=()) -> str:
    """A figure with its ± (bootstrap standard deviation); `compared`: the figures set beside the floor's."""
    v = r.get(key)
    if v is None:
        return "—"
    if key == "kid":
        text = f"{1e3 * v:.2f}"
        std = r.get("kid_std")
        text += f"±{1e3 * std:.2f}" if std is not None else ""
    elif key == "modes_covered":
        text = f"{v}/{r['modes_total']}"
    else:
        text = fmt.format(v)
        std = r.get(f"{key}_std")
        if isinstance(std, float) and std == std:     # not None, not NaN
            text += "±" + fmt.format(std)
    if key not in compared:
        return text
    # Marked cells end in ≈, the others in a space, so the figures of a column stay aligned.
    return text + (WITHIN_FLOOR if key in marked else " ")


def _skipped(results: list[dict]) -> list[str]:
    """Why figures asked for were not computed (mode coverage and IS need a classifier of the data's classes)."""
    names = {"modes": "modes and KL(modes)", "is": "IS", "mixing": "mixing", "classes": "class agreement"}
    reasons: dict[str, list[str]] = {}
    for r in results:
        for metric, why in (r.get("skipped") or {}).items():
            if names.get(metric, metric) not in reasons.setdefault(why, []):
                reasons[why].append(names.get(metric, metric))
    return [f"{' and '.join(which)} not computed ({why})"
            + (": they need a classifier of the data's classes." if set(which) & {"IS", "modes and KL(modes)"}
               else ".")
            for why, which in reasons.items()]


def format_quality(results: list[dict]) -> list[str]:
    """One row per run and, per data set, the real images judged the same way: the held-out test images and
    the real-versus-real floor (as many training images again, disjoint from the reference). A run's
    figure within the floor's noise is marked ≈."""
    from .sample_quality import FLOOR_KEYS, within_floor
    rows, networks, seen, no_floor, resamples = [], [], set(), False, None
    # The figures of one kind of run or one metric (Parzen, a chain's mixing) only where some run has them.
    shown = [q for q in QUALITY_ALL if q[0] not in OPTIONAL or any(q[0] in r for r in results)]
    for r in results:
        if "samples" not in r:
            continue
        floor = r.get("data_floor")
        marked = set(within_floor(r, floor))
        rows.append([r["name"], r["model"], r["data"], r["pixels"], str(r["samples"])]
                    + [_quality_cell(r, k, f, marked, FLOOR_KEYS) for k, _, f in shown])
        resamples = resamples or r.get("bootstrap_resamples")
        ref = r.get("data_reference")
        key = (r["data_hash"], r["pixels"].split()[0], r["samples"])
        if ref and key not in seen:
            seen.add(key)
            rows.append(["(test images)", "data", r["data"], r["pixels"].split()[0], str(ref["samples"])]
                        + [_quality_cell(ref, k, f, (), FLOOR_KEYS) for k, _, f in shown])
            if floor:
                rows.append(["(training images)", "data", r["data"], r["pixels"].split()[0], str(floor["samples"])]
                            + [_quality_cell(floor, k, f, (), FLOOR_KEYS) for k, _, f in shown])
        no_floor = no_floor or ("data_floor" in r and not floor)
        if r.get("feature_network") and r["feature_network"] not in networks:
            networks.append(r["feature_network"])
    out = _grid(["run", "model", "data", "pixels", "n"] + [h for _, h, _ in shown], rows)
    out.append("Samples against real training images (as many, a fixed subset) in the feature space of: "
               + ("; ".join(networks) or "none") + ". Figures compare only within one feature network and one n.")
    out.append("prec/rec: k=3 (Kynkäänniemi et al.); dens/cov: k=5 (Naeem et al.); modes: classes holding ≥10% of "
               "their data share, KL(sample classes ‖ data classes) in nats; IS: the classifier's Inception Score; "
               "NN ratio: median distance of samples to their nearest training image ÷ the same for test images "
               "(below 1: closer than new images are, as copies are, and blurs); copies: the share of samples at "
               "most half as far from a training image as from any held-out image, minus that share of real "
               "held-out images (0: no copying; a copier's is positive); C_T: Meehan et al.'s data-copying "
               "z-score (well below 0: closer to the training images than new images are, copies or blurs; "
               "above 0: farther).")
    out += [f"{r['name']}: {r['memorisation_verdict']}" for r in results if r.get("memorisation_verdict")]
    if any("class_agreement" in r for r in results):
        chance = next(r["class_chance"] for r in results if "class_chance" in r)
        out.append(f"class agr.: the share of samples drawn for a class (class-conditional: the classes in turn; "
                   f"captions: those of held-out images) that the classifier reads as that class (chance "
                   f"{chance:.3f}); (test images): its reading of real held-out images, the ceiling.")
    out += [f"{r['name']}: attribute agreement " + ", ".join(f"{a} {m:.3f}±{se:.3f}" for a, (m, se) in
            r["attribute_agreement"].items()) + " (same-noise pairs drawn under its high and low words, ordered as "
            "they say; 0.5: the words do nothing; ± over the classes)" for r in results if r.get("attribute_agreement")]
    if any("parzen_nats" in r for r in results):
        out.append("Parzen: the Parzen-window NLL the GAN and GSN papers reported, in nats per image: a kernel on "
                   "the samples (binarised: keep each pixel or flip it with ε; 8-bit: a Gaussian, + D·log 256), "
                   "its bandwidth chosen on half the test split, scored on the other half (± its standard error "
                   "there); (training images) is real data's own. An estimate that can rank k-means centres above "
                   "real data (Theis et al. 2016): compare it with the exact NLL, never alone.")
    out.append(f"±: standard deviation over {resamples or 'the'} bootstrap resamples of the samples (KID: over its "
               "random subsets). (training images): as many training images again, disjoint from the reference, "
               "judged like samples: the real-versus-real floor at this n. ≈: within the floor's noise, the figure "
               "differs from the floor's by less than twice their combined ± (FID, KID, KL(modes): exceeds it by "
               "less): at this n it cannot be told from real data.")
    if any("mixing_label_changes_per_100" in r or "mixing_autocorr_lag10" in r for r in results):
        out.append("changes/100, visited, autocorr@10: along 4 chains of 500 consecutive states, how often the "
                   "classifier's label changes per 100 steps, the classes a chain visits (≥ 1% of its states) and "
                   "the features' autocorrelation 10 steps apart (near 1: the chain barely moves), ± over chains.")
    out += [f"{r['name']}: {r['mixing_warning']}" for r in results if r.get("mixing_warning")]
    out += _skipped(results)
    if no_floor:
        out.append("No (training images) row where the training split holds fewer than 2n images: without it, "
                   "no figure can be told from real data; pass a smaller --samples.")
    return out
