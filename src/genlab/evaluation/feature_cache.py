"""What the two feature networks (the classifier, the self-supervised encoder) share: their training loop,
and their cache of tensors and JSON in the user's cache folder, keyed by the images themselves."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Callable, Iterator

import torch
from torch import nn


def cache_folder() -> Path:
    from ..data.sources.mnist import cache_dir
    return cache_dir() / "features"


def fit(net: nn.Module, batches: Iterator[tuple[torch.Tensor, int]], steps: int, *, weight_decay: float = 0.0,
        progress=None) -> None:
    """`steps` Adam steps on the losses `batches` yields (a loss and its batch's size), the learning rate
    on a one-cycle schedule peaking at 3e-3; `net` is left in eval mode."""
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps)
    net.train()
    for _, (loss, items) in zip(range(steps), batches):
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if progress is not None:
            progress.update(1, items=items, loss=float(loss.detach()))
    net.eval()
    if progress is not None:
        progress.close()


def load_or_train(stem: str, make: Callable[[], nn.Module], train: Callable[[], tuple[nn.Module, dict]],
                  device) -> tuple[nn.Module, dict]:
    """The network cached under `stem`, else `train()`'s, cached first. Loading reads safetensors (tensors
    only) and JSON: no code from the cache is ever run; a damaged entry (unreadable, the wrong shapes, weights
    that are not finite) is retrained, not trusted."""
    from safetensors.torch import load_file, save_file

    folder = cache_folder()
    weights, meta_path = folder / f"{stem}.safetensors", folder / f"{stem}.json"
    if weights.is_file() and meta_path.is_file():
        try:
            net = make()
            net.load_state_dict(load_file(str(weights)))
            if all(torch.isfinite(t).all() for t in net.state_dict().values()):     # NaN weights: damaged
                return net.to(device).eval(), json.loads(meta_path.read_text())
        except Exception:
            pass
    from ..data.sources.mnist import writable_cache
    writable_cache(folder)                # before a minute of training, not after
    # Trained with gradients whatever the caller's mode (an evaluation under torch.no_grad, say).
    with torch.inference_mode(False), torch.enable_grad():
        net, meta = train()
    # Written under temporary names and renamed: a concurrent evaluation never reads half a file.
    tmp_w, tmp_m = (p.with_name(f".{p.name}.{os.getpid()}.tmp") for p in (weights, meta_path))
    save_file({k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}, str(tmp_w))
    tmp_m.write_text(json.dumps(meta, indent=2))
    os.replace(tmp_w, weights)
    os.replace(tmp_m, meta_path)
    return net, meta
