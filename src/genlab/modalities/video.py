"""Video: clips of binary frames (moving-mnist, moving-mnist-32, or a folder of the user's animated GIFs).

The likelihood is of the frames after a clip's context (its first `context` frames: 10 of Moving MNIST's
20, half the frames of a folder's clips) given the context, each frame given every frame before it, in
nats per clip and per frame; beside it two baselines in the same units, fitted to the training split:
each pixel on its own (a Bernoulli per pixel position), and "copy the last frame" (each pixel as it was
in the frame before, flipped with a small probability: one for a pixel that was off, ε_off, one for a
pixel that was on, ε_on, each the share of such changes in the training split, its maximum-likelihood
value). A single ε for both would be a weaker baseline than each pixel on its own: nearly every pixel is
off and stays off, while a digit moves by about its strokes' width every frame, so most of its pixels do
change.

`genlab sample RUN --frames F --context K` continues held-out clips: the first n test clips' first K
frames, then F frames drawn by the model, the true future beside them; written as an animated GIF
(NAME.gif) and a strip picture (NAME.png: per clip a row as the model drew it and a row as it was). The
borders say what a frame is: blue the context given, red drawn by the model, green the truth.
"""
from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

import torch

from ..data.containers.video import (PREFIX, VideoBatches, VideoInfo, check_output, grid_gif, load_folder,
                                     read_gif, strip_picture)
from ..data.sources import moving_mnist
from ..errors import UserError
from ..printable import printable
from ..progress import CountBar
from ..settings import option
from .base import Modality
from .media import Media

BUILT_IN = tuple(moving_mnist.SIZES)
EVAL_BATCH = 16
EPOCH_CLIPS, EPOCH_FRAMES = 8, 8     # training's per-epoch samples: frames drawn pixel by pixel take time
MAX_FRAMES = 100                     # `genlab sample --frames`: a longer continuation is hours on a CPU


@dataclasses.dataclass
class VideoSampling:
    frames: int | None = option(None, "frames the model draws after each held-out clip's context (default: the "
                                      "rest of the clip)", low=1, high=100)
    context: int | None = option(None, "frames of each held-out clip given first (default: the data's, 10 of "
                                       "moving-mnist's 20)", low=1, high=1000)


class VideoModality(Modality):
    name = "video"
    noun = "video"
    verb = "makes video"
    unit = "clip"
    data_hint = "moving-mnist, moving-mnist-32 or video:PATH"
    data_options = ()
    SampleSettings = VideoSampling
    page_settings = ("frames",)
    sample_count = 4
    sample_metrics = ("continuation", "fid")     # held-out clips continued, read by the mnist classifier
    train_sizes = {name: size[2] for name, size in moving_mnist.SIZES.items()}
    views = ()
    panels = (("continue", ()),)                                  # a held-out clip continued
    report_views = (("Continued clips", "continuations", ()),)
    page_limit, page_count = "clips", 2
    sample_view = ("clip", "New clips drawn from nothing, frame by frame and pixel by pixel (red borders: drawn "
                           "by the model).")
    shown_frames = EPOCH_FRAMES          # frames a page draws by default: each is drawn pixel by pixel

    # ---- data ----
    def owns(self, spec: str) -> bool:
        return spec in BUILT_IN or spec.startswith(PREFIX)

    def availability(self):
        rows = [(name, *moving_mnist.available(name)) for name in BUILT_IN]
        return rows + [("video:PATH", None, "any folder of animated GIFs, one clip each, binarised at half grey")]

    def load(self, spec, options):
        self.refuse(options, self.data_options, self.noun)
        bar = CountBar(f"building {spec}" if spec in BUILT_IN else f"reading {spec}")
        try:
            if spec.startswith(PREFIX):
                return load_folder(spec[len(PREFIX):], progress=bar)
            ok, why = moving_mnist.available(spec)
            if not ok:
                raise UserError(f"data set {spec!r} is not available here: {why}")
            return moving_mnist.load(spec, progress=bar)
        finally:
            bar.close()

    def fetch(self, name):
        if name not in BUILT_IN:
            raise UserError(f"{name} is not fetched: the video data sets genlab builds are {', '.join(BUILT_IN)}; "
                            f"video:PATH is the user's own")
        ok, why = moving_mnist.available(name)
        if not ok:
            raise UserError(f"{name} cannot be made here: {why}")
        bar = CountBar(f"building {name}")
        try:
            return moving_mnist.fetch(name, progress=bar)
        finally:
            bar.close()

    def prepare(self, ds, model_cls, config, options):
        spec = self.absolute(options["spec"], PREFIX)
        info = VideoInfo(frames=ds.frames, height=ds.height, width=ds.width, context=ds.context, data=spec)
        record = {"spec": spec, "name": ds.name, "hash": ds.content_hash(), "train": ds.count("train"),
                  "test": ds.count("test")}
        return info, record

    def reload(self, run, warn=True):
        d = run.config["data"]
        ds = self.load(d["spec"], {})
        if warn:
            self.warn_changed(run, ds.content_hash(), "video")
        return ds

    def batches(self, ds, info, record, *, batch_size, seed, device):
        train = VideoBatches(ds, "train", batch_size=batch_size, shuffle=True, seed=seed, device=device)
        return train, self.test_batches(ds, device)

    @staticmethod
    def test_batches(ds, device) -> VideoBatches:
        return VideoBatches(ds, "test", batch_size=EVAL_BATCH, shuffle=False, device=device)

    def announce(self, model, ds, train, record) -> str:
        return (f"{ds.name} ({ds.count('train')} clips of {ds.frames} frames of {ds.height}×{ds.width} binary "
                f"pixels; scored on the last {ds.frames - ds.context} given the first {ds.context})")

    def describe(self, ds, options, output):
        for k, v in ds.describe().items():
            print(f"{k:8s} {v}")
        if output:
            gif, png = check_output(output, "-o")
            clips = ds.clips("train", range(min(EPOCH_CLIPS, ds.count("train")))).numpy()
            panels = [_panel(c, ["context"] * ds.context + ["truth"] * (ds.frames - ds.context)) for c in clips]
            grid_gif(gif, [[p] for p in panels])
            strip_picture(png, panels, group=1)
            print(f"wrote {gif} and {png}")

    # ---- what a model writes and reads ----
    def draw(self, model, n, generator, frames=None, **settings):
        """n clips drawn from nothing: N×T×H×W, 0/1 (T: `frames`, default the data's); `settings`: the
        model's declared sampling settings."""
        _, theirs = self.split_settings(model, settings)
        return model.sample(n, generator=generator, frames=frames, **theirs)

    def page_describe(self, model, limits):
        clip = {"frames": model.info.frames, "context": model.info.context,
                "draw": min(model.info.frames, limits["clip_frames"], EPOCH_FRAMES)}
        return {**super().page_describe(model, limits), "clip": clip}

    def page_sample(self, model, n, generator, condition, settings):
        settings = dict(settings)
        frames = settings.pop("frames", None) or min(model.info.frames, EPOCH_FRAMES)
        clips = self.draw(model, n, generator, frames=frames, **settings)
        gif, strip = self.pictures(drawn_items(clips))
        return {"gif": Media(gif, "image/gif"), "image": Media(strip, "image/png"), "frames": clips.shape[1]}

    def write_samples(self, model, stem, n, generator):
        clips = self.draw(model, min(n, EPOCH_CLIPS), generator, frames=min(model.info.frames, EPOCH_FRAMES))
        return write_clips(drawn_items(clips), stem.with_suffix(".gif"), stem.with_suffix(".png"))

    def sample(self, model, n, options, output, generator):
        """The first n test clips of the run's data: their first `context` frames, then `frames` drawn by
        the model; the true future beside them."""
        mine, _ = self.split_settings(model, options)
        k, f = self.continuation_frames(model, mine.get("context"), mine.get("frames"))
        gif, png = check_output(output or "clips.gif", "-o")
        ds = self.held_out(model, k)
        if n > ds.count("test"):
            raise UserError(f"-n {n}: {ds.name} has {ds.count('test')} test clips")
        items = self.continuation(model, ds, range(n), k, f, generator)
        write_clips(items, gif, png, scale=2 if n <= 16 else 1)
        past = (f" (the true clips end {ds.frames - k} frames after the context: nothing beside the rest)"
                if k + f > ds.frames else "")
        print(f"wrote {gif} and {png}: {n} test clip{'s' if n != 1 else ''}, {k} frames given (blue), {f} drawn "
              f"by the model (red), the true future beside them (green){past}")

    @staticmethod
    def continuation_frames(model, context: int | None, frames: int | None) -> tuple[int, int]:
        """(frames given, frames to draw) of a continuation: the data's context and the rest of a clip unless
        told; anything out of bounds is one line."""
        info = model.info
        k = context or info.context
        if not 1 <= k < info.frames:
            raise UserError(f"--context must be from 1 to {info.frames - 1} (the clips have {info.frames} frames), "
                            f"not {k}")
        f = frames or info.frames - k
        if not 1 <= f <= MAX_FRAMES:
            raise UserError(f"--frames must be from 1 to {MAX_FRAMES}, not {f}")
        return k, f

    def held_out(self, model, context: int, ds=None):
        """The data a video model was trained on (`ds` when already read), checked to fit it, for its held-out
        clips."""
        info = model.info
        if ds is None:
            if not info.data:
                raise UserError(f"{model.name} does not name the data it was trained on, so it has no held-out "
                                f"clips to continue")
            ds = self.load(info.data, {})
        if (ds.height, ds.width) != (info.height, info.width) or ds.frames < context:
            raise UserError(f"{printable(info.data)} now holds clips of {ds.frames} frames of {ds.height}×{ds.width}; "
                            f"the model was trained on {info.frames} frames of {info.height}×{info.width}")
        return ds

    @torch.no_grad()
    def continuation(self, model, ds, clips, context: int, frames: int, generator) -> list:
        """Test clips `clips` (indices) of `ds`: their first `context` frames, then `frames` drawn by the
        model, the true future beside them; as the pictures take them (per clip: as drawn, as it was)."""
        k, f = context, frames
        truth = ds.clips("test", list(clips)).to(model.device, torch.float32)
        drawn = model.continue_clips(truth[:, :k], f, generator=generator).cpu().numpy()
        truth = truth[:, :k + f].cpu().numpy()
        return [[_panel(d, ["context"] * k + ["model"] * f),
                 _panel(t, ["context"] * k + ["truth"] * (len(t) - k))] for d, t in zip(drawn, truth)]

    @staticmethod
    def pictures(items, scale: int = 2) -> tuple[bytes, bytes]:
        """Clips as `sample` writes them (continuation's items, or drawn_items), in memory: the animated GIF's
        bytes and the strip picture's (PNG)."""
        with tempfile.TemporaryDirectory(prefix="genlab-clips-") as tmp:
            gif, png = Path(tmp) / "clips.gif", Path(tmp) / "clips.png"
            write_clips(items, gif, png, scale)
            return gif.read_bytes(), png.read_bytes()

    def read_input(self, model, value):
        """A user's animated GIF as the model sees clips: 1×T×H×W, 0/1."""
        path = Path(value).expanduser()
        if not path.is_file():
            raise UserError(f"clip {printable(value)} does not exist")
        clip = torch.from_numpy(read_gif(path))
        if tuple(clip.shape[1:]) != (model.info.height, model.info.width):
            raise UserError(f"{printable(value)} has frames of {clip.shape[2]}×{clip.shape[1]}; {model.name} models "
                            f"{model.info.width}×{model.info.height}")
        return clip.unsqueeze(0).float().to(model.device)

    def explore(self, model, view, options):
        owners = [m.name for m in Modality._all if view in m.views]
        raise UserError(f"{view} is for {' and '.join(owners) or 'other'} models; {model.name} {self.verb}, and has no "
                        f"views to explore")

    # ---- figures ----
    def sample_quality(self, metrics, samples, features, device):
        from ..evaluation.continuation import ContinuationQuality
        return ContinuationQuality(metrics, samples, features, device, digits=self.digits)

    @staticmethod
    def digits(ds):
        """What is known of a data set's test digits (their size, classes and places); None for clips of no
        known digits (the user's own)."""
        return moving_mnist.test_digits(ds.name) if "digit_side" in ds.extra and ds.name in BUILT_IN else None

    def baseline_nats(self, model, ds, test):
        """Each pixel on its own, nats per test clip over the scored frames."""
        if model.likelihood_kind == "none":
            return None
        return float(independent_nll(ds, pixel_marginals(ds), ds.context).mean())

    def baseline_name(self, model):
        return "each pixel on its own (indep. in genlab eval)"

    @torch.no_grad()
    def likelihood(self, model, run, ds, *, iwae_k, live):
        """The test split's exact NLL of the scored frames, per clip and per frame, each with its standard
        error over the test clips, and the two baselines in the same units."""
        from ..evaluation.likelihood import per_example_terms
        from ..progress import Progress

        test = self.test_batches(ds, model.device)
        bar = Progress(len(test), f"eval {run.path}", unit="clip", live=live)
        terms = per_example_terms(model, test, iwae_k=0, progress=bar)
        bar.close()
        if "nll" not in terms:
            return {}
        info = model.info
        rates = copy_rates(ds, info.context)
        out = figures("nll", terms["nll"], info)
        out.update(figures("copy_last_frame", copy_last_nll(ds, rates, info.context), info))
        out.update(figures("independent", independent_nll(ds, pixel_marginals(ds), info.context), info))
        out["baseline_nll_nats"] = out["independent_nats"]      # each dimension on its own, as every modality names it
        out["copy_last_frame_flips"] = {"on": float(rates[0, 1]), "off": float(rates[1, 0])}
        out["standard_error"] = (f"…_se: standard error of the mean over the {ds.count('test')} test clips (the "
                                 f"figures are exact, so this is the test split's sampling noise only)")
        out["baselines"] = (f"independent: each pixel on its own, a Bernoulli per pixel position fitted to every "
                            f"training frame (add-one smoothed); copy_last_frame: each pixel as in the frame before, "
                            f"an off pixel turned on with probability {float(rates[0, 1]):.4g} and an on pixel off "
                            f"with {float(rates[1, 0]):.4g}, the shares of such changes in the training split's "
                            f"scored frames (their maximum-likelihood values, add-one smoothed)")
        return out

    def describe_run(self, model, run, ds) -> dict:
        info = model.info
        return {"clips": f"{info.frames} frames of {info.height}×{info.width} binary pixels",
                "context_frames": info.context, "scored_frames": info.predicted, "test_clips": ds.count("test")}

    def format_table(self, results):
        quality = any("continuation" in r or "frame_fid" in r for r in results)
        parts = []
        if not quality or any(k in r for r in results for k, _ in COLUMNS[2:]):
            parts.append(self.figure_table(
                results, COLUMNS,
                "exact NLL of the frames after the context, each given all before it, nats per frame ± its standard "
                "error over test clips; baselines fitted to the training split: copy = each pixel as in the frame "
                "before, flipped with a fitted probability (one for on pixels, one for off); indep. = each pixel on "
                "its own."))
        if quality:
            from ..evaluation.continuation import format_table
            parts.append(format_table(results))
        return "\n\n".join(parts)


COLUMNS = [("run", "run"), ("data", "data"), ("nll_nats_per_frame", "nats/frame"),
           ("copy_last_frame_nats_per_frame", "copy nats/frame"), ("independent_nats_per_frame", "indep. nats/frame")]



def drawn_items(clips) -> list:
    """Clips drawn from nothing (N×T×H×W) as the pictures take them: one panel each, every frame the model's."""
    return [[_panel(c.cpu().numpy(), ["model"] * len(c))] for c in clips]


def write_clips(items, gif: Path, png: Path, scale: int = 2) -> Path:
    """Items of clips (each one or more panels: as drawn, as it was) as an animated GIF of them side by side
    and a strip picture of their rows, grouped by item."""
    strip_picture(png, [p for item in items for p in item], group=max(len(item) for item in items), scale=scale)
    return grid_gif(gif, items)


def _panel(clip, kinds: list[str]):
    """A clip (T×H×W array) as the pictures take it: its frames and each one's kind."""
    return [clip[t] for t in range(len(clip))], kinds[:len(clip)]


def figures(name: str, nats: torch.Tensor, info: VideoInfo) -> dict:
    """Per-clip NLLs as `name`_nats (per clip) and _nats_per_frame (per scored frame), with standard errors."""
    from ..evaluation.likelihood import mean_and_se
    out = {}
    for unit, scale in (("nats", 1.0), ("nats_per_frame", 1 / info.predicted)):
        mean, se = mean_and_se(nats.double() * scale)
        out[f"{name}_{unit}"] = mean
        if se is not None:
            out[f"{name}_{unit}_se"] = se
    return out


def pixel_marginals(ds) -> torch.Tensor:
    """Each pixel position's chance of being on (H×W, float64) over every training frame, add-one smoothed."""
    on, count = 0, 0
    for clips in ds.chunks("train"):
        on = on + clips.double().sum((0, 1))
        count += clips.shape[0] * clips.shape[1]
    return (on + 1) / (count + 2)


def independent_nll(ds, p: torch.Tensor, context: int) -> torch.Tensor:
    """Nats per test clip of its frames from `context` on, each pixel on its own with chance p (H×W)."""
    out = []
    for clips in ds.chunks("test"):
        x = clips[:, context:].double()
        out.append(-(x * p.log() + (1 - x) * (1 - p).log()).sum((1, 2, 3)))
    return torch.cat(out)


def transitions(clips: torch.Tensor, context: int) -> torch.Tensor:
    """Per clip, how often a pixel of the frames from `context` (at least 1) on is off/on given that it
    was off/on in the frame before: N×2×2 counts, [before, now]."""
    before, now = clips[:, context - 1:-1].long(), clips[:, context:].long()
    code = (before * 2 + now).flatten(1)
    return torch.stack([torch.bincount(c, minlength=4) for c in code]).view(-1, 2, 2).double()


def copy_rates(ds, context: int) -> torch.Tensor:
    """The copy baseline's 2×2 table p(now | before) of a pixel given its value in the frame before, from
    the training split's scored frames (add-one smoothed: the maximum-likelihood table, never 0 or 1)."""
    counts = torch.ones(2, 2, dtype=torch.float64)
    for clips in ds.chunks("train"):
        counts += transitions(clips, context).sum(0)
    return counts / counts.sum(1, keepdim=True)


def copy_last_nll(ds, rates: torch.Tensor, context: int) -> torch.Tensor:
    """Nats per test clip of its frames from `context` on under 'copy the last frame': each pixel as in the
    frame before, flipped with probability rates[before, 1 - before]."""
    return torch.cat([-(transitions(clips, context) * rates.log()).sum((1, 2)) for clips in ds.chunks("test")])

