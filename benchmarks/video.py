"""Benchmark: the video pixel network (vpn) on Moving MNIST against its two baselines, after a stated
training time.

  vpn:       trained through `genlab.train` (its default settings, or --set KEY=VALUE), an epoch at a
             time, until its training seconds reach --minutes (it stops after the first epoch that does);
  pixelcnn:  genlab's image PixelCNN trained on the training clips' frames as images (each frame on its
             own, the past ignored), in this script's loop (Adam at its default rate, batches of
             --pixelcnn-batch random frames) for the same training seconds as the vpn took;
  copy:      "copy the last frame": each pixel as in the frame before, flipped with the rates fitted to the
             training split (one for off pixels, one for on: see modalities/video.py); no training.

Every figure is the exact NLL of each test clip's frames after its context (10 of 20 on Moving MNIST),
in nats per frame, with its standard error over the test clips; the vpn's and the copy baseline's are
`genlab eval`'s (each frame given every frame before it), the pixelcnn's each frame on its own. Each
pixel on its own (a Bernoulli per pixel position) is printed too.

    python benchmarks/video.py                                   # moving-mnist-32, 30 min each, 1 thread
    python benchmarks/video.py --data moving-mnist --minutes 120 --threads 8
    python benchmarks/video.py --minutes 0.2 --set decoder_layers=1 --data video:FOLDER    # a quick check
"""
from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

import torch
from budget import metrics, train_for, training_seconds

import genlab
from genlab import modalities
from genlab.api import settings_from_pairs
from genlab.data.containers.base import DataInfo
from genlab.data.containers.batch import Batch
from genlab.models import get_model_class
from genlab.models.base import make_config
from genlab.training.acceleration import describe_machine


def train_pixelcnn(ds, seconds: float, batch: int, settings: dict, seed: int = 0):
    """genlab's pixelcnn on the training frames as binary images, for `seconds` of training."""
    cls = get_model_class("pixelcnn")
    torch.manual_seed(seed)
    model = cls(make_config(cls.Config, settings), DataInfo((1, ds.height, ds.width), 0, "binary"))
    optimizers = model.configure_optimizers(cls.default_lr)
    g = torch.Generator().manual_seed(seed)
    spent, steps = 0.0, 0
    model.train()
    while spent < seconds:
        clips = torch.randint(0, ds.count("train"), (batch,), generator=g)
        frames = torch.randint(0, ds.frames, (batch,), generator=g)
        x = ds.clips("train", clips.numpy())[torch.arange(batch), frames].unsqueeze(1).float()
        t = time.perf_counter()
        model.train_step(Batch(x), optimizers)
        spent += time.perf_counter() - t
        steps += 1
    return model.eval(), steps


@torch.no_grad()
def pixelcnn_nll(model, ds) -> tuple[float, float]:
    """Nats per scored frame of the test clips, each frame on its own: mean and standard error over clips."""
    k = ds.context
    per_clip = []
    for clips in ds.chunks("test", 100):
        frames = clips[:, k:].reshape(-1, 1, ds.height, ds.width).float()
        lp = torch.cat([model.log_prob(f) for f in frames.split(256)])
        per_clip.append(-lp.view(len(clips), -1).sum(1).double() / (ds.frames - k))
    v = torch.cat(per_clip)
    return float(v.mean()), float(v.std(unbiased=True)) / math.sqrt(len(v)) if len(v) > 1 else math.nan


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="moving-mnist-32", help="moving-mnist-32 (default), moving-mnist or video:PATH")
    p.add_argument("--minutes", type=float, default=30.0, help="training time of each model (default 30)")
    p.add_argument("--batch-size", type=int, help="the vpn's training batch (default: the model's)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a vpn setting")
    p.add_argument("--pixelcnn-set", action="append", default=[], metavar="KEY=VALUE", help="a pixelcnn setting")
    p.add_argument("--pixelcnn-batch", type=int, default=64, help="frames per pixelcnn training step (default 64)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", help="keep the vpn run here (default: a temporary folder); a run already there "
                                 "trains on to --minutes")
    args = p.parse_args()
    print(f"machine: {describe_machine()}", flush=True)      # beside every figure below
    if not args.minutes > 0 or args.threads < 1 or args.pixelcnn_batch < 1:
        p.error("--minutes, --threads and --pixelcnn-batch must be positive")
    torch.set_num_threads(args.threads)
    settings = settings_from_pairs("vpn", args.set)
    pix_settings = dict(kv.split("=", 1) for kv in args.pixelcnn_set)
    out = Path(args.out or tempfile.mkdtemp(prefix="genlab-bench-video-"))
    out.mkdir(parents=True, exist_ok=True)

    run = train_for("vpn", args.data, out / f"vpn-{args.data.replace(':', '-').replace('/', '_')}", args.minutes,
                    batch_size=args.batch_size, samples=4, threads=args.threads, live=False, **settings)
    [r] = genlab.evaluate([run], device="cpu", threads=args.threads, live=False)
    seconds = training_seconds(run)
    ds = modalities.get("video").load(args.data, {})
    pix, steps = train_pixelcnn(ds, seconds, args.pixelcnn_batch, pix_settings)
    pix_mean, pix_se = pixelcnn_nll(pix, ds)

    rows = [("vpn", f"{seconds / 60:.1f} min, {len(metrics(run))} epochs", r["nll_nats_per_frame"],
             r.get("nll_nats_per_frame_se")),
            ("pixelcnn (frames alone)", f"{seconds / 60:.1f} min, {steps} steps", pix_mean, pix_se),
            ("copy the last frame", "fitted rates", r["copy_last_frame_nats_per_frame"],
             r.get("copy_last_frame_nats_per_frame_se")),
            ("each pixel on its own", "fitted marginals", r["independent_nats_per_frame"],
             r.get("independent_nats_per_frame_se"))]
    print(f"\n{args.data}: {ds.count('test')} test clips, NLL of frames {ds.context + 1}–{ds.frames} in nats per "
          f"frame (± standard error over clips); {torch.get_num_threads()} thread(s), vpn run {run}")
    for name, how, mean, se in rows:
        shown = f"{mean:8.2f}" + (f" ± {se:.2f}" if isinstance(se, float) and math.isfinite(se) else "")
        print(f"  {name:24s} {shown:18s} {how}")
    print(f"  (copy flips: off→on {r['copy_last_frame_flips']['on']:.4f}, on→off {r['copy_last_frame_flips']['off']:.4f})")
    sys.stdout.flush()


if __name__ == "__main__":
    genlab.api.run_script(main)     # bad input: one line and status 2, as `genlab` itself answers it
