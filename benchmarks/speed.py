"""Benchmark: where the time goes, at a glance. For every registered image model at its defaults, on one
machine in one run:
  train img/s      images per second through the model's own `train_step` on real batches of the data at
                   its default batch size (or --batch-size), with the trainer's optimisers; warm-up steps,
                   then --steps timed steps, the median of --passes passes. A model that trains by EM
                   (`trains_by_epoch`) is timed one EM iteration over the whole split per pass.
  train GFLOP/s    the FLOPs of a training step (forward and backward), counted by FlopCounterMode's formulas
                   over the warm-up steps, times the step rate
  % peak           that rate over the machine's matmul peak, measured here (a large matmul, same threads)
  sample img/s     `sample(n)` at the model's default sample settings, median of --passes; n is --sample-n,
                   or fewer where a draw is slow (about --sample-seconds a pass: autoregressive models)
FLOPs are those of matrix products and convolutions (the work the peak measures), not of elementwise ops.
Translators (conditioned on a second domain of images) train on DATA+--data-b; models of other kinds of
data (text, audio, video) are left out, and said so.

    python benchmarks/speed.py --data mnist fashion-mnist --json speed.json
    python benchmarks/speed.py --precision bf16 --compile       # as `genlab train --precision bf16 --compile`
    python benchmarks/speed.py --device cuda --precision bf16 --threads 16
"""
from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
import time
from pathlib import Path

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

import genlab
from genlab import modalities
from genlab.errors import UserError
from genlab.models.base import make_config
from genlab.models.registry import get_model_class, model_names
from genlab.training.acceleration import PRECISIONS, autocast, compile_networks, describe_machine
from genlab.training.optim import ManagedOptimizer
from genlab.training.trainer import resolve_device


class Parser(argparse.ArgumentParser):
    def error(self, message):           # a bad option is one line and status 2, as everywhere in genlab
        raise UserError(message)


def rnn_flops(x, weights, times: int = 1) -> int:
    """An LSTM's (GRU's) matrix products over all steps: each input row meets every 2-D weight once; its
    backward pass about twice that."""
    return 2 * times * x.numel() // x.shape[-1] * sum(w.numel() for w in weights if w.dim() == 2)


aten = torch.ops.aten
# The products FlopCounterMode's table leaves out but genlab's models do: matrix-vector products, and the
# fused recurrent layers of nn.LSTM on CPUs (oneDNN) and GPUs (cuDNN).
MORE_FLOPS = {aten.mv: lambda a, v: 2 * a.numel(), aten.addmv: lambda b, a, v: 2 * a.numel(),
              aten.mkldnn_rnn_layer: lambda x, *w: rnn_flops(x, w[:2]),       # w_ih, w_hh, then the rest
              aten.mkldnn_rnn_layer_backward: lambda x, *w: rnn_flops(x, w[:2], 2),
              aten._cudnn_rnn: lambda x, w, *_: rnn_flops(x, w),             # all layers' weights in one list
              aten._cudnn_rnn_backward: lambda x, w, *_: rnn_flops(x, w, 2)}


class Flops(TorchDispatchMode):
    """FLOPs of matrix products and convolutions, by FlopCounterMode's own formulas (and MORE_FLOPS),
    without its per-module tracking: that tracking's backward hooks break `autograd.grad` (a gradient
    penalty)."""

    def __init__(self):
        super().__init__()
        self.total = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if (formula := flop_registry.get(func._overloadpacket)) is not None:
            self.total += formula(*args, **(kwargs or {}), out_val=out)
        elif (formula := MORE_FLOPS.get(func._overloadpacket)) is not None:
            self.total += formula(*args)
        return out


def seconds(fn, dev) -> float:
    sync = torch.cuda.synchronize if dev.type == "cuda" else lambda d: None   # GPU work is queued: finish it
    sync(dev)
    t = time.perf_counter()
    fn()
    sync(dev)
    return time.perf_counter() - t


def matmul_peak(dev, precision: str, passes: int) -> float:
    """GFLOP/s of one large square matmul (bf16 under --precision bf16, else fp32): what the models are
    measured against, taken in the same run so that the machine's load that day is in both."""
    size = 8192 if dev.type == "cuda" else 2048
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    a, b = (torch.randn(size, size, device=dev, dtype=dtype) for _ in range(2))
    seconds(lambda: a @ b, dev)                                   # warm-up: the kernels' first call
    t = statistics.median(seconds(lambda: a @ b, dev) for _ in range(max(passes, 5)))
    return 2 * size ** 3 / t / 1e9


def build(name: str, spec: str, args, dev, loaded: dict):
    """The model at its defaults on `spec`, its trainer-style optimisers and its training batches, built
    as `genlab.train` builds them (the data loaded once per spec)."""
    cls = get_model_class(name)
    modality = modalities.get(cls.modality)
    if cls.conditioning == "image":             # a translator: two unpaired domains, "A+B"
        spec = f"{spec}+{args.data_b}"
    if spec not in loaded:
        loaded[spec] = modality.load(spec, {})
    config = make_config(cls.Config, {})
    info, record = modality.prepare(loaded[spec], cls, config, {"spec": spec})
    torch.manual_seed(0)
    model = cls(config, info).to(dev)
    batch = args.batch_size or cls.default_batch_size
    train, _ = modality.batches(loaded[spec], info, record, batch_size=batch, seed=0, device=dev)
    clip = cls.default_train.get("clip_grad", 0.0)      # as the trainer steps it: clipping is part of a step
    opts = {k: ManagedOptimizer(o, clip) for k, o in model.configure_optimizers(cls.default_lr).items()}
    return model, modality, loaded[spec], train, opts, batch


def drawn(train, count: int) -> list:
    """`count` batches, drawn before any clock starts so that batching is not timed; epoch after epoch."""
    out = []
    for e in itertools.count():
        out += itertools.islice(train.epoch(e), count - len(out))
        if len(out) == count or e > count:
            return out


def training_unit(model, train, opts, args):
    """(unit, images): one unit of training and the images its last n calls took. A unit is a `train_step`
    on one batch, drawn in advance; for an EM model one `train_epoch` over the whole split."""
    if model.trains_by_epoch:
        epochs = itertools.count()
        return (lambda: model.train_epoch(train, next(epochs))), (lambda n: n * train.num_images())
    batches = iter(drawn(train, 1 + args.warmup + args.compile + args.passes * args.steps))
    sizes: list[int] = []

    def unit():
        sizes.append(len(batch := next(batches)))
        model.train_step(batch, opts)
    return unit, (lambda n: sum(sizes[-n:]))


def train_rate(model, train, opts, args, dev) -> tuple[float, float]:
    """(images/s, FLOPs per image) of training. The first unit is set-up only (first calls; an EM model's
    first epoch initialises it), FLOPs are counted over the warm-up, then the passes are timed."""
    model.train()
    unit, images = training_unit(model, train, opts, args)
    counted, timed = (1, 1) if model.trains_by_epoch else (args.warmup, args.steps)
    with autocast(dev, args.precision):
        unit()
        with Flops() as flops:                      # eager: the counter sees each product
            for _ in range(counted):
                unit()
        per_image = flops.total / images(counted)
        if args.compile:
            compile_networks(model)
            unit()                                  # the compiler's wait, untimed
        rates = []
        for _ in range(args.passes):                # images after the clock: a short last batch counts less
            t = seconds(lambda: [unit() for _ in range(timed)], dev)
            rates.append(images(timed) / t)
    return statistics.median(rates), per_image


def sample_rate(model, modality, ds, args, dev) -> tuple[float, float, int]:
    """(images/s, FLOPs per image, n) of sampling. A first draw of two, FLOPs counted, says how slow a
    draw is; n is then as many as about --sample-seconds allow, at most --sample-n. A translator draws
    nothing of its own: it translates held-out images of its first domain (its `sample`'s condition)."""
    model.eval()
    g = torch.Generator().manual_seed(0)
    given = modality.as_input(model, ds.a.test_x[:args.sample_n]) if model.conditioning == "image" else None
    draw = lambda n: modality.draw(model, n, g, condition=None if given is None else given[:n])
    with Flops() as flops:              # float32, as `genlab sample` draws: --precision is training's
        first = seconds(lambda: draw(2), dev)
    most = args.sample_n if given is None else len(given)
    n = max(2, min(most, int(args.sample_seconds * 2 / first)))
    rates = [n / seconds(lambda: draw(n), dev) for _ in range(args.passes)]
    return statistics.median(rates), flops.total / 2, n


def measure(name: str, spec: str, args, dev, loaded: dict, peak: float) -> dict:
    model, modality, ds, train, opts, batch = build(name, spec, args, dev, loaded)
    train_ips, train_flops = train_rate(model, train, opts, args, dev)
    sample_ips, sample_flops, n = sample_rate(model, modality, ds, args, dev)
    train_gflops, sample_gflops = train_ips * train_flops / 1e9, sample_ips * sample_flops / 1e9
    learned = model.buffers() if model.trains_by_epoch else model.parameters()     # EM fits buffers
    notes = ["trains by EM: a step is one EM iteration over the whole split"] * model.trains_by_epoch + \
        [f"trains on {spec}+{args.data_b}; samples are translations of {spec} test images"] * \
        (model.conditioning == "image")
    return {"model": name, "family": model.family, "parameters": sum(p.numel() for p in learned),
            "batch": batch, "notes": notes, "train_img_s": train_ips, "train_gflop_s": train_gflops,
            "train_peak_share": train_gflops / peak, "sample_img_s": sample_ips, "sample_n": n,
            "sample_gflop_s": sample_gflops, "sample_peak_share": sample_gflops / peak}


def print_table(spec: str, rows: list[dict]) -> None:
    print(f"\n{spec}")
    print(f"{'model':15s} {'family':15s} {'parameters':>11s} {'batch':>6s} {'train img/s':>11s} "
          f"{'GFLOP/s':>8s} {'% peak':>6s} {'sample img/s':>12s} {'n':>3s} {'GFLOP/s':>8s} {'% peak':>6s}")
    for r in rows:
        name = r["model"] + "*" * bool(r["notes"])
        print(f"{name:15s} {r['family']:15s} {r['parameters']:>11,} {r['batch']:>6d} {r['train_img_s']:>11.1f} "
              f"{r['train_gflop_s']:>8.2f} {100 * r['train_peak_share']:>6.1f} {r['sample_img_s']:>12.1f} "
              f"{r['sample_n']:>3d} {r['sample_gflop_s']:>8.2f} {100 * r['sample_peak_share']:>6.1f}")
    for r in rows:
        for note in r["notes"]:
            print(f"* {r['model']}: {note}")


def chosen_models(args) -> tuple[list[str], list[str]]:
    """(image models to time, the others left out with their kind of data)."""
    names = args.models or model_names()
    kinds = {n: get_model_class(n).modality for n in names}      # an unknown name is refused here
    if args.models and (other := [n for n in names if kinds[n] != "image"]):
        raise UserError(f"{other[0]} models {kinds[other[0]]}, not images: this benchmark times image models")
    return [n for n in names if kinds[n] == "image"], [f"{n} ({kinds[n]})" for n in names if kinds[n] != "image"]


def main() -> None:
    p = Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", nargs="+", default=["mnist"], help="image data sets, one table each (default mnist)")
    p.add_argument("--data-b", default="printed-digits", help="the translators' second domain (default printed-digits)")
    p.add_argument("--models", nargs="+", help="image models to time (default: all)")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    p.add_argument("--precision", choices=PRECISIONS, default="fp32",
                   help="fp32 (default) or bf16: `genlab train --precision`'s bfloat16 autocast")
    p.add_argument("--compile", action="store_true", help="time training as `genlab train --compile` runs it")
    p.add_argument("--batch-size", type=int, help="training batch (default: each model's own)")
    p.add_argument("--warmup", type=int, default=5, help="untimed steps, FLOPs counted over them (default 5)")
    p.add_argument("--steps", type=int, default=20, help="timed training steps a pass (default 20)")
    p.add_argument("--passes", type=int, default=3, help="timed passes; the median is shown (default 3)")
    p.add_argument("--sample-n", type=int, default=64, help="images a sampling pass at most (default 64)")
    p.add_argument("--sample-seconds", type=float, default=5.0, help="about this long a sampling pass (default 5)")
    p.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = p.parse_args()
    print(f"machine: {describe_machine()}", flush=True)      # beside every figure below
    for key in ("threads", "warmup", "steps", "passes", "sample_n", "batch_size", "sample_seconds"):
        if getattr(args, key) is not None and getattr(args, key) <= 0:
            raise UserError(f"--{key.replace('_', '-')} must be positive, not {getattr(args, key)}")
    for spec in args.data:
        if modalities.for_spec(spec).name != "image":
            raise UserError(f"--data {spec} is not image data: this benchmark times image models")
    names, skipped = chosen_models(args)
    torch.set_num_threads(args.threads)
    dev = resolve_device(args.device)
    peak = matmul_peak(dev, args.precision, args.passes)
    device = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"
    print(f"{torch.get_num_threads()} thread(s), torch {torch.__version__}, genlab {genlab.__version__}, {device}, "
          f"{args.precision}{', compiled' * args.compile}; matmul peak {peak:.1f} GFLOP/s")
    if skipped:
        print(f"left out, not image models: {', '.join(skipped)}")
    loaded: dict = {}
    tables = {spec: [] for spec in args.data}
    for spec in args.data:
        for name in names:
            print(f"{spec}: timing {name}", file=sys.stderr, flush=True)
            tables[spec].append(measure(name, spec, args, dev, loaded, peak))
        print_table(spec, tables[spec])
    if args.json:
        args.json.write_text(json.dumps({"threads": torch.get_num_threads(), "torch": torch.__version__,
                                         "device": device, "precision": args.precision, "compile": args.compile,
                                         "peak_gflop_s": peak, "tables": tables}, indent=2) + "\n")


if __name__ == "__main__":
    genlab.api.run_script(main)     # bad input: one line and status 2, as `genlab` itself answers it
