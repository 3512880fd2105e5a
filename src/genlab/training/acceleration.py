"""Two ways to make the same training step faster, each a trainer option any model can take:

  --precision bf16   the step's matrix products and convolutions in bfloat16 (torch.autocast), on GPUs and
                     on CPUs with AVX-512 BF16 or AMX; the weights, the optimiser and every test figure stay
                     float32, so what is evaluated is exact. bfloat16 has float32's range: no loss scaling.
                     --precision auto (the default) takes it where the device computes bfloat16 natively and
                     float32 elsewhere: emulated bfloat16 (a CPU with AVX2 only) made steps 5 to 20 times
                     slower, measured on an AMD EPYC. config.json records the precision chosen.
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

PRECISIONS = ("auto", "fp32", "bf16")


def native_bf16(device: torch.device) -> tuple[bool, str]:
    """Whether `device` computes bfloat16 natively, and what it is (for the line training starts with)."""
    if device.type == "cuda":
        ok = torch.cuda.is_bf16_supported()
        return ok, f"{torch.cuda.get_device_name(device)} {'has' if ok else 'lacks'} bfloat16"
    cap = torch.backends.cpu.get_cpu_capability()
    amx = getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)()
    avx512_bf16 = getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)()
    if amx or avx512_bf16:
        return True, f"this CPU has {'AMX' if amx else 'AVX-512 BF16'}"
    return False, f"this CPU ({cap}) has no native bfloat16"


def choose_precision(device: torch.device, asked: str) -> tuple[str, str]:
    """The precision a run trains in, and why: `auto` is bf16 where bfloat16 is native, fp32 elsewhere; a
    bf16 asked for on a device that only emulates it is kept, with a warning of what it costs."""
    native, what = native_bf16(device)
    if asked == "auto":
        return ("bf16", f"auto: {what}") if native else ("fp32", f"auto: {what}")
    if asked == "bf16" and not native:
        import sys
        print(f"genlab: warning: --precision bf16: {what}, so bfloat16 is emulated: steps measured 5 to 20 times "
              f"slower than fp32 on such a CPU; --precision auto picks fp32 there", file=sys.stderr)
    return asked, "asked for"


def autocast(device: torch.device, precision: str):
    """The block a training step runs in: bfloat16 autocast for "bf16", nothing otherwise ("fp32"; "auto" is
    resolved when a run starts, choose_precision)."""
    if precision != "bf16":
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


def describe_machine(device: str | torch.device = "cpu") -> str:
    """The machine a figure was measured on, to print beside it: the GPU's name on CUDA; else the CPU's name,
    its vector capability and whether bfloat16 is native there."""
    device = torch.device(device)
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (CUDA)"
    import platform
    from pathlib import Path
    name = platform.processor() or "a CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        name = next((line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                     if line.startswith("model name")), name)
    native, _ = native_bf16(device)
    return f"{name} ({torch.backends.cpu.get_cpu_capability()}; bfloat16 {'native' if native else 'emulated'})"
