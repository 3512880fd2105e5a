"""A model's weights in a safetensors file, read and written with every check in one place: loading a
safetensors file never runs code, and a truncated, foreign, mis-shaped or non-finite file is one line."""
from __future__ import annotations

from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from ..atomic import write_atomic
from ..errors import UserError
from ..printable import printable


def non_finite(state: dict[str, torch.Tensor]) -> str | None:
    """The first floating tensor holding NaN or inf, by name."""
    return next((k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())), None)


def write_weights(model, path: Path, meta: dict) -> None:
    """The model's weights, renamed into place; refused when any is not finite."""
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    bad = non_finite(state)
    if bad is not None:
        raise UserError(f"not saving {printable(path)}: weight {bad} holds NaN or infinite values")
    meta = {"model": model.name, **{k: str(v) for k, v in meta.items()}}
    write_atomic(Path(path), lambda p: save_file(state, str(p), metadata=meta))


def read_weights(model, path: Path, described_by: str = "config.json") -> dict:
    """Load the weights at `path` into `model`; returns the file's metadata."""
    f = Path(path)
    if not f.is_file():
        raise UserError(f"{printable(f)} does not exist: the model has no saved weights")
    try:
        state = load_file(str(f), device=str(model.device))
        with safe_open(str(f), "pt") as sf:
            meta = sf.metadata() or {}
    except (SafetensorError, OSError, ValueError) as e:
        raise UserError(f"{printable(f)} is truncated or not a safetensors file ({e})") from None
    if meta.get("model") not in (None, model.name):
        raise UserError(f"{printable(f)} holds a {meta.get('model')!r} model, not {model.name!r}")
    bad = non_finite(state)
    if bad is not None:
        raise UserError(f"{printable(f)} holds NaN or infinite weights ({printable(bad)}): it is damaged; "
                        "train it again or restore a good copy")
    # A float weight may be stored narrower (the zoo's float16 or bfloat16), never as another kind of number.
    own = model.state_dict()
    wrong = next((k for k, v in state.items() if k in own and v.is_floating_point() != own[k].is_floating_point()
                  or (k in own and not v.is_floating_point() and v.dtype != own[k].dtype)), None)
    if wrong is not None:
        raise UserError(f"{printable(f)} holds {printable(wrong)} as {str(state[wrong].dtype).removeprefix('torch.')}, "
                        f"not {str(own[wrong].dtype).removeprefix('torch.')}: it does not fit the model in {described_by}")
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        lines = [line.strip() for line in str(e).splitlines() if line.strip()]
        first = lines[1] if len(lines) > 1 else lines[0]    # lines[0] is "Error(s) in loading state_dict for X:"
        first = first if len(first) <= 200 else first[:197] + "..."
        raise UserError(f"{printable(f)} does not fit the model in {described_by}: {first}") from None
    return meta
