"""Two ways to make the same training step faster, each a trainer option any model can take:

  --precision bf16   the step's matrix products and convolutions in bfloat16 (torch.autocast), on GPUs and
                     on CPUs with AVX-512 BF16 or AMX; the weights, the optimiser and every test figure stay
                     float32, so what is evaluated is exact. bfloat16 has float32's range: no loss scaling.
  --compile          torch.compile where a step spends its time: the model's own forward when its class
                     defines one (the autoregressive models), else each network it calls (a GAN's generator
                     and discriminator, a VAE's encoder and decoder). The first steps wait for the
                     compiler (tens of seconds on a CPU); the weights keep their names, so checkpoints are
                     the same files.

benchmarks/speed.py and benchmarks/anchors.py measure both.
"""
from __future__ import annotations

import contextlib

import torch
from torch import nn

PRECISIONS = ("fp32", "bf16")


def autocast(device: torch.device, precision: str):
    """The block a training step runs in: bfloat16 autocast for "bf16", nothing for "fp32"."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)


def compile_networks(model: nn.Module) -> list[str]:
    """Compile `model` in place, as the module docstring says; the names of what was compiled."""
    if "forward" in vars(model):                    # compiled already (a resume in the same process)
        return ["forward"]
    if type(model).forward is not nn.Module.forward:
        model.forward = torch.compile(model.forward)
        return ["forward"]
    names = []
    for name, child in model.named_children():
        # containers are never called; a network without weights has nothing worth compiling
        if not isinstance(child, (nn.ModuleList, nn.ModuleDict)) and any(True for _ in child.parameters()):
            child.compile()
            names.append(name)
    return names
