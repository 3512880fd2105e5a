"""Sample quality of video (`genlab eval --metrics continuation,fid`): the digits of hand-made frames found at
their exact centroids and matched by place whatever their order; a "model" that draws the true future
reads the same and sits where the truth is at every frame ahead, while copying the last frame falls behind
moving digits by their motion; the real pipeline on a tiny untrained vpn of moving-mnist-32; one line for
what cannot be judged."""
import json

import numpy as np
import pytest
import torch

from genlab import modalities
from genlab.cli import main
from genlab.data.containers.base import DataInfo
from genlab.data.containers.video import VideoDataset, VideoInfo, clip_gif
from genlab.data.sources import mnist
from genlab.evaluation.continuation import ContinuationQuality, DigitJudge, better
from genlab.evaluation.digits import find_digits, match
from genlab.evaluation.features import FeatureNetwork
from genlab.models import get_model_class

from conftest import refused

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = dict(encoder_channels=4, encoder_blocks=1, lstm_channels=4, decoder_channels=4, decoder_layers=2,
            first_kernel=3, kernel=3, head=4)
SIDE = 32


def frame(*digits) -> np.ndarray:
    """A SIDE×SIDE frame of rectangles "digits": (top, left, height, width) each."""
    f = np.zeros((SIDE, SIDE), np.uint8)
    for top, left, h, w in digits:
        f[top:top + h, left:left + w] = 1
    return f


# ---- finding and matching -------------------------------------------------------------------------

def test_two_digits_are_found_at_their_exact_centroids():
    found = find_digits(frame((2, 3, 9, 5), (20, 22, 7, 3)), side=14)
    assert np.allclose(found.centres, [[6, 5], [23, 23]])            # the larger first
    assert found.crops.shape == (2, 14, 14) and found.crops[0].sum() == 45 and found.crops[1].sum() == 21
    # the crop holds its own digit only, centred on it
    assert found.crops[0][2:11, 5:10].all()


def test_a_digit_broken_in_pieces_is_one_digit_and_overlapping_digits_are_two():
    broken = frame((4, 4, 5, 3), (10, 4, 3, 3), (20, 20, 8, 4))       # a stroke's gap of one pixel row
    found = find_digits(broken, side=14)
    assert np.allclose(found.centres, [[23.5, 21.5], [(15 * 6 + 9 * 11) / 24, 5]])   # the pieces' pixels together
    touching = find_digits(frame((10, 2, 6, 10), (12, 11, 6, 10)), side=14)   # one blob 19 px wide
    assert len(touching.centres) == 2
    assert np.abs(np.sort(touching.centres[:, 1]) - [6.5, 15.5]).max() < 1
    assert len(find_digits(np.zeros((SIDE, SIDE)), side=14).centres) == 0
    assert len(find_digits(frame((3, 3, 1, 2)), side=14).centres) == 0      # a speck is no digit


def test_drawn_digits_are_matched_to_true_ones_by_place():
    a, b = (3, 3, 8, 4), (20, 18, 8, 5)
    truth = find_digits(frame(a, b), side=14).centres
    swapped = find_digits(frame(b, a), side=14).centres[::-1].copy()
    assert list(match(truth, swapped)) == [1, 0]
    assert list(match(truth, truth[:1])) == [0, 0]                   # one drawn blob: both true digits on it
    assert list(match(truth, np.zeros((0, 2)))) == [-1, -1]


# ---- the figures ----------------------------------------------------------------------------------

def moving(n=6, frames=8, step=2):
    """Clips of two rectangles moving `step` px a frame, one right, one down (never touching)."""
    out = np.zeros((n, frames, SIDE, SIDE), np.uint8)
    for i in range(n):
        for t in range(frames):
            out[i, t] = frame((2 + i, 1 + step * t, 8, 4 + i % 3), (1 + step * t, 24, 6, 5))
    return out


def reader() -> FeatureNetwork:
    """Reads a crop as its count of on pixels mod 10: the same digit reads the same."""
    def forward(x):
        counts = x.flatten(1).sum(1).round().long() % 10
        return x.flatten(1)[:, :8], torch.nn.functional.one_hot(counts, 10).float()
    return FeatureNetwork("pixel counter", forward, torch.device("cpu"))


class Truth:
    side, labels, centres = 14, None, None
    mnist = type("Shape", (), {"shape": (1, 14, 14)})()


class TrueFuture:
    """A "model" that continues every clip with its true next frame."""
    name, device = "oracle", torch.device("cpu")

    def __init__(self, clips, context):
        self.clips, self.info = torch.from_numpy(clips).float(), VideoInfo(clips.shape[1], SIDE, SIDE, context)

    def continue_clips(self, given, frames, generator=None):
        at = [int(np.flatnonzero([torch.equal(g[0], c[0]) for c in self.clips])[0]) for g in given]
        t = given.shape[1]
        return torch.cat([given, self.clips[at, t:t + frames]], 1)


def test_the_true_future_reads_the_same_and_sits_where_the_truth_is_while_copying_falls_behind(tmp_path):
    clips = moving()
    ds = VideoDataset.from_clips("squares", clips, clips, context=3)
    quality = ContinuationQuality(["continuation"], 6, None, "cpu", digits=lambda d: Truth())
    quality.judges["h"] = DigitJudge(ds, Truth(), reader())
    out = quality.report(TrueFuture(clips, 3), tmp_path, "h", ds, None, False)["continuation"]
    assert out["clips"] == 6 and out["frames_ahead"] == 5 and (tmp_path / "continuations.png").is_file()
    for k, row in enumerate(out["per_frame_ahead"], 1):
        assert row["model_read_same"] == 1 and row["model_position_error"] == pytest.approx(0, abs=1e-12)
        assert row["copy_position_error"] == pytest.approx(2 * k)          # each digit moved 2 px a frame
        assert row["better_position_error"] == "model" and row["model_digits_found"] == 2
    assert out["beats_copying_at"]["position_error"] == [1, 2, 3, 4, 5]
    assert out["truth_read_as_labels"] is None


def test_the_verdict_needs_a_difference_beyond_its_noise():
    rng = np.random.RandomState(0)
    noise = rng.randn(50)
    assert better(noise + 5, noise, higher=True) == "model"
    assert better(noise + 5, noise, higher=False) == "copy"
    assert better(noise + rng.randn(50), noise, higher=True) == "even"


# ---- the command ---------------------------------------------------------------------------------

@pytest.mark.skipif(not mnist.cache_path().is_file(), reason="mnist is not cached here (genlab data fetch mnist)")
def test_an_untrained_vpn_of_moving_mnist_through_genlab_eval(tmp_path, capsys):
    """A tiny vpn, untrained, saved as a run of moving-mnist-32 (training one epoch of it is a minute)."""
    cls, video = get_model_class("vpn"), modalities.get("video")
    ds = video.load("moving-mnist-32", {})
    config = cls.Config(**TINY)
    info, record = video.prepare(ds, cls, config, {"spec": "moving-mnist-32"})
    torch.manual_seed(0)
    run = tmp_path / "run"
    cls(config, info).save_pretrained(run)
    saved = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**saved, "data": record}))

    assert main(["eval", str(run), "--metrics", "continuation,fid", "--samples", "4", "--threads", "1"]) == 0
    table = capsys.readouterr().out
    for heading in ("ahead", "read: model", "read: copy", "px: model", "px: copy", "px: centre", "frame FID",
                    "real vs real floor", "beats copying", "ceiling"):
        assert heading in table, heading
    r = json.loads((run / "eval.json").read_text())
    c = r["continuation"]
    assert c["clips"] == 4 and c["context"] == 10 and c["frames_ahead"] == 10 and len(c["per_frame_ahead"]) == 10
    assert 0 <= c["truth_read_as_labels"] <= 1 and (run / "continuations.png").is_file()
    assert r["frame_fid"] > r["frame_fid_floor"] >= 0 and r["frame_fid_frames"] == 40

    refused(capsys, ["eval", run, "--metrics", "continuation", "--samples", "501", "--threads", "1"], "500 test clips")
    refused(capsys, ["eval", run, "--metrics", "continuation", "--features", "x.pt", "--threads", "1"], "--features")
    refused(capsys, ["eval", run, "--metrics", "kid", "--threads", "1"], "continuation, fid")


def test_runs_that_cannot_be_judged_so_are_refused_in_one_line(tmp_path, capsys):
    pixelcnn = get_model_class("pixelcnn")
    pixelcnn(pixelcnn.Config(channels=4, blocks=1, head=4, kernel=3), DataInfo((1, 4, 4), 0, "binary")).save_pretrained(
        tmp_path / "image")
    refused(capsys, ["eval", tmp_path / "image", "--metrics", "continuation"], "continuation", "image runs have")

    # clips of the user's own hold no known digits
    (tmp_path / "clips").mkdir()
    for i, clip in enumerate(moving(4, frames=4)):
        clip_gif(tmp_path / "clips" / f"{i}.gif", clip)
    cls, video = get_model_class("vpn"), modalities.get("video")
    spec = f"video:{tmp_path / 'clips'}"
    ds = video.load(spec, {})
    info, record = video.prepare(ds, cls, cls.Config(**TINY), {"spec": spec})
    cls(cls.Config(**TINY), info).save_pretrained(tmp_path / "folder")
    saved = json.loads((tmp_path / "folder" / "config.json").read_text())
    (tmp_path / "folder" / "config.json").write_text(json.dumps({**saved, "data": record}))
    refused(capsys, ["eval", tmp_path / "folder", "--metrics", "continuation", "--threads", "1"], "no known digits")
