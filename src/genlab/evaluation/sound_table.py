"""The sample figures of sound runs as a plain-text table: a row per run and, per data set and n, the real
clips judged the same way (the held-out test clips and the real-versus-real floor)."""
from __future__ import annotations

from pathlib import Path

from .sample_quality import within_floor
from .sound_features import DB_HIGH, DB_LOW, HOP, MELS, N_FFT
from .sound_quality import SOUND_FLOOR_KEYS
from .table import _grid, _quality_cell

QUALITY = [("fid", "FID", "{:.2f}"), ("kid", "KID×10³", None), ("precision", "prec", "{:.3f}"),
           ("recall", "rec", "{:.3f}"), ("density", "dens", "{:.3f}"), ("coverage", "cov", "{:.3f}"),
           ("class_agreement", "classes", "{:.3f}"), ("class_chance", "chance", "{:.3f}"),
           ("memorisation_ratio", "NN ratio", "{:.3f}"), ("copy_excess", "copies", "{:+.3f}"),
           ("data_copying_ct", "C_T", "{:.1f}")]


def format_table(results: list[dict], likelihood_table: str) -> str:
    """The likelihood table (where the runs have its figures) and the sample figures' (where they have them)."""
    quality = any("samples" in r for r in results)
    out = [likelihood_table] if not quality or any("nll_nats" in r for r in results) else []
    if quality:
        out += [""] * bool(out) + format_quality(results)
    return "\n".join(out)


def _row(name: str, model: str, r: dict, drawn_for: str, figures: dict, shown, marked=()) -> list[str]:
    return ([name, model, r["data"], drawn_for, str(figures["samples"])]
            + [_quality_cell(figures, k, f, marked, SOUND_FLOOR_KEYS) for k, _, f in shown])


def format_quality(results: list[dict]) -> list[str]:
    rows, networks, seen, no_floor, resamples = [], [], set(), False, None
    shown = [q for q in QUALITY if any(q[0] in r for r in results)]
    for r in results:
        if "samples" not in r:
            continue
        floor = r.get("data_floor")
        name = Path(r["run"]).name
        rows.append(_row(name, r["model"], r, r.get("label", "—") if r.get("conditional") else "none", r, shown,
                         set(within_floor(r, floor, SOUND_FLOOR_KEYS))))
        resamples = resamples or r.get("bootstrap_resamples")
        ref = r.get("data_reference")
        key = (r.get("data_hash"), r["samples"])
        if (ref or floor) and key not in seen:            # no test row where the test split is tiny
            seen.add(key)
            rows += [_row(name, "data", r, "own label", row, shown)
                     for name, row in (("(test clips)", ref), ("(training clips)", floor)) if row]
        no_floor = no_floor or ("data_floor" in r and not floor)
        if r.get("feature_network") and r["feature_network"] not in networks:
            networks.append(r["feature_network"])
    out = _grid(["run", "model", "data", "classes of", "n"] + [h for _, h, _ in shown], rows)
    out.append(f"Each clip as its log-mel spectrogram ({MELS} mel bands, {N_FFT}-sample windows every {HOP} samples, "
               f"{DB_LOW:g} to {DB_HIGH:+g} dB). Samples against real training clips (as many, a fixed subset) in the "
               "features of: " + ("; ".join(networks) or "none") + ". Figures compare only within one feature "
               "network and one n.")
    out.append("FID: the Fréchet distance of the features, as the Fréchet Audio Distance is in a network of its own; "
               "prec/rec: k=3 (Kynkäänniemi et al.); dens/cov: k=5 (Naeem et al.); classes: the share of samples the "
               "classifier assigns to the class they were drawn for (drawn in turn for each class), for real clips "
               "its accuracy on their own labels; chance: 1/classes.")
    if any("copy_excess" in r for r in results):
        out.append("NN ratio, copies, C_T: the copy tests on the spectrograms themselves, against half the test "
                   "clips (held out: spoken-digits' voices and notes' instruments are never heard in training), "
                   "calibrated by the training clips, each measured against the others (as a new clip of a training "
                   "voice would be). NN ratio: median "
                   "distance of samples to their nearest training clip ÷ the same for training clips to the others "
                   "(near 0: copies); copies: the share of samples at most half as far from a training clip as from "
                   "any held-out one, minus that share of the training clips (0: no copying); C_T: Meehan et al.'s "
                   "data-copying z-score (well below 0: closer to the training clips than they are to each other).")
    out += [f"{Path(r['run']).name}: {r['memorisation_verdict']}" for r in results if r.get("memorisation_verdict")]
    out.append(f"±: standard deviation over {resamples or 'the'} bootstrap resamples of the samples (KID: over its "
               "random subsets). (training clips): as many training clips again, disjoint from the reference, judged "
               "like samples: the real-versus-real floor at this n. ≈: within the floor's noise, the figure differs "
               "from the floor's by less than twice their combined ± (FID, KID: exceeds it by less): at this n it "
               "cannot be told from real clips.")
    reasons = {}
    for r in results:
        for metric, why in (r.get("skipped") or {}).items():
            reasons.setdefault(why, []).append(Path(r["run"]).name)
    out += [f"classes not computed for {', '.join(names)}: {why}." for why, names in reasons.items()]
    for r in results:
        pictures = [p for p in (r.get("spectrograms_picture"), r.get("memorisation_picture")) if p]
        if pictures:
            out.append(f"{Path(r['run']).name}: samples' spectrograms in {pictures[0]}"
                       + (f"; those closest to a training clip, above it and their nearest held-out clip, in "
                          f"{pictures[1]}" if len(pictures) > 1 else ""))
    if no_floor:
        out.append("No (training clips) row where the training split holds fewer than 2n clips: without it, no "
                   "figure can be told from real clips; pass a smaller --samples.")
    return out
