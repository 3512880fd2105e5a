"""Sound: clips of 8 kHz mono audio (spoken-digits, notes, or a folder of the user's WAV files), each sample
one of 256 μ-law codes.

Samples are written as WAV files (16-bit PCM) with a picture of each clip's waveform and spectrogram
beside them: `-o out.wav` one file, the clips half a second apart, and out.png; `-o FOLDER/` one file
and one picture per clip. The likelihood is reported per clip, per second (nats) and per sample (bits),
beside two baselines fitted to the training split: each sample on its own (one histogram of the codes),
and linear prediction (an autoregressive Gaussian on the waveform, discretised to the μ-law codes). The sample
figures are evaluation/sound_quality.py's, in a classifier of log-mel spectrograms.
"""
from __future__ import annotations

import dataclasses
import math
import re
from pathlib import Path

import numpy as np
import torch

from ..data.containers.audio import (LENGTH, PREFIX, RATE, AudioBatches, AudioInfo, check_length,
                                     fit_length, mulaw_decode, mulaw_encode, resample, to_float)
from ..data.containers.audio_files import (join_with_pauses, load_folder, picture_png, read_wav, save_picture,
                                           write_wav)
from ..data.sources import notes, spoken_digits
from ..errors import UserError
from ..evaluation.sound_quality import SOUND_METRICS
from ..printable import printable
from ..progress import CountBar
from ..settings import option
from .audio_baselines import LPC_ORDER, histogram_nll, linear_prediction_nll
from .base import Modality
from .media import Media

BUILT_IN = {"spoken-digits": spoken_digits, "notes": notes}
EVAL_BATCH = 16
EPOCH_CLIPS = 8                 # clips in each epoch's sample file: a longer file is no longer listened to
PAUSE = 0.5                     # seconds of silence between clips in one file
COVERS = "bottom-half or right-half (the second half), a percentage such as 75% or seconds such as 0.5s (the end)"


@dataclasses.dataclass
class AudioSampling:
    label: int | None = option(None, "class to draw (conditional models: the word of spoken-digits, the "
                                     "instrument family of notes)", low=0, flag="--class")


class AudioModality(Modality):
    name = "audio"
    noun = "sound"
    verb = "makes sound"
    unit = "clip"
    data_hint = "spoken-digits, notes or audio:PATH"
    data_options = ("size",)             # the clip length in samples (cut or padded)
    SampleSettings = AudioSampling
    sample_count = 8
    sample_metrics = SOUND_METRICS       # in a classifier of log-mel spectrograms: evaluation/sound_quality.py
    train_sizes = {"spoken-digits": 1596, "notes": 1777}
    views = ()
    page_limit, page_count = "clips", 2
    sample_view = ("audio", "New clips from the model: press play.")
    panels = (("complete_sound", ("complete",)),)        # a clip's end covered, drawn again and heard beside it

    # ---- data ----
    def owns(self, spec: str) -> bool:
        return spec in BUILT_IN or spec.startswith(PREFIX)

    def availability(self):
        rows = [(name, *mod.available()) for name, mod in BUILT_IN.items()]
        return rows + [("audio:PATH", None, "any folder of WAV files (sub-folders are classes), resampled to 8 kHz, "
                                             "cut or padded to 1 s (--size N: N samples)")]

    def load(self, spec, options):
        self.refuse(options, self.data_options, self.noun)
        length = check_length(options["size"]) if options.get("size") is not None else None
        bar = CountBar(f"building {spec}" if spec in BUILT_IN else f"reading {spec}")
        if spec.startswith(PREFIX):
            ds = load_folder(spec[len(PREFIX):], length or LENGTH, progress=bar)
        else:
            mod = BUILT_IN[spec]
            ok, why = mod.available()
            if not ok:
                raise UserError(f"data set {spec!r} is not available here: {why}")
            ds = mod.load(progress=bar)
        bar.close()
        return ds.with_length(length) if length else ds

    def fetch(self, name):
        if name not in BUILT_IN:
            raise UserError(f"{name} is not fetched: the sound data sets genlab builds are {', '.join(BUILT_IN)}; "
                            f"audio:PATH is the user's own")
        bar = CountBar(f"building {name}")
        path = BUILT_IN[name].fetch(progress=bar)
        bar.close()
        return path

    def prepare(self, ds, model_cls, config, options):
        asked = model_cls.data_request(config)
        label = self.label_of(ds, asked.get("label", "auto"), asked.get("conditional", False))
        names = ds.labels[label].names if label else ()
        info = AudioInfo(length=ds.length, rate=ds.rate, num_classes=len(names), class_names=names, label=label)
        spec = self.absolute(options["spec"], PREFIX)
        record = {"spec": spec, "name": ds.name, "hash": ds.content_hash(), "train": len(ds.train_x),
                  "test": len(ds.test_x), "size": options.get("size"), "label": label}
        return info, record

    @staticmethod
    def label_of(ds, wanted: str, conditional: bool) -> str:
        """The labelling the classes come from: the one asked for, or the data's first ("" when it has none)."""
        if wanted in ("auto", None):
            return next(iter(ds.labels), "")
        if wanted not in ds.labels:
            has = f"its labels are {', '.join(ds.labels)}" if ds.labels else "it is unlabelled"
            if conditional:
                raise UserError(f"label={wanted}: {ds.name} has no {wanted} labels ({has})")
            return next(iter(ds.labels), "")
        return wanted

    def reload(self, run, warn=True):
        d = run.config["data"]
        ds = self.load(d["spec"], {"size": d.get("size")})
        if warn:
            self.warn_changed(run, ds.content_hash(), "sound")
        return ds

    def batches(self, ds, info, record, *, batch_size, seed, device):
        lab = ds.labels.get(record.get("label") or "")
        train = AudioBatches(ds.codes("train"), lab.train if lab else None, batch_size=batch_size, shuffle=True,
                             seed=seed, device=device)
        return train, self.test_batches(ds, record, device)

    @staticmethod
    def test_batches(ds, record, device) -> AudioBatches:
        lab = ds.labels.get(record.get("label") or "")
        return AudioBatches(ds.codes("test"), lab.test if lab else None, batch_size=EVAL_BATCH, shuffle=False,
                            device=device)

    def announce(self, model, ds, train, record) -> str:
        cond = f", conditioned on the {record['label']}" if model.condition_kind == "class" else ""
        return (f"{ds.name} ({len(ds.train_x)} clips of {ds.length / ds.rate:g} s at {ds.rate} Hz, 8-bit μ-law"
                f"{cond})")

    def describe(self, ds, options, output):
        for k, v in ds.describe().items():
            print(f"{k:8s} {v}")
        if output:
            clips = [c.float() / 32768 for c in ds.train_x[:EPOCH_CLIPS]]
            wav, png = _paths(output, "an example file")
            write_wav(wav, join_with_pauses(clips, ds.rate, PAUSE), ds.rate)
            save_picture(clips, png, ds.rate, titles=[f"training clip {i + 1}" for i in range(len(clips))])
            print(f"wrote {wav} and {png}")

    # ---- what a model writes and reads ----
    def draw(self, model, n, generator, condition=None, **settings):
        """n clips: waveforms N×T in [-1, 1]; `settings`: the model's declared sampling settings."""
        _, theirs = self.split_settings(model, settings)
        return model.sample(n, condition=condition, generator=generator, **theirs)

    def page_sample(self, model, n, generator, condition, settings):
        return {"audio": [Media.wav(clip, model.info.rate) for clip in self.draw(model, n, generator, condition,
                                                                                  **settings)]}

    def write_samples(self, model, stem, n, generator):
        clips = self.draw(model, min(n, EPOCH_CLIPS), generator)
        wav = write_wav(stem.with_suffix(".wav"), join_with_pauses(clips, model.info.rate, PAUSE), model.info.rate)
        save_picture(clips, stem.with_suffix(".png"), model.info.rate, titles=self._titles(model, len(clips), None))
        return wav

    def sample(self, model, n, options, output, generator):
        mine, theirs = self.split_settings(model, options)
        label = mine.get("label")
        condition = model.class_condition(label, n)
        out = output or "samples.wav"               # the output checked before the clips are drawn
        each = out.endswith(("/", "\\")) or Path(out).is_dir()
        if each and not Path(out).is_dir():
            raise UserError(f"cannot write into {printable(out)}: the folder does not exist")
        wav, png = (None, None) if each else _paths(out, "-o")
        clips = model.sample(n, condition=condition, generator=generator, **theirs)
        titles = self._titles(model, n, label)
        rate = model.info.rate
        if each:
            folder = Path(out)
            width = len(str(n))
            for i, (clip, title) in enumerate(zip(clips, titles), 1):
                write_wav(folder / f"sample-{i:0{width}d}.wav", clip, rate)
                save_picture([clip], folder / f"sample-{i:0{width}d}.png", rate, titles=[title])
            print(f"wrote {n} clips (.wav, and a .png of each) to {folder}")
            return
        write_wav(wav, join_with_pauses(clips, rate, PAUSE), rate)
        save_picture(clips, png, rate, titles=titles)
        print(f"wrote {wav} ({n} clip{'s' if n != 1 else ''}, {PAUSE:g} s apart) and {png}")

    @staticmethod
    def _titles(model, n, label) -> list[str]:
        info = model.info
        if model.condition_kind != "class":
            return [f"sample {i + 1}" for i in range(n)]
        classes = [label] * n if label is not None else [i % info.num_classes for i in range(n)]
        return [f"sample {i + 1}: {info.label} {info.class_names[k]}" for i, k in enumerate(classes)]

    def read_input(self, model, value):
        """A user's WAV file as the model sees data: 1×T μ-law codes, mono, 8 kHz, cut or padded to T."""
        path = Path(value).expanduser()
        if not path.is_file():
            raise UserError(f"sound file {printable(value)} does not exist")
        return self.as_input(model, *read_wav(path))

    @staticmethod
    def as_input(model, x: np.ndarray, rate: int) -> torch.Tensor:
        """A waveform at `rate` as the model sees data (read_input's conversion)."""
        x, _ = fit_length(resample(x, rate, model.info.rate), model.info.length)
        return mulaw_encode(torch.from_numpy(np.ascontiguousarray(x))).unsqueeze(0).to(model.device)

    def complete(self, model, value, cover, n, *, output, seed, label):
        """`genlab complete`: the user's clip, its end covered and drawn n times; one WAV (the clip, then each
        completion, half a second apart) and the picture of them."""
        codes = self.read_input(model, value)
        wav, png = _paths(output or "completion.wav", "-o")        # checked before the clips are drawn
        condition = None if label is None else torch.full((n,), label, dtype=torch.long, device=model.device)
        g = torch.Generator(device=model.device).manual_seed(seed)
        start, clips = self.completions(model, codes, cover, n, g, condition)
        rate = model.info.rate
        write_wav(wav, join_with_pauses(clips, rate, PAUSE), rate)
        save_picture(clips, png, rate, titles=_completion_titles(start, rate, n), mark=start / rate)
        print(f"wrote {wav} (the clip, then {n} completion{'s' if n != 1 else ''}) and {png}")

    @staticmethod
    def completions(model, codes, cover: str, n: int, generator, condition) -> tuple[int, list]:
        """(the samples kept, [the clip, then n completions]): codes (1×T) with the end `cover` names drawn."""
        t = codes.shape[1]
        start = t - cover_samples(cover, t, model.info.rate)
        mask = torch.arange(t, device=model.device) >= start
        drawn = model.complete(codes.expand(n, -1), mask, condition=condition, generator=generator)
        return start, [mulaw_decode(codes[0])] + list(drawn)

    # ---- the explorer's pages ----
    def page_describe(self, model, limits):
        info = model.info
        return {**super().page_describe(model, limits),
                "sound": {"rate": info.rate, "length": info.length, "seconds": info.seconds,
                          "upload_seconds": limits["sound_seconds"]}}

    def page_examples(self, model, ds, domain="a"):
        """The held-out test clips (int16 N×T)."""
        if domain != "a":
            raise UserError(f"{model.name} models one data set: domain {str(domain)[:20]} is a translator's")
        return ds.test_x

    def page_input(self, model, ds, i, domain="a"):
        """Test clip i through the very path an uploaded file takes."""
        return self.as_input(model, to_float(super().page_input(model, ds, i, domain)).numpy(), ds.rate)

    def page_read(self, model, file, limits):
        """An uploaded WAV file, of at most limits["sound_seconds"]."""
        with self.reading_upload():
            x, rate = read_wav(file)
        most = limits["sound_seconds"]
        if len(x) > most * rate:
            raise UserError(f"the upload lasts {len(x) / rate:.1f} s: the explorer takes sound of at most {most:g} s "
                            f"(the model hears the first {model.info.seconds:g} s of it)")
        return self.as_input(model, x, rate)

    def page_complete(self, model, x, cover, n, generator, condition):
        """The clip as the model hears it and n completions, to play, with their picture (the line marks where
        the model starts drawing) and the samples kept."""
        start, clips = self.completions(model, x, cover, n, generator, condition)
        rate = model.info.rate
        return {"original": Media.wav(clips[0], rate), "completions": [Media.wav(c, rate) for c in clips[1:]],
                "picture": Media(picture_png(clips, rate, _completion_titles(start, rate, n), start / rate),
                                 "image/png"),
                "kept": start, "kept_seconds": start / rate, "covered_seconds": (len(clips[0]) - start) / rate}

    # ---- figures ----
    def baseline_nats(self, model, ds, test):
        """Each sample on its own: the training split's histogram of codes, nats per test clip."""
        if model.likelihood_kind == "none":
            return None
        return float(histogram_nll(ds.codes("train"), ds.codes("test")).mean())

    def baseline_name(self, model):
        return "each sample on its own (the histogram of codes)"

    @torch.no_grad()
    def likelihood(self, model, run, ds, *, iwae_k, live):
        """The test split's exact NLL per clip, per second and per sample, each with its standard error over
        the test clips, and the two baselines in the same units."""
        from ..evaluation.likelihood import per_example_terms
        from ..progress import Progress

        test = self.test_batches(ds, run.config["data"], model.device)
        bar = Progress(len(test), f"eval {run.path}", unit="clip", live=live)
        terms = per_example_terms(model, test, iwae_k=0, progress=bar)
        bar.close()
        if "nll" not in terms:
            return {}
        info = model.info
        out = figures("nll", terms["nll"], info)
        train, codes = ds.codes("train"), ds.codes("test")
        out.update(figures("histogram", histogram_nll(train, codes), info))
        out.update(figures("linear_prediction", linear_prediction_nll(train, codes), info))
        out["baseline_nll_nats"] = out["histogram_nats"]       # each dimension on its own, as every modality names it
        n = len(codes)
        out["standard_error"] = (f"…_se: standard error of the mean over the {n} test clips (the figures are exact, "
                                 f"so this is the test split's sampling noise only)")
        out["baselines"] = (f"histogram: each sample on its own, from the training split's histogram of codes; "
                            f"linear_prediction: each sample a Gaussian around a linear prediction from the "
                            f"{LPC_ORDER} before it (fitted to the training split), discretised to the 256 codes")
        return out

    def describe_run(self, model, run, ds) -> dict:
        info = model.info
        return {"clips": f"{info.length} samples at {info.rate} Hz ({info.seconds:g} s), 8-bit μ-law",
                "test_clips": len(ds.test_x), "conditional": model.condition_kind != "none",
                **({"label": info.label} if model.condition_kind != "none" else {})}

    def sample_quality(self, metrics, samples, features, device):
        from ..evaluation.sound_quality import SoundQuality
        return SoundQuality(metrics, samples, features, device)

    def format_table(self, results):
        from ..evaluation.sound_table import format_table
        return format_table(results, self.figure_table(
            results, COLUMNS,
            "exact NLL on the test split, ± its standard error over test clips; baselines fitted to the training "
            "split: hist. = each sample on its own (a histogram of codes), LPC = linear prediction from the "
            f"{LPC_ORDER} samples before (an autoregressive Gaussian, discretised to the codes)."))


COLUMNS = [("run", "run"), ("data", "data"), ("nll_nats_per_second", "nats/s"),
           ("nll_bits_per_sample", "bits/sample"), ("histogram_bits_per_sample", "hist. bits/sample"),
           ("linear_prediction_bits_per_sample", "LPC bits/sample")]



def figures(name: str, nats: torch.Tensor, info: AudioInfo) -> dict:
    """Per-clip NLLs as `name`_nats (per clip), _nats_per_second and _bits_per_sample, with standard errors."""
    from ..evaluation.likelihood import mean_and_se
    out = {}
    for unit, scale in (("nats", 1.0), ("nats_per_second", info.rate / info.length),
                        ("bits_per_sample", 1 / (info.length * math.log(2)))):
        mean, se = mean_and_se(nats.double() * scale)
        out[f"{name}_{unit}"] = mean
        if se is not None:
            out[f"{name}_{unit}_se"] = se
    return out


def cover_samples(spec: str, length: int, rate: int = RATE) -> int:
    """How many samples at the end of a clip of `length` the model draws."""
    spec = spec.strip()
    if spec in ("bottom-half", "right-half", "second-half"):
        return length - length // 2
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(%|s)", spec)
    if m and m.group(2) == "%" and 0 < float(m.group(1)) <= 100:
        return max(1, round(float(m.group(1)) / 100 * length))
    if m and m.group(2) == "s" and 0 < float(m.group(1)):
        return min(length, max(1, round(float(m.group(1)) * rate)))
    raise UserError(f"--cover must be {COVERS}, not {spec!r}")


def _completion_titles(start: int, rate: int, n: int) -> list[str]:
    return [f"the clip (the model is given its first {start / rate:.3g} s)"] + [f"completion {i + 1}" for i in range(n)]


def _paths(output: str, what: str) -> tuple[Path, Path]:
    """The WAV and the picture a sound output names: NAME.wav and NAME.png (either may be given)."""
    p = Path(output)
    if p.suffix.lower() not in (".wav", ".png"):
        raise UserError(f"{what} {printable(output)}: give a .wav file (the picture goes beside it as .png), or a "
                        f"folder ending in / for one file per clip")
    if not p.parent.is_dir():
        raise UserError(f"cannot write {printable(output)}: folder {printable(p.parent)} does not exist")
    return p.with_suffix(".wav"), p.with_suffix(".png")


