"""Benchmark: what caps a convolutional model's share of the matmul peak. One training step of MODEL at its
defaults (random data, batch --batch) is recorded at the level of PyTorch's operators; every distinct
convolution it ran, forward and backward, is then replayed alone on random tensors of the same shapes and
timed, beside a large matmul measured in the same run:

    layer                    input, weight, stride/padding, and which gradients the backward computed
    calls                    how many times one step runs it
    ms fwd / ms bwd          the median of --repeats, per call
    GFLOP/s, % peak          its forward and backward FLOPs (input and weight gradients as computed) over
                             its time
    share                    of all the step's convolution time

    python benchmarks/conv_rates.py pixelcnn
    python benchmarks/conv_rates.py gated-pixelcnn --threads 2 --precision bf16
"""
from __future__ import annotations

import argparse
import statistics
import time
from collections import Counter

import torch
from speed import Parser, matmul_peak
from torch.utils._python_dispatch import TorchDispatchMode

import genlab
from genlab.data.containers.base import DataInfo
from genlab.data.containers.batch import Batch
from genlab.errors import UserError
from genlab.models.base import make_config
from genlab.models.registry import get_model_class
from genlab.training.acceleration import PRECISIONS, autocast, describe_machine
from genlab.training.optim import ManagedOptimizer

aten = torch.ops.aten


class Recorder(TorchDispatchMode):
    """Each convolution's forward and backward call: shapes, dtypes and the non-tensor arguments."""

    def __init__(self):
        super().__init__()
        self.forward, self.backward = Counter(), Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func._overloadpacket is aten.convolution:
            x, w, b, *rest = args
            self.forward[(tuple(x.shape), tuple(w.shape), b is not None, x.dtype, *map(_hashable, rest))] += 1
        elif func._overloadpacket is aten.convolution_backward:
            g, x, w, bias_sizes, *rest = args
            self.backward[(tuple(g.shape), tuple(x.shape), tuple(w.shape), x.dtype, _hashable(bias_sizes),
                           *map(_hashable, rest))] += 1
        return func(*args, **(kwargs or {}))


def _hashable(v):
    return tuple(v) if isinstance(v, (list, tuple)) else v


def median_ms(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return 1000 * statistics.median(times)


def main() -> None:
    p = Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model")
    p.add_argument("--size", type=int, default=28, help="image height and width (default 28)")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--precision", choices=PRECISIONS, default="fp32")
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()
    print(f"machine: {describe_machine()}", flush=True)      # beside every figure below
    if min(args.size, args.batch, args.threads, args.repeats) < 1:
        raise UserError("--size, --batch, --threads and --repeats must be positive")
    torch.set_num_threads(args.threads)
    cls = get_model_class(args.model)
    if cls.modality != "image":
        raise UserError(f"{args.model} models {cls.modality}: this benchmark takes image models")
    pixels = "binary" if cls.discrete else "continuous"
    torch.manual_seed(0)
    model = cls(make_config(cls.Config, {}), DataInfo((1, args.size, args.size), 10, pixels))
    opts = {k: ManagedOptimizer(o) for k, o in model.configure_optimizers(cls.default_lr).items()}
    x = (torch.rand(args.batch, 1, args.size, args.size) < 0.3).float()
    batch = Batch(x if pixels == "binary" else x * 2 - 1, torch.randint(0, 10, (args.batch,)))
    with autocast(torch.device("cpu"), args.precision):
        model.train_step(batch, opts)                            # first calls
        with Recorder() as rec:
            model.train_step(batch, opts)
        t = time.perf_counter()
        model.train_step(batch, opts)
        step_ms = 1000 * (time.perf_counter() - t)
    peak = matmul_peak(torch.device("cpu"), args.precision, 3)
    rows = []
    for (xs, ws, has_b, dtype, stride, pad, dil, transposed, out_pad, groups), n in rec.forward.items():
        xt, wt = torch.randn(xs, dtype=dtype), torch.randn(ws, dtype=dtype)
        bt = torch.randn(ws[1] if transposed else ws[0], dtype=dtype) if has_b else None
        y = aten.convolution(xt, wt, bt, stride, pad, dil, transposed, out_pad, groups)
        fwd = median_ms(lambda: aten.convolution(xt, wt, bt, stride, pad, dil, transposed, out_pad, groups),
                        args.repeats)
        # each output (transposed: each input) meets one weight slice of ws[1]·kh·kw values
        macs = (xt if transposed else y).numel() * ws[1] * ws[2] * ws[3]
        bwd, mask = 0.0, None
        for key in rec.backward:
            if key[1] == xs and key[2] == ws and key[5:10] == (stride, pad, dil, transposed, out_pad):
                mask = key[-1]
                g = torch.randn(key[0], dtype=dtype)
                bwd = median_ms(lambda: aten.convolution_backward(g, xt, wt, key[4], stride, pad, dil,
                                                                  transposed, out_pad, groups, list(mask)),
                                args.repeats)
                break
        flops = 2 * macs * (1 + (sum(mask[:2]) if mask else 0))
        rows.append((xs, ws, stride, pad, mask, n, fwd, bwd, flops / (fwd + bwd) / 1e6))
    total = sum(n * (f + b) for *_, n, f, b, _ in rows)
    print(f"\n{args.model} at its defaults, {args.size}×{args.size}, batch {args.batch}, {args.precision}, "
          f"{args.threads} thread(s); one step {step_ms:.0f} ms, its convolutions replayed alone {total:.0f} ms; "
          f"matmul peak {peak:.0f} GFLOP/s")
    print(f"{'input':>18s} {'weight':>16s} {'stride':>6s} {'pad':>6s} {'grads':>9s} {'calls':>5s} {'ms fwd':>7s} "
          f"{'ms bwd':>7s} {'GFLOP/s':>8s} {'% peak':>6s} {'share':>6s}")
    for xs, ws, stride, pad, mask, n, fwd, bwd, rate in sorted(rows, key=lambda r: -r[5] * (r[6] + r[7])):
        grads = "—" if mask is None else "+".join(k for k, on in zip(("input", "weight"), mask) if on) or "bias"
        print(f"{'×'.join(map(str, xs)):>18s} {'×'.join(map(str, ws)):>16s} {stride[0]:>6d} {pad[0]:>6d} "
              f"{grads:>9s} {n:>5d} {fwd:>7.2f} {bwd:>7.2f} {rate:>8.1f} {100 * rate / peak:>6.1f} "
              f"{100 * n * (fwd + bwd) / total:>5.1f}%")


if __name__ == "__main__":
    genlab.api.run_script(main)
