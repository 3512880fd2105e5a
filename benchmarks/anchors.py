"""Benchmark: genlab's training step beside the best public code's own training loop, on the same network
where it can be the same, in one run: random binary (or [-1, 1]) 28×28 images, batch 64, the passes
interleaved (each round times every entry once), medians.

The anchors are other people's code, not part of genlab: give the folders of your own checkouts.
  --pytorch-generative PATH   a checkout of pytorch-generative (EugenHotaj on GitHub). Its models are imported
                              from PATH without the package's __init__ (which needs torchvision); each step is
                              its Trainer's own `_train_one_batch` with its reproduce() loss, optimiser and
                              learning-rate schedule.
  --pytorch-gan PATH          a checkout of PyTorch-GAN (eriklindernoren on GitHub). Its implementations/NAME/
                              NAME.py are scripts that train on import, so their Generator, Discriminator
                              and helpers are taken from the source (`opt` set to each script's defaults),
                              and a step is the script's loop body: dcgan a generator then a discriminator
                              step; wgan and wgan_gp a critic step, and a generator step every fifth.

Rows (an anchor's folder missing: its rows are left out):
  pixelcnn         pg PixelCNN(n_residual=15, residual_channels=16, head_channels=32) and genlab's pixelcnn
                   with channels=32 blocks=15 head=32: both 53,569 parameters, the same layers
  gated-pixelcnn   pg GatedPixelCNN(n_gated=10, gated_channels=128, head_channels=32) and genlab's
                   gated-pixelcnn with channels=128 layers=10 head=32
  vae              pg VAE as reproduce() builds it and genlab's vae at its defaults: different networks,
                   compared by achieved GFLOP/s (genlab's costs a tenth as much per image)
  vae-128          the same anchor and genlab's vae with channels=128, which costs what the anchor's costs per
                   training image (389 against 385 MFLOP): different networks of one cost, compared by img/s
  dcgan            PyTorch-GAN's DCGAN at 32×32 and genlab's dcgan at 32×32: different networks, GFLOP/s
  wgan, wgan-gp    PyTorch-GAN's fully connected WGAN and WGAN-GP at 28×28 and genlab's at their defaults
Each genlab network is timed as `genlab train` runs it: fp32, --precision bf16, --compile, and both.

    python benchmarks/anchors.py --pytorch-generative ~/src/pytorch-generative --pytorch-gan ~/src/PyTorch-GAN
"""
from __future__ import annotations

import argparse
import ast
import statistics
import sys
import tempfile
import types
from pathlib import Path

import numpy as np
import torch
from speed import Flops, Parser, matmul_peak, seconds
from torch.nn import functional as F

import genlab
from genlab.data.containers.base import DataInfo
from genlab.data.containers.batch import Batch
from genlab.errors import UserError
from genlab.models.base import make_config
from genlab.models.registry import get_model_class
from genlab.training.acceleration import autocast, compile_networks, describe_machine
from genlab.training.optim import ManagedOptimizer

BATCH = 64
GENLAB_NETS = {"pixelcnn": ("pixelcnn", {"channels": "32", "blocks": "15", "head": "32"}, 28, "binary"),
               "gated-pixelcnn": ("gated-pixelcnn", {"channels": "128", "layers": "10", "head": "32"}, 28, "binary"),
               "vae": ("vae", {}, 28, "binary"),
               "vae-128": ("vae", {"channels": "128"}, 28, "binary"),
               "dcgan": ("dcgan", {}, 32, "continuous"),
               "wgan": ("wgan", {}, 28, "continuous"),
               "wgan-gp": ("wgan-gp", {}, 28, "continuous")}
GAN_ROWS = ("dcgan", "wgan", "wgan-gp")
ANCHOR_SIZE = {"vae": 32, "vae-128": 32}      # pg's VAE trains on MNIST resized to 32×32
MODES = (("fp32", False), ("bf16", False), ("fp32", True), ("bf16", True))


def data(size: int, pixels: str, g: torch.Generator) -> torch.Tensor:
    x = (torch.rand(BATCH, 1, size, size, generator=g) < 0.3).float()
    return x if pixels == "binary" else x * 2 - 1


# ---- the anchors: their own code, imported from the user's checkouts ----

def import_pytorch_generative(root: Path):
    """pytorch_generative's modules from `root`, its package __init__ files skipped."""
    for name in ("pytorch_generative", "pytorch_generative.models"):
        if name not in sys.modules:
            module = types.ModuleType(name)
            module.__path__ = [str(root / name.replace(".", "/"))]
            sys.modules[name] = module
    from pytorch_generative import trainer
    from pytorch_generative.models.autoregressive.gated_pixel_cnn import GatedPixelCNN
    from pytorch_generative.models.autoregressive.pixel_cnn import PixelCNN
    from pytorch_generative.models.vae.vae import VAE
    vae = (lambda: VAE(1, 1, latent_channels=16, strides=[2, 2, 2, 2], hidden_channels=64, residual_channels=32),
           5e-4, None, "elbo")
    return trainer.Trainer, {"pixelcnn": (lambda: PixelCNN(1, 1, n_residual=15, residual_channels=16, head_channels=32),
                                          1e-3, 0.999977, "bernoulli"),
                             "gated-pixelcnn": (lambda: GatedPixelCNN(1, 1, n_gated=10, gated_channels=128,
                                                                      head_channels=32), 1e-3, 0.9999, "bernoulli"),
                             "vae": vae, "vae-128": vae}


def pg_step(trainer_cls, build, lr, decay, loss):
    """pytorch-generative's training step: its Trainer's `_train_one_batch`, reproduce()'s loss."""
    def bernoulli(x, _, preds):
        return F.binary_cross_entropy_with_logits(preds.view(len(x), -1), x.view(len(x), -1),
                                                  reduction="none").sum(1).mean()

    def elbo(x, _, preds):
        preds, kl = preds
        recon = F.binary_cross_entropy_with_logits(preds, x, reduction="none").sum((1, 2, 3))
        return {"recon_loss": recon.mean(), "kl_div": kl.mean(), "loss": (recon + kl).mean()}
    torch.manual_seed(0)
    model = build()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.MultiplicativeLR(opt, lambda _: decay) if decay else None
    t = trainer_cls(model=model, loss_fn=bernoulli if loss == "bernoulli" else elbo, optimizer=opt,
                    train_loader=None, eval_loader=None, lr_scheduler=sched,
                    log_dir=tempfile.mkdtemp(prefix="anchor-"), n_gpus=0)
    return model, lambda x: t._train_one_batch(x, None)


def script_networks(root: Path, name: str, **opt):
    """The Generator and Discriminator of PyTorch-GAN's implementations/NAME/NAME.py, from the script's
    source (its classes and functions only: the script itself trains on import), `opt` as its defaults."""
    tree = ast.parse((root / "implementations" / name / f"{name}.py").read_text())
    keep = [n for n in tree.body if isinstance(n, (ast.ClassDef, ast.FunctionDef))]
    opt = argparse.Namespace(channels=1, latent_dim=100, **opt)
    scope = {"torch": torch, "nn": torch.nn, "F": F, "np": np, "autograd": torch.autograd,
             "Variable": lambda t, **_: t, "Tensor": torch.FloatTensor, "opt": opt,
             "img_shape": (opt.channels, opt.img_size, opt.img_size)}
    exec(compile(ast.Module(body=keep, type_ignores=[]), f"{name}.py", "exec"), scope)   # noqa: S102
    torch.manual_seed(0)
    G, D = scope["Generator"](), scope["Discriminator"]()
    if "weights_init_normal" in scope:
        G.apply(scope["weights_init_normal"])
        D.apply(scope["weights_init_normal"])
    return G, D, opt, scope


def pytorch_gan(root: Path, row: str):
    """(networks, step) of PyTorch-GAN's script for `row`: a step is one pass of the script's loop body, with
    its noise from numpy as the script draws it."""
    if row == "dcgan":
        G, D, o, _ = script_networks(root, "dcgan", img_size=32, lr=2e-4, b1=0.5, b2=0.999)
    elif row == "wgan":
        G, D, o, _ = script_networks(root, "wgan", img_size=28, lr=5e-5, n_critic=5, clip_value=0.01)
    else:
        G, D, o, scope = script_networks(root, "wgan_gp", img_size=28, lr=2e-4, b1=0.5, b2=0.999, n_critic=5)
    if row == "wgan":
        opt_g, opt_d = torch.optim.RMSprop(G.parameters(), lr=o.lr), torch.optim.RMSprop(D.parameters(), lr=o.lr)
    else:
        opt_g = torch.optim.Adam(G.parameters(), lr=o.lr, betas=(o.b1, o.b2))
        opt_d = torch.optim.Adam(D.parameters(), lr=o.lr, betas=(o.b1, o.b2))
    bce, calls = torch.nn.BCELoss(), [0]

    def noise(n):
        return torch.FloatTensor(np.random.normal(0, 1, (n, o.latent_dim)))

    def dcgan(real):
        valid, fake = torch.ones(len(real), 1), torch.zeros(len(real), 1)
        opt_g.zero_grad()
        gen = G(noise(len(real)))
        g_loss = bce(D(gen), valid)
        g_loss.backward()
        opt_g.step()
        opt_d.zero_grad()
        d_loss = (bce(D(real), valid) + bce(D(gen.detach()), fake)) / 2
        d_loss.backward()
        opt_d.step()

    def wasserstein(real):
        opt_d.zero_grad()
        z = noise(len(real))
        fake = G(z)
        if row == "wgan":
            d_loss = -torch.mean(D(real)) + torch.mean(D(fake.detach()))
        else:
            d_loss = -torch.mean(D(real)) + torch.mean(D(fake)) + \
                10 * scope["compute_gradient_penalty"](D, real.data, fake.data)
        d_loss.backward()
        opt_d.step()
        if row == "wgan":
            for p in D.parameters():
                p.data.clamp_(-o.clip_value, o.clip_value)
        else:
            opt_g.zero_grad()
        if calls[0] % o.n_critic == 0:
            opt_g.zero_grad()
            g_loss = -torch.mean(D(G(z)))
            g_loss.backward()
            opt_g.step()
        calls[0] += 1
    return torch.nn.ModuleList([G, D]), dcgan if row == "dcgan" else wasserstein


# ---- genlab ----

def genlab_step(row: str, precision: str, compiled: bool):
    name, settings, size, pixels = GENLAB_NETS[row]
    cls = get_model_class(name)
    torch.manual_seed(0)
    model = cls(make_config(cls.Config, settings), DataInfo((1, size, size), 10, pixels))
    clip = cls.default_train.get("clip_grad", 0.0)
    opts = {k: ManagedOptimizer(o, clip) for k, o in model.configure_optimizers(cls.default_lr).items()}
    if compiled:
        compile_networks(model)
    model.train()

    def step(x):
        with autocast(torch.device("cpu"), precision):
            return model.train_step(Batch(x), opts)
    return model, step


def main() -> None:
    p = Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pytorch-generative", type=Path, help="a checkout of pytorch-generative")
    p.add_argument("--pytorch-gan", type=Path, help="a checkout of PyTorch-GAN")
    p.add_argument("--rows", nargs="+", default=list(GENLAB_NETS), choices=list(GENLAB_NETS))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=5, help="timed steps per entry a round (default 5)")
    p.add_argument("--passes", type=int, default=3, help="interleaved rounds; medians shown (default 3)")
    args = p.parse_args()
    print(f"machine: {describe_machine()}", flush=True)      # beside every figure below
    if args.threads < 1 or args.steps < 1 or args.passes < 1:
        raise UserError("--threads, --steps and --passes must be positive")
    for flag, path in (("--pytorch-generative", args.pytorch_generative), ("--pytorch-gan", args.pytorch_gan)):
        if path is not None and not path.is_dir():
            raise UserError(f"{flag} {path}: no such folder")
    torch.set_num_threads(args.threads)
    anchors = {}
    if args.pytorch_generative:
        trainer_cls, builds = import_pytorch_generative(args.pytorch_generative.resolve())
        anchors.update({row: pg_step(trainer_cls, *builds[row]) for row in builds if row in args.rows})
    if args.pytorch_gan:
        anchors.update({row: pytorch_gan(args.pytorch_gan.resolve(), row) for row in GAN_ROWS if row in args.rows})
    if not anchors:
        raise UserError("no anchor to compare with: give --pytorch-generative PATH and/or --pytorch-gan PATH")
    g = torch.Generator().manual_seed(0)
    entries = {}                                    # (row, who) -> (module, step, input)
    for row in anchors:
        _, _, size, pixels = GENLAB_NETS[row]
        x = data(size, pixels, g)
        entries[row, "anchor"] = (*anchors[row], data(ANCHOR_SIZE.get(row, size), pixels, g))
        for precision, compiled in MODES:
            who = precision + (" compiled" if compiled else "")
            entries[row, who] = (*genlab_step(row, precision, compiled), x)
    flops, times = {}, {k: [] for k in entries}
    for key, (module, step, x) in entries.items():
        print(f"warming up {key[0]} {key[1]}", file=sys.stderr, flush=True)
        step(x)                                      # first calls (and the compiler's wait)
        with Flops() as f:
            step(x)
        flops[key] = f.total / BATCH
    fp32_peak, bf16_peak = matmul_peak(torch.device("cpu"), "fp32", 3), matmul_peak(torch.device("cpu"), "bf16", 3)
    for r in range(args.passes):
        print(f"round {r + 1}/{args.passes}", file=sys.stderr, flush=True)
        for key, (module, step, x) in entries.items():
            times[key].append(seconds(lambda: [step(x) for _ in range(args.steps)], torch.device("cpu")) / args.steps)
    print(f"\n{args.threads} thread(s), batch {BATCH}, {args.passes} interleaved rounds of {args.steps} steps, medians; "
          f"torch {torch.__version__}, genlab {genlab.__version__}; matmul peak fp32 {fp32_peak:.0f}, "
          f"bf16 {bf16_peak:.0f} GFLOP/s")
    print(f"{'network':15s} {'who':22s} {'parameters':>11s} {'img/s':>8s} {'GFLOP/s':>8s} {'% peak':>6s} "
          f"{'÷ anchor (img/s)':>16s} {'÷ anchor (GFLOP/s)':>18s}")
    for row in anchors:
        base = None
        for key in [k for k in entries if k[0] == row]:
            module = entries[key][0]
            t = statistics.median(times[key])
            ips, gflops = BATCH / t, BATCH / t * flops[key] / 1e9
            peak = bf16_peak if "bf16" in key[1] else fp32_peak
            base = base or (ips, gflops)
            who = ("PyTorch-GAN" if row in GAN_ROWS else "pytorch-generative") if key[1] == "anchor" \
                else f"genlab {key[1]}"
            print(f"{row:15s} {who:22s} {sum(q.numel() for q in module.parameters()):>11,} {ips:>8.1f} "
                  f"{gflops:>8.1f} {100 * gflops / peak:>6.1f} {ips / base[0]:>16.2f} {gflops / base[1]:>18.2f}")
    print("% peak: of the fp32 matmul peak for fp32 entries, of the bf16 one for bf16 entries. The same network "
          "(pixelcnn, gated-pixelcnn) or the same cost per image (vae-128): compare img/s; different networks "
          "(vae and the GANs): compare GFLOP/s.")


if __name__ == "__main__":
    genlab.api.run_script(main)
