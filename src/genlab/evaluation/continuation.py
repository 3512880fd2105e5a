"""How well a video model continues held-out clips of two moving digits (Moving MNIST), frame by frame ahead.

The first test clips (CLIPS unless --samples says) are given their first C frames (the run's context) and
the model draws the next F (AHEAD, or fewer where the clips end sooner), a frame at a time for every clip
together; a frame is drawn pixel by pixel, so these defaults keep a 32×32 model's evaluation to a minute or
two on one CPU thread. For each frame ahead k = 1…F, in the drawn frame and in the true one the digits are
found (evaluation/digits.py) and read by genlab's classifier of the mnist digits the clips were made of
(each digit's crop enlarged to the classifier's size, nearest neighbour: the clips' digits are binary);
each true digit is matched by place to a drawn one, and per clip:

- read the same: the share of true digits whose drawn digit the classifier reads as it reads the true one;
- position error: the distance between the centroids of each true digit and its drawn one, in pixels of
  the frame (a frame with nothing drawn counts its digits as placed at the frame's centre, read wrong).
  Beside it, the error of placing every digit at the frame's centre: blobs of noise spread over a frame
  have their centroids near it, so a model's error near that one says it no longer follows the digits.

Beside them, the same for copying the last given frame (what a model that has learnt no motion does): the
table says, per frame ahead, which of the two is better beyond twice the standard error of their paired
difference over clips (placing: the model nearer than the frame's centre too, else it follows no digit).
The truth's own readings against the digits' classes (known where the data keep them) are the ceiling of
"read the same": what the classifier makes of real frames, overlapping digits among them.

The frames' Fréchet distance, in the same classifier's features of whole frames (enlarged as the digits
are): the drawn frames against the true future frames (at the same frames ahead) of other test clips (as
many again, at least REFERENCE where the split holds them), and the real-versus-real floor: the true
futures of the continued clips, judged alike. Its `_std` is the bootstrap's over the continued clips
(their frames resampled together).
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from ..data.containers.video import strip_picture
from ..errors import UserError
from ..printable import printable
from ..progress import Progress
from . import fid as fidmod
from .digits import find_digits, match
from .features import builtin_network
from .likelihood import mean_and_se
from .sample_quality import BOOTSTRAP, bootstrap_indices

CLIPS = 100              # clips continued by default
AHEAD = 10               # frames drawn after the context by default (fewer where the clips end sooner)
CLIP_BATCH = 100         # clips drawn together: a pixel's step costs nearly the same for 1 clip or 100
REFERENCE = 200          # test clips, at least, whose true futures the drawn frames are compared with
SHOWN = 6                # clips in the picture
MIN_SIDE = 256           # the picture's short side at least


class ContinuationQuality:
    """What `genlab eval --metrics continuation,fid` computes for video runs. `digits(ds)` gives what is
    known of a data set's test digits (data/sources/moving_mnist.TestDigits), None for clips of no digits."""

    def __init__(self, metrics, samples: int | None, features: str | None, device, digits):
        if features:
            raise UserError("--features: video figures read the digits with genlab's classifier of mnist; they "
                            "take no other network")
        self.metrics = [m for m in metrics if m != "likelihood"]
        self.samples, self.device, self.digits = samples, device, digits
        self.judges = {}

    def judge(self, data_hash: str, ds, live) -> "DigitJudge":
        if data_hash not in self.judges:
            truth = self.digits(ds)
            if truth is None:
                raise UserError(f"--metrics {','.join(self.metrics)}: these figures read the two mnist digits of "
                                f"moving-mnist's clips, and the clips of {printable(ds.name)} hold no known digits")
            bar = lambda total, label: Progress(total, label, unit="img", live=live)  # noqa: E731
            self.judges[data_hash] = DigitJudge(ds, truth, builtin_network(truth.mnist, self.device, bar))
        return self.judges[data_hash]

    def report(self, model, pictures: Path, data_hash: str, ds, binarize, live) -> dict:
        judge = self.judge(data_hash, ds, live)
        c = model.info.context
        ahead = min(AHEAD, ds.frames - c)
        if ahead < 1:
            raise UserError(f"{model.name}'s context is {c} frames and {ds.name}'s clips have {ds.frames}: "
                            f"nothing is left to continue")
        n, total = self.samples or min(CLIPS, ds.count("test")), ds.count("test")
        most = total // 2 if "fid" in self.metrics else total
        if n > most:
            raise UserError(f"--samples {n}: {ds.name} has {total} test clips"
                            + (", half of them the real frames the continued ones are compared with: at most "
                               f"{most}" if "fid" in self.metrics else ""))
        clips = ds.clips("test", range(n)).float()
        drawn = continue_clips(model, clips[:, :c], ahead, live, f"continue {n} clips")
        truth = clips[:, c:c + ahead]
        out = {}
        if "continuation" in self.metrics:
            out["continuation"] = judge.continuation(clips, drawn, c)
            out["continuation"]["picture"] = str(write_picture(pictures / "continuations.png", clips, drawn, c))
        if "fid" in self.metrics:
            others = range(n, min(total, n + max(n, REFERENCE)))
            out.update(judge.frame_fid(drawn, truth, ds.clips("test", others)[:, c:c + ahead].float()))
        return out


def continue_clips(model, given: torch.Tensor, frames: int, live, label: str) -> torch.Tensor:
    """`frames` frames drawn by the model after each clip `given` (N×C×H×W), N×frames×H×W: a frame at a
    time, so the bar moves as each frame of a batch is drawn (a fixed seed: the same frames every time)."""
    g = torch.Generator(device=model.device).manual_seed(0)
    bar = Progress(math.ceil(len(given) / CLIP_BATCH) * frames, label, unit="frame", live=live)
    out = []
    for s in range(0, len(given), CLIP_BATCH):
        clip = given[s:s + CLIP_BATCH].to(model.device)
        for _ in range(frames):
            clip = model.continue_clips(clip, 1, generator=g)
            bar.update(1, items=len(clip))
        out.append(clip[:, -frames:].float().cpu())
    bar.close()
    return torch.cat(out)


class DigitJudge:
    """The classifier and the known digits of one data set."""

    def __init__(self, ds, truth, network):
        self.ds, self.truth, self.network = ds, truth, network
        self.size = truth.mnist.shape[-1]          # the classifier's input: a digit enlarged to it

    def enlarge(self, images: torch.Tensor) -> torch.Tensor:
        """Images N×H×W (frames or digit crops) N×1×… with their digits at the classifier's size."""
        factor = self.size / self.truth.side
        return F.interpolate(images[:, None].float(), scale_factor=factor, mode="nearest") if factor != 1 \
            else images[:, None].float()

    def read(self, frames: list[np.ndarray]) -> list[tuple]:
        """Each frame's digits: (centres D×2, what the classifier reads D)."""
        found = [find_digits(f, self.truth.side) for f in frames]
        crops = [d.crops for d in found if len(d.crops)]
        reads = np.zeros(0, dtype=int)
        if crops:
            _, probs = self.network(self.enlarge(torch.from_numpy(np.concatenate(crops))))
            reads = probs.argmax(1).cpu().numpy()
        out, at = [], 0
        for d in found:
            out.append((d.centres, reads[at:at + len(d.centres)]))
            at += len(d.centres)
        return out

    def continuation(self, clips: torch.Tensor, drawn: torch.Tensor, context: int) -> dict:
        n, ahead, h, w = drawn.shape
        truth = self.read(list(clips[:, context:context + ahead].reshape(-1, h, w).numpy()))
        model = self.read(list(drawn.reshape(-1, h, w).numpy()))
        copy = self.read(list(clips[:, context - 1].numpy()))
        centre = np.array([(h - 1) / 2, (w - 1) / 2])
        same = {"model": np.full((n, ahead), np.nan), "copy": np.full((n, ahead), np.nan)}
        error = {"model": np.full((n, ahead), np.nan), "copy": np.full((n, ahead), np.nan)}
        error["centre"] = np.full((n, ahead), np.nan)
        found = np.zeros((n, ahead))
        for i in range(n):
            for k in range(ahead):
                t = truth[i * ahead + k]
                found[i, k] = len(model[i * ahead + k][0])
                if len(t[0]):
                    for who, d in (("model", model[i * ahead + k]), ("copy", copy[i])):
                        same[who][i, k], error[who][i, k] = judge_frame(t, d, centre)
                    error["centre"][i, k] = float(np.linalg.norm(t[0] - centre, axis=1).mean())
        rows = []
        for k in range(ahead):
            row = {"ahead": k + 1, "model_digits_found": float(found[:, k].mean())}
            for key, figs, higher in (("read_same", same, True), ("position_error", error, False)):
                for who in ("model", "copy"):
                    row[f"{who}_{key}"], row[f"{who}_{key}_se"] = _mean_se(figs[who][:, k])
                row[f"better_{key}"] = better(figs["model"][:, k], figs["copy"][:, k], higher)
            row["centre_position_error"], row["centre_position_error_se"] = _mean_se(error["centre"][:, k])
            if row["better_position_error"] == "model" and better(error["model"][:, k], error["centre"][:, k],
                                                                   False) != "model":
                row["better_position_error"] = "even"      # nearer than copying only as noise is: it follows no digit
            rows.append(row)
        out = {"clips": n, "context": context, "frames_ahead": ahead, "per_frame_ahead": rows,
               "reader": self.network.name, "digit_side": self.truth.side,
               "beats_copying_at": {key: [row["ahead"] for row in rows if row[f"better_{key}"] == "model"]
                                    for key in ("read_same", "position_error")}}
        out.update(self.ceiling(truth, n, ahead, context))
        return out

    def ceiling(self, truth: list[tuple], n: int, ahead: int, context: int) -> dict:
        """The true frames' readings against the classes of their digits, matched by place."""
        if self.truth.labels is None:
            return {"truth_read_as_labels": None, "truth_read_as_labels_note": "the data keep no classes of their "
                                                                                 "digits"}
        per_clip = np.full(n, np.nan)
        for i in range(n):
            hits = []
            for k in range(ahead):
                centres, reads = truth[i * ahead + k]
                known = self.truth.centres[i, :, context + k]
                j = match(known, centres)
                hits += [j[d] >= 0 and reads[j[d]] == self.truth.labels[i, d] for d in range(len(known))]
            per_clip[i] = np.mean(hits)
        mean, se = _mean_se(per_clip)
        return {"truth_read_as_labels": mean, "truth_read_as_labels_se": se}

    def frame_fid(self, drawn: torch.Tensor, truth: torch.Tensor, reference: torch.Tensor) -> dict:
        """Drawn frames (N×F×H×W) against the reference frames, and the true futures alike (the floor)."""
        n, ahead, h, w = drawn.shape
        ref, _ = self.network(self.enlarge(reference.reshape(-1, h, w)))
        frames = torch.arange(ahead)
        resamples = (bootstrap_indices(n)[:, :, None] * ahead + frames).flatten(1)   # clips with all their frames
        out = {"frame_fid_frames": n * ahead, "frame_fid_reference_frames": len(ref), "bootstrap_resamples": BOOTSTRAP,
               "feature_network": self.network.name}
        for key, frames_of in (("frame_fid", drawn), ("frame_fid_floor", truth)):
            feats, _ = self.network(self.enlarge(frames_of.reshape(-1, h, w)))
            out[key] = fidmod.fid(ref, feats)
            out[f"{key}_std"] = _std(fidmod.fid_resampled(ref, feats, resamples))
        out["frame_fid_within_floor"] = bool(out["frame_fid"] - out["frame_fid_floor"]
                                             <= 2 * math.hypot(out["frame_fid_std"], out["frame_fid_floor_std"]))
        return out


def judge_frame(truth: tuple, drawn: tuple, centre: np.ndarray) -> tuple[float, float]:
    """(share of the true digits read the same, their mean position error) of one drawn frame: each a
    (centres D×2, readings D) of its digits."""
    (tc, tr), (dc, dr) = truth, drawn
    j = match(tc, dc)
    placed = np.where(j[:, None] >= 0, dc[np.maximum(j, 0)] if len(dc) else centre, centre)
    read = np.where(j >= 0, dr[np.maximum(j, 0)] if len(dr) else -1, -1)
    return float((read == tr).mean()), float(np.linalg.norm(tc - placed, axis=1).mean())


def better(model: np.ndarray, copy: np.ndarray, higher: bool) -> str:
    """"model", "copy" or "even": which is better beyond twice the standard error of their paired
    difference over clips."""
    diff = model - copy
    mean, se = _mean_se(diff)
    if mean is None or se is None:
        return "even"
    if not higher:
        mean = -mean
    return "model" if mean > 2 * se else "copy" if mean < -2 * se else "even"


def _mean_se(values: np.ndarray) -> tuple[float | None, float | None]:
    v = torch.as_tensor(values, dtype=torch.float64)
    v = v[torch.isfinite(v)]
    return mean_and_se(v) if len(v) else (None, None)


def _std(values: torch.Tensor) -> float:
    v = values[torch.isfinite(values)]
    return float(v.std()) if len(v) > 1 else float("nan")


def write_picture(path: Path, clips: torch.Tensor, drawn: torch.Tensor, context: int) -> Path:
    """The first SHOWN clips, each as two rows: its given frames then the drawn ones, its given frames then
    the true ones (borders: blue given, red drawn, green truth)."""
    rows = []
    ahead = drawn.shape[1]
    for clip, new in zip(clips[:SHOWN].numpy(), drawn[:SHOWN].numpy()):
        given, true = list(clip[:context]), list(clip[context:context + ahead])
        rows.append((given + list(new), ["context"] * context + ["model"] * ahead))
        rows.append((given + true, ["context"] * context + ["truth"] * ahead))
    h = clips.shape[2]
    scale = max(2, math.ceil(MIN_SIDE / (len(rows) * h)))
    return strip_picture(path, rows, group=2, scale=scale)


def format_table(results: list[dict]) -> str:
    """Per run, a row per frame ahead: the model against copying the last given frame; then the ceiling
    and the frames' Fréchet distance with its floor."""
    blocks = []
    for r in results:
        lines = [f"{Path(r['run']).name} ({r['data']})"]
        c = r.get("continuation")
        if c:
            lines.append(f"continuing {c['clips']} held-out clips, {c['context']} frames given: digits read the "
                         f"same as the truth's, and their position error (px)")
            head = ["ahead", "read: model", "read: copy", "px: model", "px: copy", "px: centre", "better (read / px)"]
            cells = [[str(row["ahead"]), _cell(row, "model_read_same"), _cell(row, "copy_read_same"),
                      _cell(row, "model_position_error", 2), _cell(row, "copy_position_error", 2),
                      _cell(row, "centre_position_error", 2),
                      f"{row['better_read_same']} / {row['better_position_error']}"] for row in c["per_frame_ahead"]]
            widths = [max(len(h), *(len(row[i]) for row in cells)) for i, h in enumerate(head)]
            lines += ["  " + "  ".join(x.rjust(w) for x, w in zip(row, widths))
                      for row in [head, ["-" * w for w in widths]] + cells]
            beats = c["beats_copying_at"]
            lines.append(f"frames ahead where the model beats copying: at reading the digits "
                         f"{_ks(beats['read_same'])}; at placing them {_ks(beats['position_error'])}")
            lines.append("the truth read as its digits' classes (the ceiling of read the same): "
                         + (_cell(c, "truth_read_as_labels") if c.get("truth_read_as_labels") is not None
                            else f"none ({c.get('truth_read_as_labels_note', 'no classes kept')})"))
            lines.append(f"picture: {c['picture']}")
        if "frame_fid" in r:
            within = " (within the floor's noise)" if r["frame_fid_within_floor"] else ""
            lines.append(f"frame FID: {r['frame_fid']:.2f}±{r['frame_fid_std']:.2f}{within}; real vs real floor "
                         f"{r['frame_fid_floor']:.2f}±{r['frame_fid_floor_std']:.2f} ({r['frame_fid_frames']} frames "
                         f"each against {r['frame_fid_reference_frames']} of other test clips)")
        blocks.append("\n".join(lines))
    first = next((r for r in results if "continuation" in r or "feature_network" in r), {})
    reader = first.get("continuation", {}).get("reader") or first.get("feature_network")
    note = []
    if any("continuation" in r for r in results):
        note.append("read the same: the share of the true digits whose drawn digit is read as the true one is read, ± "
                    "its standard error over clips; px: the distance between their centroids; copy: the last given "
                    "frame copied; centre: every digit placed at the frame's centre (what noise spread over the frame "
                    "scores); better: model against copy, beyond twice the standard error of their paired difference, "
                    "else even (placing: the model nearer than the centre too)")
    if any("frame_fid" in r for r in results):
        note.append("frame FID: single frames in the classifier's features, ± the bootstrap's deviation over clips")
    note = "; ".join(note) + f". Reader: {reader}"
    return "\n\n".join(blocks + [note])


def _cell(d: dict, key: str, digits: int = 3) -> str:
    value, se = d.get(key), d.get(f"{key}_se")
    if value is None:
        return "—"
    return f"{value:.{digits}f}" + (f"±{se:.{digits}f}" if se is not None else "")


def _ks(ks: list[int]) -> str:
    """Frames ahead as runs: "1–3, 5", or "none"."""
    runs = []
    for k in ks:
        if runs and k == runs[-1][1] + 1:
            runs[-1][1] = k
        else:
            runs.append([k, k])
    return ", ".join(f"{a}" if a == b else f"{a}–{b}" for a, b in runs) or "none"
