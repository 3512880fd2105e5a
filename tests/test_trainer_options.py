"""The trainer's options any model can use: gradient clipping, learning-rate schedules, an average of the
weights, checkpoints inside an epoch (with an exact resume), TensorBoard; and the callbacks around the loop."""
import argparse
import json
import math
import shutil
import sys

import pytest
import torch
from safetensors.torch import load_file

import genlab
from genlab import runconfig
from genlab.data import load_dataset, make_info
from genlab.data.containers.loader import Batches
from genlab.errors import UserError
from genlab.models.latent.vae import VAE, VAEConfig
from genlab.runs import Run
from genlab.training.callbacks import Callback
from genlab.training.optim import lr_factor
from genlab.training.options import TrainOptions, add_trainer_options
from genlab.training.trainer import Trainer

pytestmark = pytest.mark.usefixtures("one_thread")   # tiny nets: one thread is the fastest

BATCH, TRAIN = 32, 320                               # 10 steps an epoch


@pytest.fixture(scope="module")
def digits():
    ds = load_dataset("digits")
    return ds, make_info(ds, "dynamic")


def make_trainer(digits, path, callbacks=None, **options):
    ds, info = digits
    opts = TrainOptions(**{"epochs": 1, "batch_size": BATCH, "seed": 4, "samples": 4, **options})
    torch.manual_seed(opts.seed)
    model = VAE(VAEConfig(latent_dim=2, hidden=32), info)
    run = path if isinstance(path, Run) else Run.create(path, runconfig.build(
        VAE, model.config, info, {"spec": "digits", "binarize": "dynamic"}, opts.seed, opts.to_json()))
    train = Batches(ds.train_x[:TRAIN], ds.train_y[:TRAIN], binarize="dynamic", batch_size=BATCH, shuffle=True,
                    seed=opts.seed)
    test = Batches(ds.test_x[:100], ds.test_y[:100], binarize="dynamic", batch_size=100, shuffle=False)
    return Trainer(model, run, train, test, opts, quiet=True, callbacks=callbacks)


def spy_on_steps(trainer, record):
    """Call record(optimizer) just before each real optimiser step (after the trainer's wrapper)."""
    inner = trainer.optimizers["model"].optimizer
    real = inner.step

    def step(*args, **kwargs):
        record(inner)
        return real(*args, **kwargs)
    inner.step = step


def grad_norm(optimizer) -> float:
    grads = [p.grad for g in optimizer.param_groups for p in g["params"] if p.grad is not None]
    return float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads])))


# ---- clipping ------------------------------------------------------------------------------------------

def test_clipping_bounds_the_gradient_norm_the_optimizer_sees(digits, tmp_path):
    norms = {}
    for clip in (0.0, 1.0):
        trainer = make_trainer(digits, tmp_path / f"clip{clip}", clip_grad=clip, samples=0)
        seen = norms[clip] = []
        spy_on_steps(trainer, lambda opt: seen.append(grad_norm(opt)))
        trainer.fit()
    assert len(norms[1.0]) == TRAIN // BATCH
    assert max(norms[0.0]) > 2.0                          # without clipping the norms are well above 1 ...
    assert max(norms[1.0]) <= 1.0 + 1e-4                  # ... with it, never above


# ---- learning-rate schedules ---------------------------------------------------------------------------

@pytest.mark.parametrize("schedule, at", [
    ("constant", {0: 0.25, 3: 1.0, 4: 1.0, 19: 1.0}),
    ("linear", {0: 0.25, 3: 1.0, 4: 1.0, 8: 0.75, 12: 0.5, 19: 1 / 16}),
    ("cosine", {0: 0.25, 3: 1.0, 4: 1.0, 8: (1 + math.cos(math.pi / 4)) / 2, 12: 0.5,
                19: (1 + math.cos(15 * math.pi / 16)) / 2}),
    ("hold-linear", {0: 0.25, 3: 1.0, 8: 1.0, 12: 1.0, 16: 0.5, 19: 1 / 8}),     # CycleGAN's: held, then down
])
def test_each_schedule_gives_the_expected_learning_rates(digits, tmp_path, schedule, at):
    lr = 0.01
    trainer = make_trainer(digits, tmp_path / "run", epochs=2, lr=lr, lr_schedule=schedule, warmup_steps=4,
                           samples=0)
    used = []
    spy_on_steps(trainer, lambda opt: used.append(opt.param_groups[0]["lr"]))
    trainer.fit()
    assert len(used) == 20                                 # 2 epochs of 10 steps: the schedule's whole run
    for step, share in at.items():
        assert used[step] == pytest.approx(lr * share, rel=1e-9), step
    assert [s["lr"] for s in trainer.run.steps()] == pytest.approx(used)   # steps.jsonl shows the rate too
    assert lr_factor(schedule, 20, 20, 4) == (1.0 if schedule == "constant" else pytest.approx(0.0, abs=1e-12))


def test_a_gan_critic_that_steps_more_often_follows_the_same_schedule():
    params = [torch.nn.Parameter(torch.zeros(2))]
    from genlab.training.optim import ManagedOptimizer
    clock = {"step": 0}
    opt = ManagedOptimizer(torch.optim.SGD(params, lr=1.0), factor=lambda: lr_factor("linear", clock["step"], 10))
    for step in range(3):
        clock["step"] = step
        for _ in range(5):                                 # five critic steps in one trainer step
            params[0].grad = torch.ones(2)
            opt.step()
            assert opt.param_groups[0]["lr"] == pytest.approx(1 - step / 10)


# ---- the moving average of the weights -----------------------------------------------------------------

class Snapshots(Callback):
    """The raw weights after each step."""

    def __init__(self):
        self.weights = []

    def on_step_end(self, trainer, logs):
        self.weights.append({k: p.detach().clone() for k, p in trainer.model.named_parameters()})


def test_ema_is_the_hand_computed_average_and_is_what_the_run_saves(digits, tmp_path):
    snaps = Snapshots()
    trainer = make_trainer(digits, tmp_path / "run", callbacks=[snaps], ema=0.9)
    start = {k: p.detach().clone() for k, p in trainer.model.named_parameters()}
    trainer.fit()
    expected = dict(start)
    for n, weights in enumerate(snaps.weights, 1):
        d = min(0.9, (1 + n) / (10 + n))                   # the decay's warm-up, then 0.9
        expected = {k: d * expected[k] + (1 - d) * weights[k] for k in expected}
    for k, v in expected.items():
        assert torch.allclose(trainer.ema.shadow[k], v, rtol=1e-5, atol=1e-6), k
    raw = dict(trainer.model.named_parameters())
    assert any(not torch.allclose(expected[k], raw[k]) for k in raw)        # the average is not the last weights

    saved = load_file(str(tmp_path / "run" / "model.safetensors"))
    assert all(torch.equal(saved[k], trainer.ema.shadow[k]) for k in expected)
    assert torch.equal(saved["steps"], trainer.model.steps)                 # buffers are the live model's
    state = torch.load(tmp_path / "run" / "trainer.pt", weights_only=True)
    assert all(torch.equal(state["model"][k], raw[k].detach()) for k in raw)   # the raw weights, to resume
    loaded = genlab.load(tmp_path / "run")
    assert all(torch.equal(p, trainer.ema.shadow[k]) for k, p in loaded.named_parameters())


# ---- checkpoints inside an epoch and an exact resume ---------------------------------------------------

class Kill(Callback):
    """Dies after step k, as a killed process would: nothing after it runs."""

    def __init__(self, k, keep=None):
        self.k, self.keep = k, keep

    def on_step_end(self, trainer, logs):
        if self.keep and trainer.step == self.keep[0]:   # a copy of the weights of this step's checkpoint
            shutil.copy(trainer.run.path / "model.safetensors", self.keep[1])
        if trainer.step == self.k:
            raise KeyboardInterrupt


ALL_ON = {"epochs": 3, "clip_grad": 1.0, "lr_schedule": "cosine", "warmup_steps": 5, "ema": 0.95,
          "checkpoint_every": 3, "lr": 3e-3}


def all_options():
    return {**ALL_ON, "log": "tensorboard" if _has_tensorboard() else "jsonl"}


def _has_tensorboard():
    try:
        import tensorboard  # noqa: F401
        return True
    except ImportError:
        return False


def assert_same_runs(a, b):
    wa, wb = (load_file(str(p / "model.safetensors")) for p in (a, b))
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    sa, sb = (torch.load(p / "trainer.pt", weights_only=True) for p in (a, b))
    assert all(torch.equal(sa["model"][k], sb["model"][k]) for k in sa["model"])        # raw weights too
    assert sa["step"] == sb["step"] and sa["ema"]["updates"] == sb["ema"]["updates"]
    drop = {"seconds", "images_per_s"}
    rows = [[{k: v for k, v in r.items() if k not in drop} for r in Run.open(p).metrics()] for p in (a, b)]
    assert rows[0] == rows[1]
    steps = [[{k: v for k, v in r.items() if k != "seconds"} for r in Run.open(p).steps()] for p in (a, b)]
    assert steps[0] == steps[1] and [s["step"] for s in steps[1]] == list(range(1, 31))


def test_a_run_killed_inside_an_epoch_resumes_to_the_same_weights(digits, tmp_path):
    opts = all_options()
    make_trainer(digits, tmp_path / "whole", **opts).fit()

    trainer = make_trainer(digits, tmp_path / "split", callbacks=[Kill(17)], **opts)
    with pytest.raises(KeyboardInterrupt):
        trainer.fit()                                      # killed in epoch 2; its last checkpoint is of step 15
    state = torch.load(tmp_path / "split" / "trainer.pt", weights_only=True)
    assert (state["epoch"], state["step"], state["position"]["steps"]) == (1, 15, 5)
    resumed = make_trainer(digits, Run.open(tmp_path / "split"), **opts)
    resumed.restore()
    assert (resumed.epoch, resumed.step) == (1, 15)
    resumed.fit()
    assert_same_runs(tmp_path / "whole", tmp_path / "split")
    if opts["log"] == "tensorboard":
        assert list((tmp_path / "split" / "tensorboard").glob("events.out.tfevents.*"))


def test_a_run_killed_between_the_renames_of_a_checkpoint_resumes_from_the_one_before(digits, tmp_path):
    """Weights of step 12 beside the trainer state of step 15: the digest finds the state of step 12."""
    opts = {**ALL_ON, "epochs": 2, "ema": 0.0}
    make_trainer(digits, tmp_path / "whole", **opts).fit()
    out = tmp_path / "split"
    trainer = make_trainer(digits, out, callbacks=[Kill(16, keep=(12, tmp_path / "w12"))], **opts)
    with pytest.raises(KeyboardInterrupt):
        trainer.fit()
    shutil.copy(tmp_path / "w12", out / "model.safetensors")        # the rename of step 15's weights never came
    resumed = make_trainer(digits, Run.open(out), **opts)
    resumed.restore()
    assert (resumed.epoch, resumed.step) == (1, 12)
    resumed.fit()
    wa, wb = (load_file(str(p / "model.safetensors")) for p in (tmp_path / "whole", out))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_a_trainer_state_of_other_weights_is_refused(digits, tmp_path):
    out = tmp_path / "run"
    make_trainer(digits, out, checkpoint_every=3, samples=0).fit()
    state = torch.load(out / "trainer.pt", weights_only=True)
    torch.save({**state, "weights_digest": "0" * 64}, out / "trainer.pt")
    (out / ".trainer-previous.pt").unlink()
    with pytest.raises(UserError, match="no trainer state matches"):
        make_trainer(digits, Run.open(out), epochs=2).restore()


# ---- TensorBoard ---------------------------------------------------------------------------------------

def test_tensorboard_writes_event_files(digits, tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    make_trainer(digits, tmp_path / "run", epochs=2, log="tensorboard", samples=0).fit()
    files = list((tmp_path / "run" / "tensorboard").glob("events.out.tfevents.*"))
    assert files
    events = EventAccumulator(str(tmp_path / "run" / "tensorboard"))
    events.Reload()
    tags = events.Tags()["scalars"]
    assert "train/loss" in tags and "epoch/test_nelbo_nats" in tags
    assert [e.step for e in events.Scalars("train/loss")] == list(range(1, 21))
    assert [e.step for e in events.Scalars("epoch/test_nelbo_nats")] == [10, 20]


def test_tensorboard_missing_is_one_line_saying_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboard", None)           # as if it were not installed
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    with pytest.raises(UserError, match="pip install tensorboard"):
        TrainOptions(log="tensorboard")
    from genlab.training.callbacks import TensorBoard
    with pytest.raises(UserError, match="pip install tensorboard"):
        TensorBoard()


# ---- the options themselves ----------------------------------------------------------------------------

def test_options_round_trip_and_an_older_config_loads_with_defaults():
    opts = TrainOptions(epochs=3, clip_grad=2.0, lr_schedule="linear", warmup_steps=7, ema=0.99,
                        checkpoint_every=50, log="jsonl")
    assert TrainOptions.from_json(json.loads(json.dumps(opts.to_json()))) == opts
    old = {"epochs": 4, "batch_size": 64, "lr": 0.002, "seed": 1, "samples": 16}
    got = TrainOptions.from_json(old)
    assert (got.epochs, got.clip_grad, got.lr_schedule, got.ema, got.checkpoint_every, got.log) == \
        (4, 0.0, "constant", 0.0, 0, "jsonl")
    with pytest.raises(UserError, match="unknown option 'from_the_future'"):      # a hand-edited record
        TrainOptions.from_json({**old, "from_the_future": 1})


@pytest.mark.parametrize("field, value", [("clip_grad", -1.0), ("lr_schedule", "step"), ("warmup_steps", -2),
                                          ("ema", 1.0), ("checkpoint_every", 2.5), ("log", "wandb")])
def test_bad_options_are_one_line(field, value):
    with pytest.raises(UserError, match="--" + field.replace("_", "-")):
        TrainOptions.from_json({field: value})


def test_command_line_flags(capsys):
    p = argparse.ArgumentParser(prog="genlab train")
    add_trainer_options(p)
    none = vars(p.parse_args([]))
    assert all(none[k] is None for k in ("clip_grad", "lr_schedule", "warmup_steps", "ema", "checkpoint_every", "log",
                                         "precision", "compile"))
    args = p.parse_args(["--clip-grad", "5", "--lr-schedule", "cosine", "--warmup-steps", "100", "--ema", "0.999",
                         "--checkpoint-every", "500", "--log", "jsonl", "--precision", "bf16", "--compile"])
    got = TrainOptions(**{k: v for k, v in vars(args).items()}).to_json()
    assert (got["ema"], got["precision"], got["compile"]) == (0.999, "bf16", True)
    with pytest.raises(SystemExit):
        p.parse_args(["--ema", "1.5"])
    assert "--ema must be from 0" in capsys.readouterr().err


# ---- text: tokens per second, and the sentence VAE's clipping by the trainer ---------------------------

def test_a_text_run_reports_tokens_per_second(tmp_path):
    from genlab.data.text.batches import TextBatches, encode_lines
    from genlab.data.text.vocab import build_vocab
    from genlab.models.latent.sentence_vae import SentenceVAE, SentenceVAEConfig

    lines = [f"the {a} {b} on the {c}" for a in ("cat", "dog", "fox") for b in ("sat", "ran") for c in ("mat", "log")]
    info = build_vocab(lines, "word", min_count=1, max_len=10)
    assert SentenceVAE.default_train == {"clip_grad": 5.0}
    opts = TrainOptions.from_json({**SentenceVAE.default_train, "epochs": 2, "batch_size": 4, "samples": 2})
    torch.manual_seed(0)
    model = SentenceVAE(SentenceVAEConfig(embed_dim=8, hidden=16, latent_dim=2), info)
    run = Run.create(tmp_path / "run", {"model": "sentence-vae", "config": {}, "info": info.to_json(),
                                        "data": {"spec": "x"}, "train": opts.to_json()})
    ids, _ = encode_lines(info, lines)

    def write_lines(model, stem, n, generator):
        path = stem.with_suffix(".txt")
        path.write_text("".join(s + "\n" for s in model.sample_text(n, generator=generator)))
        return path

    trainer = Trainer(model, run, TextBatches(ids, batch_size=4, shuffle=True), TextBatches(ids, batch_size=4,
                      shuffle=False), opts, write_samples=write_lines, unit="line", quiet=True)
    norms = []
    spy_on_steps(trainer, lambda opt: norms.append(grad_norm(opt)))
    rows = trainer.fit()
    assert max(norms) <= 5.0 + 1e-4
    assert all(r["tokens_per_s"] > 0 and r["images_per_s"] > 0 and "kl" in r for r in rows)
    assert (tmp_path / "run" / "samples" / "epoch-0002.txt").read_text().count("\n") == 2
