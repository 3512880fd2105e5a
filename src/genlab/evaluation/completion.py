"""Completion agreement: how well an autoregressive model fills in the covered part of held-out images.

For each cover (explore/completion.py's: bottom-half, 75%, ...) every image is completed once by the model
(`model.complete`, a fixed seed) and the drawn pixels are compared with the true ones, over the covered
pixels only:

  match        the share of covered pixels drawn exactly right: the same palette colour (palette runs),
               the same 8-bit value in every channel (8-bit runs), the same 0/1 (binary runs)
  abs_error    the mean absolute difference of the covered pixels' channels, in 8-bit levels 0..255
               (palette runs: of their colours; binary runs: on the 0..1 scale, so the share of wrong values)

and the model's log-likelihood of the true covered part given the visible part. A model of raster order
gives log p(x_covered | x_visible) = Σ_{i covered} log p(x_i | x_<i) when the cover is a raster suffix
(every visible pixel comes before every covered one, as bottom-half and N% covers are): one forward pass
on the true image holds every term, and the covered part's nats plus the visible part's are log p(x).
It comes in nats per image and per covered pixel (all of a pixel's channels together) and in bits per
covered pixel, so 8-bit and palette runs compare pixel for pixel."""
from __future__ import annotations

import math

import torch
from torch.nn import functional as F

from ..errors import UserError
from ..explore.completion import cover_mask
from ..models.autoregressive.base import AutoregressiveModel
from ..models.base import GenerativeModel

COVERS = ("bottom-half", "75%")
BATCH = 64


def value_log_probs(model: GenerativeModel, x: torch.Tensor, condition=None) -> torch.Tensor:
    """log p(value | every earlier value) of each discrete value of x, from one forward pass: N×V×H×W nats,
    V the values per pixel (the channels; one palette index). Their sum over an image is log_prob."""
    _check(model)
    pixels = model.pixels
    x = x.to(model.device)
    logits = model.logits(x, condition)
    v = pixels.values(x)
    if pixels.binary:
        return -F.binary_cross_entropy_with_logits(logits, v.to(logits.dtype), reduction="none")
    n, _, h, w = logits.shape
    return logits.view(n, pixels.channels, pixels.k, h, w).log_softmax(2).gather(2, v.unsqueeze(2)).squeeze(2)


def is_raster_suffix(mask: torch.Tensor) -> bool:
    """True when the covered pixels (H×W) are the last ones in raster order: all visible ones come first."""
    flat = mask.reshape(-1).to(torch.long)
    return bool((flat[1:] >= flat[:-1]).all())


@torch.no_grad()
def split_log_prob(model: GenerativeModel, x: torch.Tensor, mask: torch.Tensor,
                   condition=None) -> tuple[torch.Tensor, torch.Tensor]:
    """(covered, visible) per image in nats: the sums of the per-value log-probabilities over the covered
    pixels (mask true, H×W) and over the rest. With a raster-suffix cover they are log p(x_cov | x_vis) and
    log p(x_vis); whatever the mask, they add up to log p(x)."""
    lp = value_log_probs(model, x, condition).double()
    covered = mask.to(lp.device, torch.bool).expand_as(lp)
    return torch.where(covered, lp, 0).flatten(1).sum(1), torch.where(covered, 0, lp).flatten(1).sum(1)


@torch.no_grad()
def completion_agreement(model: GenerativeModel, images: torch.Tensor, covers=COVERS, *, seed: int = 0,
                         condition=None, batch: int = BATCH) -> dict[str, dict]:
    """{cover: figures} for images N×C×H×W as the run's data set gives them (test images): see the module's
    docstring. `condition`: the images' class labels, for a conditional model."""
    _check(model)
    if len(images) == 0:
        raise UserError("completion agreement needs at least one image")
    _, _, h, w = images.shape
    out = {}
    for cover in covers:
        mask = cover_mask(cover, h, w).to(model.device)
        g = torch.Generator(device=model.device).manual_seed(seed)
        hits = errors = pixels_covered = values_covered = 0.0
        covered_nats, visible_nats = [], []
        for s in range(0, len(images), batch):
            x = images[s:s + batch].to(model.device)
            y = None if condition is None else condition[s:s + batch].to(model.device)
            drawn = model.complete(x, mask, condition=y, generator=g)
            truth, guess = model.pixels.values(x), model.pixels.values(drawn)
            right = (truth == guess).all(1)                             # N×H×W: every value of the pixel
            hits += float(right[:, mask].sum())
            pixels_covered += float(mask.sum()) * len(x)
            a, b = _levels(model, truth), _levels(model, guess)       # N×C×H×W on the error's scale
            errors += float((a - b).abs()[:, :, mask].sum())
            values_covered += float(mask.sum()) * len(x) * a.shape[1]
            if is_raster_suffix(mask):
                cov, vis = split_log_prob(model, x, mask, y)
                covered_nats.append(cov)
                visible_nats.append(vis)
        figures = {"images": len(images), "covered_pixels": int(mask.sum()), "match": hits / pixels_covered,
                   "abs_error": errors / values_covered, "seed": seed}
        if covered_nats:
            cov = torch.cat(covered_nats)
            figures["covered_log_likelihood_nats"] = float(cov.mean())
            figures["covered_log_likelihood_nats_se"] = (float(cov.std()) / math.sqrt(len(cov))
                                                         if len(cov) > 1 else None)
            per_pixel = float(cov.mean()) / int(mask.sum())
            figures["covered_nats_per_pixel"] = per_pixel
            figures["covered_bits_per_pixel"] = -per_pixel / math.log(2)
            figures["visible_log_likelihood_nats"] = float(torch.cat(visible_nats).mean())
        out[cover] = figures
    return out


def _levels(model: GenerativeModel, values: torch.Tensor) -> torch.Tensor:
    """Discrete values as the numbers abs_error compares: palette colours and 8-bit values on 0..255,
    binary values on 0..1."""
    pixels = model.pixels
    if pixels.palette is not None:
        return pixels.palette.to(values.device)[values[:, 0]].permute(0, 3, 1, 2).double()
    return values.double()


def _check(model: GenerativeModel) -> None:
    if not isinstance(model, AutoregressiveModel):
        raise UserError(f"{model.name} cannot complete images: completion agreement needs an autoregressive "
                        f"image model (pixelcnn, gated-pixelcnn, pixelrnn-row, pixelrnn-diag, pixel-lstm)")


def format_agreement(rows) -> str:
    """A plain-text table of (run name, completion_agreement's result) pairs, one line per run and cover."""
    head = ["run", "cover", "covered px", "match", "abs err", "log p(cov | vis)", "per px", "NLL bits/px"]
    lines = []
    for name, result in rows:
        for cover, f in result.items():
            ll = f.get("covered_log_likelihood_nats")
            se = f.get("covered_log_likelihood_nats_se")
            lines.append([name, cover, str(f["covered_pixels"]), f"{f['match']:.3f}", f"{f['abs_error']:.2f}",
                          "—" if ll is None else f"{ll:.2f}" + (f"±{se:.2f}" if se is not None else ""),
                          "—" if ll is None else f"{f['covered_nats_per_pixel']:.3f}",
                          "—" if ll is None else f"{f['covered_bits_per_pixel']:.3f}"])
    widths = [max(len(h), *(len(r[i]) for r in lines)) if lines else len(h) for i, h in enumerate(head)]
    fmt = lambda cells: "  ".join(c.ljust(w) if i < 2 else c.rjust(w)  # noqa: E731
                                  for i, (c, w) in enumerate(zip(cells, widths)))
    images = sorted({f["images"] for _, r in rows for f in r.values()})
    return "\n".join([fmt(head), fmt(["-" * w for w in widths])] + [fmt(r) for r in lines] + [
        f"Completion of {'/'.join(map(str, images))} held-out images, one completion each: match, the share of "
        "covered pixels drawn exactly right (palette: the same colour; 8-bit: every channel's value); abs err, "
        "the mean absolute error of their channels in 8-bit levels (binary: share wrong); log p(cov | vis), "
        "the model's log-likelihood of the true covered part given the visible part, nats per image ± its "
        "standard error, and per covered pixel (all its channels); NLL bits/px: −log₂ p per covered pixel, lower is "
        "better."])
