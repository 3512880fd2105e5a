"""Looking inside a latent-variable model: sweep two code dimensions, walk between two images, and draw
one example's style as every class. Works for any model with `encode`/`decode` (AE, VAE, CVAE, ...)."""
from __future__ import annotations

import torch

from ..errors import UserError
from ..models.base import GenerativeModel


def require(model: GenerativeModel, *capabilities: str) -> None:
    missing = [c for c in capabilities if c not in model.abilities]
    if missing:
        raise UserError(f"{model.name} has no {' or '.join(missing)}: this view needs a model with a code "
                        f"(ae, vae, cvae, ...)")


def code_of(model: GenerativeModel, x: torch.Tensor, condition: torch.Tensor | None = None) -> torch.Tensor:
    """The code of each image: the posterior mean for a VAE, the code itself for an autoencoder."""
    out = model.encode(x, condition)
    return out[0] if isinstance(out, tuple) else out


def latent_dim(model: GenerativeModel) -> int:
    return model.latent_dim


@torch.no_grad()
def grid(model: GenerativeModel, dims: tuple[int, int] = (0, 1), steps: int = 15, span: float = 3.0,
         condition: int | None = None, base: torch.Tensor | None = None) -> torch.Tensor:
    """steps×steps images: every code dimension fixed (at `base`, or the prior mean 0) but `dims`, which
    sweep [-span, span] along rows and columns — what each dimension controls."""
    require(model, "decode")
    d = latent_dim(model)
    if len(dims) != 2 or len(set(dims)) != 2 or not all(0 <= i < d for i in dims):
        raise UserError(f"--dims needs two different dimensions between 0 and {d - 1}, "
                        f"not {' '.join(map(str, dims))}")
    if steps < 2:
        raise UserError("--steps must be at least 2")
    values = torch.linspace(-span, span, steps, device=model.device)
    z = (base.clone() if base is not None else torch.zeros(d, device=model.device)).repeat(steps * steps, 1)
    z[:, dims[0]] = values.repeat_interleave(steps)       # rows
    z[:, dims[1]] = values.repeat(steps)                  # columns
    return model.decode(z, _labels(model, condition, len(z)))


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation: keeps the norm typical of N(0, I) codes all along the way."""
    an, bn = a / a.norm(dim=-1, keepdim=True), b / b.norm(dim=-1, keepdim=True)
    omega = torch.acos((an * bn).sum(-1, keepdim=True).clamp(-1 + 1e-7, 1 - 1e-7))
    so = torch.sin(omega)
    return (torch.sin((1 - t) * omega) / so) * a + (torch.sin(t * omega) / so) * b


@torch.no_grad()
def interpolate(model: GenerativeModel, xa: torch.Tensor, xb: torch.Tensor, steps: int = 10,
                method: str = "linear", condition: int | None = None) -> torch.Tensor:
    """`steps` decoded images on the way from the code of xa to the code of xb (each 1×C×H×W)."""
    require(model, "encode", "decode")
    if steps < 2:
        raise UserError("--steps must be at least 2")
    ya = _labels(model, condition, 1)
    za, zb = code_of(model, xa, ya), code_of(model, xb, ya)
    t = torch.linspace(0, 1, steps, device=za.device).unsqueeze(1)
    z = za + t * (zb - za) if method == "linear" else slerp(za, zb, t)
    return model.decode(z, _labels(model, condition, steps))


@torch.no_grad()
def classify(model: GenerativeModel, x: torch.Tensor) -> torch.Tensor:
    """The most likely class of each image under a conditional model: argmax over y of log p(x | y)."""
    k = model.info.num_classes

    def score(c: int) -> torch.Tensor:
        y = torch.full((len(x),), c, device=x.device)
        return -model.iwae_nll(x, y, k=20) if model.has_iwae else model.log_prob(x, y)

    scores = torch.stack([score(c) for c in range(k)], 1)
    return scores.argmax(1)


@torch.no_grad()
def style(model: GenerativeModel, x: torch.Tensor, label: int | None = None) -> torch.Tensor:
    """One example's style drawn as every class. Without a label, the model's own best guess of it."""
    if "style" not in model.abilities:
        raise UserError(f"{model.name} is not conditional: the style view needs a model trained with classes "
                        f"(cvae)")
    if label is None:
        y = classify(model, x)
    else:
        y = _labels(model, label, len(x))
    return model.style(x, y)


def _labels(model: GenerativeModel, label: int | None, n: int) -> torch.Tensor | None:
    """The class of n images (class 0 when a conditional model is given none)."""
    return model.class_condition(0 if label is None and model.num_conditions else label, n)
