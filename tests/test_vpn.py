"""The video pixel network, built tiny: causality proven by gradients (no pixel depends on later pixels of
its frame or on later frames), exact normalisation, cached generation giving the very clips naive
generation gives, continuation that keeps what it is given, learning on clips of its own making beyond
both baselines, and the commands on a tiny run."""
import itertools
import json

import numpy as np
import pytest
import torch
from PIL import Image

from genlab.cli import main
from genlab.data.containers.batch import Batch
from genlab.data.containers.base import DataInfo
from genlab.data.containers.video import VideoInfo, clip_gif
from genlab.models import get_model_class

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = dict(encoder_channels=4, encoder_blocks=1, lstm_channels=4, decoder_channels=4, decoder_layers=2,
            first_kernel=3, kernel=3, head=4)
R = TINY["first_kernel"] // 2 + (TINY["decoder_layers"] - 1) * (TINY["kernel"] // 2)   # the decoder's reach


def build(info, dtype=torch.float64, **extra):
    torch.manual_seed(0)
    cls = get_model_class("vpn")
    return cls(cls.Config(**{**TINY, **extra}), info).to(dtype)


# ---- causality ------------------------------------------------------------------------------------

def test_no_pixel_depends_on_later_pixels_of_its_frame_or_on_later_frames():
    """dep[(t, r, c), (s, r2, c2)]: do pixel (r, c) of frame t's logits depend on pixel (r2, c2) of frame s?
    Never for a later frame, nor for the pixel itself or a later one of its own frame. Within its frame,
    exactly the gated PixelCNN's field (rows r-R … r-1 at columns c-R … c+R, and the row's pixels c-R …
    c-1: no blind spot); and every earlier frame, through the LSTM, is seen."""
    t_len, h, w = 4, 5, 6
    model = build(VideoInfo(frames=t_len, height=h, width=w, context=1))
    inp = torch.randn(16, t_len, h, w, dtype=torch.float64, requires_grad=True)
    out = model(inp)
    positions = list(itertools.product(range(t_len), range(h), range(w)))
    dep = torch.zeros(len(positions), len(positions), dtype=torch.bool)
    for i, (t, r, c) in enumerate(positions):
        g, = torch.autograd.grad(out[:, t, r, c].sum(), inp, retain_graph=True)
        dep[i] = (g.abs().sum(0) != 0).flatten()
    assert not dep.triu().nonzero().tolist(), "a pixel sees itself, a later pixel of its frame or a later frame"
    for i, (t, r, c) in enumerate(positions):
        for j, (s, r2, c2) in enumerate(positions):
            if s == t:
                expected = (r - R <= r2 < r and abs(c2 - c) <= R) or (r2 == r and c - R <= c2 < c)
                assert bool(dep[i, j]) == expected, ((t, r, c), (s, r2, c2))
        for s in range(t):                       # every earlier frame reaches it, the first one too
            assert bool(dep[i, s * h * w:(s + 1) * h * w].any()), ((t, r, c), s)
        if t > 0:                                # and the same pixel of the frame before, directly
            assert bool(dep[i, ((t - 1) * h + r) * w + c])


# ---- exact likelihood -----------------------------------------------------------------------------

def test_probabilities_normalise():
    """All 2^12 clips of 3 frames of 2×2: the joint probabilities sum to one, and so do the probabilities
    of the scored frames given each context (log_prob, the figure evaluated)."""
    model = build(VideoInfo(frames=3, height=2, width=2, context=1))
    clips = torch.tensor(list(itertools.product([0.0, 1.0], repeat=12)), dtype=torch.float64).view(-1, 3, 2, 2)
    with torch.no_grad():
        frames = model.frame_log_probs(clips)
        scored = model.log_prob(clips)
    assert abs(float(torch.logsumexp(frames.sum(1), 0))) < 1e-9
    assert torch.allclose(scored, frames[:, 1:].sum(1))
    given_first = torch.logsumexp(scored.view(16, 256), 1)       # clips ordered by their first frame
    assert torch.allclose(given_first, torch.zeros(16, dtype=torch.float64), atol=1e-9)
    # each frame given the ones before it normalises on its own: frame 2 given each (frame 0, frame 1)
    assert torch.allclose(torch.logsumexp(frames[:, 2].view(256, 16), 1), torch.zeros(256, dtype=torch.float64),
                          atol=1e-9)


# ---- generation -----------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_cached_generation_gives_the_clips_naive_generation_gives(dtype):
    model = build(VideoInfo(frames=3, height=5, width=6, context=1), dtype).eval()
    g = lambda: torch.Generator().manual_seed(5)  # noqa: E731
    cached, naive = model.sample(4, generator=g()), model.sample(4, generator=g(), cached=False)
    assert torch.equal(cached, naive) and cached.shape == (4, 3, 5, 6)
    assert set(cached.unique().tolist()) <= {0.0, 1.0}
    assert not torch.equal(cached, model.sample(4, generator=torch.Generator().manual_seed(6)))
    assert model.sample(2, generator=g(), frames=5).shape == (2, 5, 5, 6)


def test_a_continuation_keeps_the_given_frames():
    model = build(VideoInfo(frames=4, height=5, width=6, context=2)).eval()
    given = (torch.rand(3, 2, 5, 6, generator=torch.Generator().manual_seed(0)) < 0.5).double()
    clips = model.continue_clips(given, 3, generator=torch.Generator().manual_seed(1))
    assert clips.shape == (3, 5, 5, 6) and torch.equal(clips[:, :2], given)
    naive = model.continue_clips(given, 3, generator=torch.Generator().manual_seed(1), cached=False)
    assert torch.equal(clips, naive)


# ---- learning -------------------------------------------------------------------------------------

def moving_squares(n, frames=6, side=8, seed=0):
    """Clips of its own making: a 2×2 square at a random place moving one pixel a frame in one of four
    directions, wrapping round the frame's edges."""
    g = torch.Generator().manual_seed(seed)
    y, x = torch.randint(0, side, (2, n), generator=g)
    d = torch.tensor([[0, 1], [0, -1], [1, 0], [-1, 0]])[torch.randint(0, 4, (n,), generator=g)]
    clips = torch.zeros(n, frames, side, side)
    for i in range(n):
        for t in range(frames):
            r, c = int(y[i] + t * d[i, 0]), int(x[i] + t * d[i, 1])
            for a, b in itertools.product(range(2), repeat=2):
                clips[i, t, (r + a) % side, (c + b) % side] = 1
    return clips


def copy_and_independent(train, test, k):
    """Nats per scored frame of the two baselines, by their formulas: each pixel as before, flipped with
    the training split's rates; each pixel on its own with its training frequency."""
    before, now = train[:, k - 1:-1].long(), train[:, k:].long()
    counts = torch.ones(2, 2, dtype=torch.float64)
    for a, b in itertools.product(range(2), repeat=2):
        counts[a, b] += float(((before == a) & (now == b)).sum())
    rates = counts / counts.sum(1, keepdim=True)
    copy = -rates.log()[test[:, k - 1:-1].long(), test[:, k:].long()].sum() / (len(test) * (test.shape[1] - k))
    p = (train.sum((0, 1)).double() + 1) / (train.shape[0] * train.shape[1] + 2)
    x = test[:, k:].double()
    indep = -(x * p.log() + (1 - x) * (1 - p).log()).sum() / (len(test) * (test.shape[1] - k))
    return float(copy), float(indep)


def test_a_tiny_vpn_learns_motion_beyond_both_baselines():
    train, test = moving_squares(96), moving_squares(32, seed=1)
    info = VideoInfo(frames=6, height=8, width=8, context=2)
    cls = get_model_class("vpn")
    torch.manual_seed(0)
    model = cls(cls.Config(encoder_channels=8, encoder_blocks=1, lstm_channels=8, decoder_channels=8,
                           decoder_layers=2, first_kernel=3, head=16), info)
    opt = model.configure_optimizers(1e-2)
    with torch.no_grad():
        before = float(-model.log_prob(test).mean()) / info.predicted
    for step in range(120):
        b = torch.randperm(96, generator=torch.Generator().manual_seed(step))[:16]
        model.train_step(Batch(train[b]), opt)
    with torch.no_grad():
        after = float(-model.log_prob(test).mean()) / info.predicted
    copy, indep = copy_and_independent(train, test, info.context)
    assert after < 0.5 * min(copy, indep) < before, (before, after, copy, indep)


# ---- the commands -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A tiny run on a folder of GIFs of moving squares, trained through the command line."""
    root = tmp_path_factory.mktemp("vpn")
    (root / "clips").mkdir()
    for i, clip in enumerate(moving_squares(20, frames=6)):
        clip_gif(root / "clips" / f"{i:02d}.gif", clip)
    out = root / "run"
    assert main(["train", "vpn", "--data", f"video:{root / 'clips'}", "--epochs", "1", "--samples", "2",
                 "--threads", "1", "--out", str(out), *sum((["--set", f"{k}={v}"] for k, v in TINY.items()), [])]) == 0
    return out


def gif_frames(path) -> int:
    with Image.open(path) as im:
        return im.n_frames


def test_training_writes_clips_and_eval_reports_both_baselines(run, capsys):
    gif, = (run / "samples").glob("*.gif")
    assert gif_frames(gif) == 6 and gif.with_suffix(".png").read_bytes()[:4] == b"\x89PNG"
    assert main(["eval", str(run), "--json", "--threads", "1"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["context_frames"] == 3 and r["scored_frames"] == 3 and r["test_clips"] == 2
    for name in ("nll", "copy_last_frame", "independent"):
        assert r[f"{name}_nats_per_frame"] * 3 == pytest.approx(r[f"{name}_nats"])
    assert r["baseline_nll_nats"] == r["independent_nats"]
    assert main(["eval", str(run), "--threads", "1"]) == 0
    table = capsys.readouterr().out
    assert "nats/frame" in table and "copy" in table


def test_sample_continues_held_out_clips(run, tmp_path, capsys):
    out = tmp_path / "clip.gif"
    assert main(["sample", str(run), "-n", "2", "--frames", "4", "--context", "2", "-o", str(out),
                 "--threads", "1"]) == 0
    assert gif_frames(out) == 6 and out.with_suffix(".png").is_file()
    first = [np.asarray(f.convert("RGB")) for f in _frames(out)]
    again = tmp_path / "again.gif"
    assert main(["sample", str(run), "-n", "2", "--frames", "4", "--context", "2", "-o", str(again),
                 "--threads", "1"]) == 0
    assert all(np.array_equal(a, b) for a, b in zip(first, [np.asarray(f.convert("RGB")) for f in _frames(again)]))
    capsys.readouterr()
    for bad in (["--context", "6"], ["--context", "0"], ["--frames", "101"], ["-o", str(tmp_path / "c.mp4")],
                ["--nrow", "2"], ["-n", "3"]):
        assert status(["sample", str(run), *bad, "--threads", "1"]) == 2
    err = [line for line in capsys.readouterr().err.strip().splitlines() if not line.startswith("usage:")]
    assert len(err) == 6 and all(line.startswith("genlab: error: ") for line in err), err


def test_an_image_run_refuses_the_video_options(tmp_path, capsys):
    cls = get_model_class("pixelcnn")
    cls(cls.Config(channels=4, blocks=1, head=4, kernel=3), DataInfo((1, 4, 4), 0, "binary")).save_pretrained(
        tmp_path / "image")
    assert main(["sample", str(tmp_path / "image"), "--frames", "3", "-o", str(tmp_path / "s.png")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--frames is for video models" in err[0]


def status(argv) -> int:
    """main's exit status, a usage error that argparse exits with included."""
    try:
        return main(argv)
    except SystemExit as e:
        return e.code


def _frames(path):
    with Image.open(path) as im:
        out = []
        for i in range(im.n_frames):
            im.seek(i)
            out.append(im.copy())
        return out
