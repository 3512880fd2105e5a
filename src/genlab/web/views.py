"""What the report and the explorer show of a model, and the values they hand the page: images as PNG
data URLs, text as lines, sound as WAV data URLs, clips as an animated GIF and a strip picture.

What a model offers is chosen from its declarations (`conditioning`, `abilities`) and its modality's
(`panels`, `report_views`, `sample_view`, `page_sample`...), never from its name or its kind of data: a new
kind of data brings its pages inside its modality; a new panel is its action here and in actions.py's
ACTIONS, and one builder in static/explorer.html's PANELS.
"""
from __future__ import annotations

import base64
import io
import math
import re
import time

import torch

from .. import modalities
from ..errors import UserError
from ..explore import latent
from ..explore.completion import cover_mask
from ..modalities.media import Media, png_bytes
from ..settings import describe_fields

# (panel, when a model has it): the panels every model may have, before its modality's (`panels`).
PANELS = [
    ("class", lambda m: m.condition_kind == "class"),                        # a class picker for the others
    ("sample", lambda m: m.condition_kind != "image"),     # a translator draws nothing without an image to translate
]

# Bounds of every request: the page shows them, the server refuses anything past them.
LIMITS = {"samples": 64, "clips": 8, "steps": 16, "trajectories": 8, "trajectory_frames": 12, "code_span": 4.0, "seed": 2**31 - 1,
          "line_chars": 300, "upload_bytes": 2 * 1024 * 1024, "frames": 32, "clip_frames": 24,
          "sound_seconds": 10,                      # an uploaded sound's length (the model hears its own clip's)
          # sampling settings past what a page request should wait for (a model's own bounds apply below them)
          "setting_caps": {"frames": 24}}
DOMAINS = ("a", "b")                                # a translator's two domains of images
BACK = {"a2b": "b2a", "b2a": "a2b"}                 # each direction of translation, and the way back


def panels(model) -> list[str]:
    return [name for name, has in PANELS if has(model)] + modalities.get(model.modality).panels_for(model)


def code_size(model) -> int | None:
    """The size of the code a model decodes (None: it decodes none)."""
    return latent.latent_dim(model) if "decode" in model.abilities else None


def setting_fields(model) -> list[dict]:
    """The sampling settings the sample panel offers, a control each (name, type, help, default, bounds): those
    of the modality's it names in `page_settings`, and every one the model declares."""
    modality = modalities.get(model.modality)
    mine, theirs = modality.setting_classes(type(model))
    return [f for f in describe_fields(mine) if f["name"] in modality.page_settings] + describe_fields(theirs)


def class_names(model) -> list[str]:
    k = model.num_conditions
    names = list(model.info.class_names)
    return names if len(names) == k else [str(i) for i in range(k)]


def describe(model) -> dict:
    """The model as the page needs it: its declarations, what it offers, its code and classes (and a video
    model's clips: their frames and the frames given as context)."""
    modality = modalities.get(model.modality)
    kind, blurb = modality.sample_view
    return {"model": model.name, "family": model.family, "modality": model.modality,
            "conditioning": model.condition_kind, "likelihood": model.likelihood_kind,
            "abilities": list(model.abilities), "panels": panels(model), "code_size": code_size(model),
            "classes": class_names(model),
            "settings": setting_fields(model), "sample_view": {"kind": kind, "blurb": blurb, "count": modality.page_count,
                                                               "max": LIMITS[modality.page_limit]},
            **modality.page_describe(model, LIMITS)}


# ---- images and uploads ----

png = png_bytes           # images as one PNG grid at their own size (the page enlarges them)


def data_url(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def image_url(images: torch.Tensor, nrow: int | None = None) -> str:
    return data_url(png(images, nrow))


def to_page(value):
    """A modality's page payload as JSON: every `Media` a data URL."""
    if isinstance(value, Media):
        return data_url(value.data, value.mime)
    if isinstance(value, dict):
        return {k: to_page(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_page(v) for v in value]
    return value


_DATA_URL = re.compile(r"data:[\w.+-]+/[\w.+-]+(?:;[\w=.+-]+)*;base64,", re.ASCII)


def decode_upload(text: str) -> bytes:
    """A file the page sent: a data URL (or plain base64), at most LIMITS["upload_bytes"] once decoded."""
    if not isinstance(text, str):
        raise UserError("an upload is a data URL (data:image/png;base64,...)")
    m = _DATA_URL.match(text)
    body = text[m.end():] if m else text
    if len(body) > LIMITS["upload_bytes"] * 4 // 3 + 4:
        raise UserError(f"the upload is larger than {LIMITS['upload_bytes'] // 1024 // 1024} MiB")
    try:
        return base64.b64decode(body, validate=True)
    except ValueError:
        raise UserError("the upload is not a data URL or base64 text") from None


def read_upload(model, data: bytes) -> torch.Tensor:
    """An uploaded file as the model's input, read by the model's modality as it reads a file given on the
    command line, within LIMITS; anything it cannot read is one line."""
    return modalities.get(model.modality).page_read(model, io.BytesIO(data), LIMITS)


def test_examples(model, ds, domain: str = "a"):
    """The test split of a run's data as its modality offers it to a page (images, lines)."""
    return modalities.get(model.modality).page_examples(model, ds, domain)


def test_input(model, ds, i: int, domain: str = "a"):
    """Test example i as the model's input (an image through the very path an upload takes)."""
    return modalities.get(model.modality).page_input(model, ds, i, domain)


# ---- what the panels do ----

def _generator(model, seed: int) -> torch.Generator:
    return torch.Generator(device=model.device).manual_seed(seed)


def labels(model, label: int | None, n: int) -> torch.Tensor | None:
    """The class of n examples: the one asked for, or class 0 for a class-conditional model given none."""
    if model.condition_kind != "class":
        if label is not None:
            raise UserError(f"{model.name} is not conditional: it takes no class")
        return None
    return model.class_condition(0 if label is None else label, n)


@torch.no_grad()
def sample(model, n: int, seed: int, label: int | None = None, settings: dict | None = None) -> dict:
    """n samples as the model's modality shows them ({"image"}, {"lines"}, {"audio": [...]}, {"gif", "image"}),
    media as data URLs. `settings`: the declared sampling settings the page sent (setting_fields), checked
    by the modality."""
    condition = labels(model, label, n)          # a class given to a model of none is refused all the same
    return to_page(modalities.get(model.modality).page_sample(model, n, _generator(model, seed), condition,
                                                               dict(settings or {})))


@torch.no_grad()
def trajectory(model, n: int, frames: int, seed: int, steps: int | None = None) -> str:
    """n samples on their way from noise: one row each, `frames` states left to right, the sample last."""
    states = model.trajectory(n, frames, generator=_generator(model, seed), steps=steps)
    return image_url(states.transpose(0, 1).flatten(0, 1), nrow=len(states))


def clip_urls(pictures: tuple[bytes, bytes], frames: int) -> dict:
    gif, strip = pictures
    return {"gif": data_url(gif, "image/gif"), "image": data_url(strip), "frames": frames}


@torch.no_grad()
def translation(model, x: torch.Tensor, direction: str) -> dict:
    """An image (1×C×H×W, as the model sees data), its translation in `direction` and its reconstruction:
    the translation translated back (a perfect cycle gives the image again)."""
    if direction not in BACK:
        raise UserError(f"direction must be a2b or b2a, not {str(direction)[:20]!r}")
    there = model.translate(x, direction)
    back = model.translate(there, BACK[direction])
    return {"input": image_url(x), "translation": image_url(there), "reconstruction": image_url(back),
            "direction": direction}


@torch.no_grad()
def completion(model, x, cover: str, n: int, seed: int, label: int | None = None) -> dict:
    """x (the model's input: a test example or an upload) with its `cover` part (as `genlab complete --cover`
    reads it) drawn n times, as the model's modality shows it (sound: the clip and each completion to play)."""
    return to_page(modalities.get(model.modality).page_complete(model, x, cover, n, _generator(model, seed),
                                                                labels(model, label, n)))


def clip_count(model, ds) -> int:
    """The held-out clips of a video run's data."""
    return ds.count("test")


@torch.no_grad()
def continuation(model, ds, clip: int, context: int | None, frames: int | None, seed: int) -> dict:
    """Held-out clip `clip` of a video run: its first `context` frames, then `frames` drawn by the model, the
    true future beside them, as the modality's `genlab sample` shows it: {"gif", "image" (the strip), ...}."""
    video = modalities.get(model.modality)
    k, f = video.continuation_frames(model, context, frames)
    ds = video.held_out(model, k, ds)
    count = clip_count(model, ds)
    if not 0 <= clip < count:
        raise UserError(f"test clip must be between 0 and {count - 1}, not {clip}")
    items = video.continuation(model, ds, [clip], k, f, _generator(model, seed))
    return {**clip_urls(video.pictures(items), k + f), "context": k, "count": count}


def code_tensor(model, z) -> torch.Tensor:
    """A code the page sent: code_size numbers within ±code_span."""
    size, span = code_size(model), LIMITS["code_span"]
    if size is None:
        raise UserError(f"{model.name} decodes no code")
    if not isinstance(z, list) or len(z) != size:
        raise UserError(f"a code of {model.name} is a list of {size} numbers")
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and abs(v) <= span
               for v in z):
        raise UserError(f"each number of a code must be between {-span:g} and {span:g}")
    return torch.tensor([float(v) for v in z], device=model.device).unsqueeze(0)


@torch.no_grad()
def decode(model, z: torch.Tensor, label: int | None = None) -> str:
    return image_url(model.decode(z, labels(model, label, len(z))))


@torch.no_grad()
def encode(model, x: torch.Tensor, label: int | None = None) -> list[float]:
    """The code of one image, clamped to the sliders' span."""
    span = LIMITS["code_span"]
    return [round(float(v), 4) for v in latent.code_of(model, x, labels(model, label, 1))[0].clamp(-span, span)]


@torch.no_grad()
def between_codes(model, za: torch.Tensor, zb: torch.Tensor, steps: int, label: int | None = None,
                  method: str = "linear") -> str:
    """`steps` images on the way from code za to code zb, in one row."""
    t = torch.linspace(0, 1, steps, device=model.device).unsqueeze(1)
    z = za + t * (zb - za) if method == "linear" else latent.slerp(za, zb, t)
    return image_url(model.decode(z, labels(model, label, steps)), nrow=steps)


def between_lines(model, a: str, b: str, steps: int) -> list[str]:
    """The lines decoded on the way from the code of line a to that of line b (text models with a code)."""
    return modalities.get(model.modality).between(model, a, b, steps)


def mask_tensor(model, mask) -> torch.Tensor:
    """The painted cover: a string of 0/1, one a pixel in raster order, or a named cover (bottom-half...)."""
    _, h, w = model.info.shape
    if isinstance(mask, str) and not set(mask) <= {"0", "1"}:
        return cover_mask(mask, h, w)
    if not isinstance(mask, str) or len(mask) != h * w:
        raise UserError(f"the cover is {h * w} characters of 0 and 1, one a pixel in raster order")
    out = torch.tensor([c == "1" for c in mask], dtype=torch.bool).view(h, w)
    if not out.any():
        raise UserError("paint some of the image to cover: the model draws what is covered")
    return out


@torch.no_grad()
def completion_frames(model, x: torch.Tensor, mask: torch.Tensor, seed: int, label: int | None = None,
                      frames: int | None = None, budget_s: float = 20.0):
    """The completion of x (1×C×H×W) where `mask` (H×W) is true, as it appears: yields (done, total, image)
    with the first `done` covered pixels in raster order drawn and the rest grey.

    Each frame is `model.complete` with the cover cut at that pixel and the generator seeded alike: a
    model of raster order never looks past the pixel it draws and takes one random number per pixel, so
    every frame agrees with the last one, which is exactly `model.complete(x, mask)` for this seed. Frames
    are at most LIMITS["frames"], fewer when each takes long (the whole stays near `budget_s`)."""
    order = mask.flatten().nonzero().squeeze(1)
    total = len(order)
    planned = max(1, min(total, frames or LIMITS["frames"]))
    condition = labels(model, label, 1)
    mask = mask.to(x.device)
    done, made, started = 0, 0, time.perf_counter()
    while done < total:
        left = planned - made
        if made:                         # the frames left share what remains of the budget
            spent = time.perf_counter() - started
            left = max(1, min(left, int((budget_s - spent) / (spent / made))))
        done += -(-(total - done) // left)
        made += 1
        part = torch.zeros(mask.numel(), dtype=torch.bool, device=x.device)
        part[order[:done].to(x.device)] = True
        part = part.view(mask.shape)
        drawn = model.complete(x, part, condition=condition, generator=_generator(model, seed))
        yield done, total, torch.where(mask & ~part, torch.full_like(x, 0.5), drawn.to(x.dtype))
