"""What the report draws now from a run's weights: the views its modality names in `report_views` (latent
grids, interpolations, classes, completions, translations there and back, continued clips), and the HTML
pieces of pictures every section uses."""
from __future__ import annotations

import base64
import html
import io
import math


import torch
from PIL import Image

from .. import api, modalities
from ..errors import UserError
from ..explore import latent
from ..explore.completion import completions
from . import views

esc = html.escape
IMAGE_TYPES = {".png": "image/png", ".gif": "image/gif", ".jpg": "image/jpeg"}


def img(data: bytes, alt: str, width: int | None = None, mime: str = "image/png") -> str:
    style = f' style="width:{width}px"' if width else ""
    return f'<img alt="{esc(alt)}" src="data:{mime};base64,{base64.b64encode(data).decode()}"{style}>'


def grid_img(images: torch.Tensor, alt: str, nrow: int | None = None, cell: int = 48) -> str:
    """Images at `cell` pixels each, drawn sharp (the page enlarges the PNG without smoothing)."""
    n = len(images)
    nrow = nrow or max(1, int(math.ceil(math.sqrt(n))))
    w = images.shape[-1]
    return img(views.png(images, nrow=nrow), alt, width=min(960, nrow * (cell + max(1, cell // w))))


def figure(inner: str, caption: str) -> str:
    return f"<figure>{inner}<figcaption>{caption}</figcaption></figure>"


def _examples(model, ds, count: int):
    return [views.test_input(model, ds, i) for i in range(min(count, len(views.test_examples(model, ds))))]


def view_latent_grid(model, ds) -> str:
    d = views.code_size(model)
    if not d or d < 2:
        return ""
    images = latent.grid(model, (0, 1), 9, 3.0, 0 if model.condition_kind == "class" else None)
    who = " (class 0)" if model.condition_kind == "class" else ""
    return figure(grid_img(images, "latent grid", nrow=9, cell=40),
                   f"latent grid{who}: code dimensions 0 (down) and 1 (across) from −3 to 3, the other "
                   f"{d - 2} at 0")


def view_interpolation(model, ds) -> str:
    steps = 8
    label = 0 if model.condition_kind == "class" else None
    if "encode" in model.abilities and ds is not None:
        a, b = _examples(model, ds, 2)
        row = latent.interpolate(model, a, b, steps, "linear", label)
        return figure(grid_img(torch.cat([a, row, b]), "interpolation", nrow=steps + 2),
                       "interpolation: test images 0 and 1 (ends) and the decoded codes on the straight line "
                       "between their codes")
    g = torch.Generator(device=model.device).manual_seed(0)
    d = views.code_size(model)
    za, zb = torch.randn(2, d, generator=g, device=model.device)
    t = torch.linspace(0, 1, steps, device=model.device).unsqueeze(1)
    images = model.decode(latent.slerp(za, zb, t), views.labels(model, label, steps))
    return figure(grid_img(images, "interpolation", nrow=steps),
                   "interpolation between two codes drawn from N(0, I) (spherical, seed 0)")


def view_by_class(model, ds) -> str:
    k = model.num_conditions
    per = 8
    g = torch.Generator(device=model.device).manual_seed(0)
    y = torch.arange(k, device=model.device).repeat_interleave(per)
    images = modalities.get(model.modality).draw(model, len(y), g, y)
    names = ", ".join(views.class_names(model))
    return figure(grid_img(images, "samples by class", nrow=per, cell=32),
                   f"one row per class ({esc(names)})")


def view_lines_between(model, ds) -> str:
    if ds is None or len(ds.test) < 2:
        return ""
    lines = views.between_lines(model, ds.test[0], ds.test[1], 8)
    items = "".join(f"<li>{esc(line)}</li>" for line in lines)
    return (f'<figure><ol class="lines"><li class="end">{esc(ds.test[0])}</li>{items}'
            f'<li class="end">{esc(ds.test[1])}</li></ol><figcaption>decoded lines (greedy) on the way from the '
            f'code of test line 0 to that of test line 1 (ends: the lines themselves)</figcaption></figure>')


def view_completions(model, ds) -> str:
    if ds is None:
        return ""
    rows = [completions(model, x, "bottom-half", 6, seed=0, label=0 if model.num_conditions else None)
            for x in _examples(model, ds, 3)]
    return figure(grid_img(torch.cat(rows), "completions", nrow=8, cell=40),
                   "completions of test images: the original, the covered input (bottom half grey), six "
                   "completions drawn pixel by pixel")


def view_translations(model, ds) -> str:
    if ds is None:
        return ""
    images, k = modalities.get(model.modality).translations(model, ds, 6 * 8)
    return figure(grid_img(images, "translations", nrow=k, cell=40),
                   f"held-out test images: {k} of domain A (top row), their translations into B and those "
                   f"translated back to A (the reconstruction: a perfect cycle gives the top row again); then {k} "
                   f"of B, into A and back")


def view_continuations(model, ds) -> str:
    if ds is None:
        return ""
    video = modalities.get(model.modality)
    k, f = video.continuation_frames(model, None, None)
    f = min(f, video.shown_frames)           # each frame is drawn pixel by pixel: a few keep the report quick
    ds = video.held_out(model, k, ds)
    n = min(4, ds.count("test"))
    gif, strip = video.pictures(video.continuation(model, ds, range(n), k, f,
                                                   torch.Generator(device=model.device).manual_seed(0)))
    which = f"the first {n} held-out test clips" if n > 1 else "the held-out test clip"
    pictures = (clip_img(gif, "continued clips", "image/gif") + " "
                + clip_img(strip, "continued clips, frame by frame"))
    return figure(pictures, f"{which}: {k} frames given (blue borders), {f} drawn by the model (red; seed 0), each "
                             f"beside the clip as it was (green: the truth)")


def clip_img(data: bytes, alt: str, mime: str = "image/png") -> str:
    """A clip's picture enlarged to a readable width (its pixels drawn sharp)."""
    width = Image.open(io.BytesIO(data)).size[0]
    return img(data, alt, width=width * max(1, min(4, 640 // width)), mime=mime)


def view_trajectory(model, ds) -> str:
    states = model.trajectory(4, 8, generator=torch.Generator(device=model.device).manual_seed(0))
    return figure(grid_img(states.transpose(0, 1).flatten(0, 1), "denoising", nrow=len(states), cell=40),
                  "four samples on their way from noise to image (seed 0): each row one sample, left to right "
                  "its states along the sampling steps, the sample last")


# How each view a modality names in its `report_views` is drawn from (model, its data).
VIEWS = {"latent_grid": view_latent_grid, "interpolation": view_interpolation, "by_class": view_by_class,
         "lines_between": view_lines_between, "completions": view_completions, "translations": view_translations,
         "continuations": view_continuations, "trajectory": view_trajectory}


def model_views(page, device) -> str:
    """The pictures drawn now from the run's weights, as its declarations allow."""
    try:
        model = api.load(page.run.path, device=device)
    except UserError as e:
        return f'<p class="none">{esc(str(e))}</p>'
    wanted = [(title, VIEWS[view]) for title, view in page.modality.report_views_for(model)]
    if not wanted:
        return ""
    try:
        ds = page.modality.reload(page.run, warn=False)
    except UserError as e:
        ds = None
        note = f'<p class="none">its data cannot be read ({esc(str(e))}): views of test examples left out</p>'
    else:
        note = ""
    torch.manual_seed(0)
    out = [note]
    with torch.no_grad():
        for title, draw in wanted:
            try:
                body = draw(model, ds)
            except UserError as e:
                body = f'<p class="none">{esc(str(e))}</p>'
            if body:
                out.append(f"<h4>{esc(title)}</h4>{body}")
    return "".join(out)
