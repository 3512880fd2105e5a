"""Training on many processes, one per device, started by torchrun:

    torchrun --nproc_per_node 4 -m genlab train vae --data mnist

Each process takes its share of every batch (--batch-size is the batch over all processes; see
data/containers/loader.py's Shares), and each optimiser step first averages the gradients of its
parameters over all processes, each weighted by its share's size. Every process thus holds the same
weights: those of one process training on the whole batch, up to the order of float sums, for any model
whose loss is a mean over its batch's examples. What a model computes over its batch as a whole stays per
process, as with PyTorch's DistributedDataParallel: batch-norm statistics, and the random draws inside a
step (each process its own stream, rank 0's the one a single process would use).

The averaging sits in the optimisers the trainer hands a model (optim.py), not around its networks:
models call their own optimisers inside `train_step`, a GAN two of them with a backward pass each, and
DistributedDataParallel's arithmetic (one all-reduce of averaged gradients per step) needs no wrapper
there; the weights keep their names and models know nothing of it. An EM model sums its statistics over
the shares itself (loader.summed).

Process 0 alone writes: the run directory, logs, sample files, checkpoints, the test figures. A checkpoint
holds nothing of any one process but, inside an epoch, each one's random state, so a run resumes with
any number of processes: its batches are the same whatever the number.
"""
from __future__ import annotations

import atexit
import os
from collections import defaultdict
from datetime import timedelta

import torch

from ..errors import UserError

# Process 0 tests, samples and checkpoints at each epoch's end while the others wait in their next
# step's all-reduce: a long evaluation must not time them out.
TIMEOUT = timedelta(hours=2)
ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK")


def launched() -> bool:
    """Whether this process is one of several that torchrun started."""
    return int(os.environ.get("WORLD_SIZE", "1") or 1) > 1


class Processes:
    """The processes training one run (a single one when not started by torchrun): who this one is, and
    the few exchanges the trainer needs. With one process every exchange is a no-op."""

    def __init__(self, rank: int = 0, world_size: int = 1, local_rank: int = 0,
                 device: torch.device = torch.device("cpu")):
        self.rank, self.world_size, self.local_rank, self.device = rank, world_size, local_rank, device
        self.weight = 1.0          # this process's share of the batch in hand: its examples over the batch's

    @property
    def many(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def seed(self, seed: int) -> int:
        """This process's seed for a stream all processes seed with `seed`: rank 0 keeps it (so its draws
        are those of a single process), the others get streams of their own."""
        return seed if self.rank == 0 else (seed + self.rank * 0x9E3779B97F4A7C15) % (2**63 - 1)

    # ---- what the trainer exchanges ----
    @torch.no_grad()
    def average_gradients(self, params) -> None:
        """Each parameter's gradient becomes the weighted mean over all processes (weights: the shares'
        sizes), one all-reduce per device and dtype. A gradient one process lacks counts as zero there; one
        that every process lacks stays None (an optimiser skips it)."""
        if not self.many:
            return
        groups = defaultdict(list)
        for p in params:
            if p.requires_grad:
                groups[(p.device, p.dtype)].append(p)
        for (device, dtype), ps in groups.items():
            flat = torch.cat([*(p.grad.reshape(-1) * self.weight if p.grad is not None
                                else torch.zeros(p.numel(), device=device, dtype=dtype) for p in ps),
                              torch.tensor([float(p.grad is not None) for p in ps], device=device, dtype=dtype)])
            torch.distributed.all_reduce(flat)
            had, at = flat[-len(ps):].tolist(), 0
            for p, h in zip(ps, had):
                g, at = flat[at:at + p.numel()].view_as(p), at + p.numel()
                if h > 0:
                    if p.grad is None:
                        p.grad = g.clone()
                    else:
                        p.grad.copy_(g)

    def mean_logs(self, logs: dict, tokens: int) -> tuple[dict, int]:
        """A step's figures as the whole batch's (each process's weighted by its share), and its tokens."""
        if not self.many:
            return logs, tokens
        keys = sorted(logs)
        t = torch.tensor([float(logs[k]) * self.weight for k in keys] + [float(tokens)], dtype=torch.float64,
                         device=self.device)
        torch.distributed.all_reduce(t)
        values = dict(zip(keys, t.tolist()))
        return {k: values[k] for k in logs}, round(t[-1].item())

    @torch.no_grad()
    def same_model(self, model: torch.nn.Module, weights: bool = True) -> None:
        """Every process takes process 0's buffers (batch-norm statistics are per process) and, unless
        `weights` is False, its weights."""
        if not self.many:
            return
        for t in [*(model.parameters() if weights else ()), *model.buffers()]:
            torch.distributed.broadcast(t.data, 0)

    @torch.no_grad()
    def check_same_weights(self, model, epoch: int) -> None:
        """Refuse to go on when the processes' weights have come apart: a model whose step depends on more
        than its share of the batch (a first batch's statistics as initial weights, an optimiser step
        taken on some processes only). Each tensor's sum and sum of magnitudes are compared."""
        if not self.many:
            return
        named = list(model.named_parameters())
        if not named:
            return
        mine = torch.stack([v for _, p in named for v in (p.double().sum(), p.double().abs().sum())]).to(self.device)
        every = [torch.empty_like(mine) for _ in range(self.world_size)]
        torch.distributed.all_gather(every, mine)
        for rank, theirs in enumerate(every[1:], start=1):
            close = torch.isclose(theirs, every[0], rtol=1e-6, atol=1e-9)
            if not close.all():
                name = named[int((~close).nonzero()[0]) // 2][0]
                raise UserError(f"the weights of process {rank} and process 0 differ after epoch {epoch + 1} "
                                f"(first {name}): a step of {model.name} depends on more "
                                f"than its share of the batch; train it in one process")

    def random_states(self) -> list | None:
        """Each process's random state (CPU, and CUDA where it trains on one), gathered for process 0's
        checkpoint inside an epoch; None in one process."""
        if not self.many:
            return None
        mine = {"rng": torch.get_rng_state()}
        if self.device.type == "cuda":
            mine["cuda_rng"] = torch.cuda.get_rng_state(self.device)
        states = [None] * self.world_size
        torch.distributed.all_gather_object(states, mine)
        return states

    def on_main(self, make):
        """`make()` run by process 0 alone (creating the run directory), its result given to every process;
        its error, too, is every process's."""
        if not self.many:
            return make()
        result, error = None, None
        if self.is_main:
            try:
                result = make()
            except Exception as e:        # the others must hear of it, or wait for ever
                error = e
        box = [(result, None if error is None else str(error))]
        torch.distributed.broadcast_object_list(box, src=0)
        if error is not None:
            raise error
        result, message = box[0]
        if message is not None:
            raise UserError(message)
        return result

    def barrier(self) -> None:
        if self.many:
            if self.device.type == "cuda":
                torch.distributed.barrier(device_ids=[self.device.index])
            else:
                torch.distributed.barrier()


_joined: Processes | None = None


def current() -> Processes:
    """The processes of this run: those joined by `join`, else this one alone."""
    return _joined or Processes()


def join(device: torch.device) -> torch.device:
    """Join the processes torchrun started (its RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT)
    and return this process's device: GPU LOCAL_RANK where GPUs are asked for or (auto) present, talking
    over NCCL; else the CPU, over gloo. `device` is the one asked for, already checked."""
    global _joined
    if _joined is not None:
        return _joined.device
    import torch.distributed as dist
    if not dist.is_available():
        raise UserError("this build of torch has no torch.distributed: train in one process (without torchrun)")
    try:
        rank, world, local = (int(os.environ[k]) for k in ENV)
    except (KeyError, ValueError):
        raise UserError(f"many processes need {', '.join(ENV)} set as torchrun sets them: start genlab "
                        f"with torchrun --nproc_per_node N -m genlab train ...") from None
    if device.type == "cuda":
        if device.index is not None:
            raise UserError(f"--device {device}: with many processes each takes the GPU of its LOCAL_RANK; "
                            f"give --device cuda or auto")
        if local >= torch.cuda.device_count():
            raise UserError(f"process {rank} has LOCAL_RANK {local} but this machine has "
                            f"{torch.cuda.device_count()} GPUs: start at most that many (--nproc_per_node)")
        torch.cuda.set_device(local)
        device = torch.device("cuda", local)
        backend = "nccl"
    else:
        backend = "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend, rank=rank, world_size=world, timeout=TIMEOUT)
        atexit.register(_leave)
    _joined = Processes(rank, world, local, device)
    return device


def _leave() -> None:
    """At exit: the processes leave together (one that tears its connections down while another still
    holds them can abort that one), then the group is destroyed. A process that died is waited for a
    minute at most."""
    import datetime

    import torch.distributed as dist
    if dist.is_initialized():
        if dist.get_backend() == "gloo":
            try:
                dist.monitored_barrier(timeout=datetime.timedelta(seconds=60))
            except RuntimeError:
                pass                                # a process is gone: nothing left to wait for
        dist.destroy_process_group()
