"""Video data: Moving MNIST's construction against its definition (the trajectories, the pasting, the
halved digits, and built from the real digits when mnist is here: every test clip made of two test digits),
clips packed and batched, the Info saved in config.json, GIF files and folders of them (bad ones refused
with one line), and the two baselines checked by brute force."""
import itertools
import math

import numpy as np
import pytest
import torch
from PIL import Image

from genlab import modalities
from genlab.cli import main
from genlab.data.containers.info import info_from_json
from genlab.data.containers.video import VideoBatches, VideoDataset, VideoInfo, clip_gif, load_folder, read_gif
from genlab.data.sources import mnist, moving_mnist
from genlab.errors import UserError
from genlab.modalities.video import copy_last_nll, copy_rates, independent_nll, pixel_marginals

pytestmark = pytest.mark.usefixtures("one_thread")


# ---- Moving MNIST's construction ----------------------------------------------------------------------

def test_trajectories_keep_their_speed_and_bounce_inside_the_frame():
    ys, xs = moving_mnist.trajectories(np.random.RandomState(3), 400, frames=20)
    assert ys.min() >= 0 and ys.max() <= 1 and xs.min() >= 0 and xs.max() <= 1
    dy, dx = np.diff(ys, axis=1), np.diff(xs, axis=1)
    inside = (ys[:, 1:] > 0) & (ys[:, 1:] < 1) & (xs[:, 1:] > 0) & (xs[:, 1:] < 1) & \
             (ys[:, :-1] > 0) & (ys[:, :-1] < 1) & (xs[:, :-1] > 0) & (xs[:, :-1] < 1)
    assert np.allclose(np.hypot(dy, dx)[inside], moving_mnist.STEP)        # a tenth of the range a frame
    assert (~inside).any() and inside.mean() > 0.5
    # a bounce reverses the component that hit the edge: the step after it points back inside
    hit = np.argwhere(ys[:, 1:-1] == 0)
    assert len(hit) and all(ys[i, t + 2] > 0 for i, t in hit)


def test_digits_are_pasted_at_their_places_overlapping_by_the_maximum():
    rng = np.random.RandomState(0)
    digits = rng.randint(0, 256, (5, 2, 4, 4)).astype(np.uint8)
    tops, lefts = rng.randint(0, 7, (5, 2, 3)), rng.randint(0, 7, (5, 2, 3))
    clips = moving_mnist.render(digits, tops, lefts, side=10)
    expected = np.zeros((5, 3, 10, 10), np.uint8)
    for i, k, t, a, b in itertools.product(range(5), range(2), range(3), range(4), range(4)):
        y, x = tops[i, k, t] + a, lefts[i, k, t] + b
        expected[i, t, y, x] = max(expected[i, t, y, x], digits[i, k, a, b])
    assert np.array_equal(clips, expected)


def test_halved_digits_are_the_means_of_their_2x2_blocks():
    d = np.random.RandomState(1).randint(0, 256, (3, 28, 28)).astype(np.uint8)
    h = moving_mnist.halve(d)
    assert h.shape == (3, 14, 14)
    for i, r, c in itertools.product(range(3), range(14), range(14)):
        assert h[i, r, c] == round(d[i, 2 * r:2 * r + 2, 2 * c:2 * c + 2].astype(float).mean())


def test_a_split_is_the_same_for_the_same_seed():
    digits = np.random.RandomState(2).randint(0, 256, (30, 14, 14)).astype(np.uint8)
    a, which = moving_mnist.make_split(digits, 12, 7, 32)
    b, _ = moving_mnist.make_split(digits, 12, 7, 32)
    c, _ = moving_mnist.make_split(digits, 12, 8, 32)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert which.shape == (12, 2) and which.max() < 30


def placed(frame: np.ndarray, digit: np.ndarray) -> list[tuple[int, int]]:
    """Where a binary digit can sit in a binary frame: every place where all its on pixels are on."""
    d, side = digit.shape[0], frame.shape[0]
    return [(y, x) for y in range(side - d + 1) for x in range(side - d + 1)
            if not (digit & ~frame[y:y + d, x:x + d]).any()]


@pytest.mark.skipif(not mnist.cache_path().is_file(), reason="mnist is not cached here (genlab data fetch mnist)")
def test_moving_mnist_32_is_made_of_two_test_digits_per_test_clip():
    video = modalities.get("video")
    ds = video.load("moving-mnist-32", {})
    assert (ds.frames, ds.height, ds.width, ds.context) == (20, 32, 32, 10)
    assert (ds.count("train"), ds.count("test")) == moving_mnist.SIZES["moving-mnist-32"][2:]
    assert video.load("moving-mnist-32", {}).content_hash() == ds.content_hash()      # from its cache, the same
    clips = ds.clips("test", range(4)).numpy().astype(bool)
    assert (np.diff(clips.astype(int), axis=1) != 0).any((2, 3)).all()      # the digits move every frame
    with np.load(moving_mnist.cache_path("moving-mnist-32")) as z:
        which = z["test_digits"][:4]
    digits = moving_mnist.halve(mnist.load().test_x[:, 0].numpy()) >= 128    # mnist's test split only
    for clip, (a, b) in zip(clips, which):
        for frame in (clip[0], clip[-1]):
            # the frame is exactly the two digits pasted somewhere: nothing else is on
            assert any(np.array_equal(frame, _paste(digits[a], pa, digits[b], pb, 32))
                       for pa in placed(frame, digits[a]) for pb in placed(frame, digits[b]))


def _paste(a, pa, b, pb, side):
    out = np.zeros((side, side), bool)
    d = a.shape[0]
    out[pa[0]:pa[0] + d, pa[1]:pa[1] + d] |= a
    out[pb[0]:pb[0] + d, pb[1]:pb[1] + d] |= b
    return out


# ---- clips in memory, batches, the Info -----------------------------------------------------------------

def tiny_dataset(n_train=7, n_test=3, frames=4, side=5, seed=0) -> VideoDataset:
    g = np.random.RandomState(seed)
    return VideoDataset.from_clips("tiny", (g.rand(n_train, frames, side, side) < 0.3).astype(np.uint8),
                                   (g.rand(n_test, frames, side, side) < 0.3).astype(np.uint8))


def test_clips_come_back_from_their_packed_bits_and_batch_once_an_epoch():
    g = np.random.RandomState(0)
    train = (g.rand(7, 4, 5, 3) < 0.3).astype(np.uint8)          # 60 pixels a clip: not a multiple of 8
    ds = VideoDataset.from_clips("tiny", train, train[:2])
    assert ds.context == 2 and np.array_equal(ds.clips("train").numpy(), train)
    batches = VideoBatches(ds, "train", batch_size=3, shuffle=True, seed=1)
    seen = torch.cat([b.x for b in batches.epoch(0)])
    assert seen.dtype == torch.float32 and len(list(batches.epoch(0))) == len(batches) == 3
    rows = sorted(tuple(c.flatten().tolist()) for c in seen)
    assert rows == sorted(tuple(c.flatten().tolist()) for c in torch.from_numpy(train).float())
    again = torch.cat([b.x for b in batches.epoch(0)])
    assert torch.equal(seen, again) and not torch.equal(seen, torch.cat([b.x for b in batches.epoch(1)]))


def test_the_info_round_trips_and_a_damaged_one_is_one_line():
    info = VideoInfo(frames=20, height=32, width=32, context=10, data="moving-mnist-32")
    assert info_from_json(info.to_json()) == info
    assert (info.predicted, info.likelihood_dims) == (10, 10 * 32 * 32)
    for bad in ({"context": 20}, {"context": 0}, {"height": "32"}, {"frames": 1}, {"data": 3}):
        with pytest.raises(UserError, match="config.json"):
            info_from_json({**info.to_json(), **bad})


# ---- GIF files and folders --------------------------------------------------------------------------------

def test_a_clip_round_trips_through_a_gif(tmp_path):
    clip = tiny_dataset(frames=6).clips("train")[0]
    clip[:, 0, 0] = torch.arange(6) % 2           # no frame repeats the one before (a GIF would merge them)
    back = read_gif(clip_gif(tmp_path / "a.gif", clip))
    assert np.array_equal(back, clip.numpy())


def write_folder(root, n=10, frames=(5, 5, 5, 5, 5, 5, 5, 5, 5, 6), side=6):
    root.mkdir(exist_ok=True)
    for i in range(n):
        clip = torch.zeros(frames[i], side, side)
        for t in range(frames[i]):
            clip[t, (i + t) % side, t % side] = 1
        clip_gif(root / f"{i}.gif", clip)
    return root


def test_a_folder_of_gifs_is_split_and_cut_to_its_shortest_clip(tmp_path):
    ds = load_folder(str(write_folder(tmp_path / "clips")))
    assert (ds.count("train"), ds.count("test"), ds.frames, ds.height, ds.context) == (9, 1, 5, 6, 2)
    assert ds.notes == {"clips cut to 5 frames": 1}
    assert load_folder(str(tmp_path / "clips")).content_hash() == ds.content_hash()


def test_bad_folders_and_files_are_one_line(tmp_path):
    write_folder(tmp_path / "sizes")
    clip_gif(tmp_path / "sizes" / "odd.gif", torch.zeros(3, 7, 6))
    with pytest.raises(UserError, match="one size"):
        load_folder(str(tmp_path / "sizes"))
    write_folder(tmp_path / "one")
    Image.new("L", (6, 6)).save(tmp_path / "one" / "still.gif")
    with pytest.raises(UserError, match="one frame"):
        load_folder(str(tmp_path / "one"))
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "a.gif").write_bytes(b"GIF89a\x05\x00")
    (tmp_path / "broken" / "b.gif").write_bytes(b"not a gif")
    with pytest.raises(UserError, match="a.gif"):
        load_folder(str(tmp_path / "broken"))
    Image.new("L", (4, 4)).save(tmp_path / "still.png")
    with pytest.raises(UserError, match="not a GIF"):
        read_gif(tmp_path / "still.png")
    with pytest.raises(UserError, match="at least 2"):
        load_folder(str(write_folder(tmp_path / "lonely", n=1)))


def test_the_data_command_describes_a_folder_and_refuses_image_options(tmp_path, capsys):
    folder = write_folder(tmp_path / "clips")
    assert main(["data", f"video:{folder}", "-o", str(tmp_path / "ex.gif")]) == 0
    assert (tmp_path / "ex.gif").is_file() and (tmp_path / "ex.png").is_file()
    assert "5 frames of 6×6" in capsys.readouterr().out
    assert main(["data", f"video:{folder}", "--size", "8"]) == 2
    assert main(["train", "vpn", "--data", "digits", "--epochs", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "--size is for" in err[0] and "video" in err[1]


# ---- the baselines, by brute force --------------------------------------------------------------------------

def test_the_baselines_match_their_formulas_pixel_by_pixel():
    ds = tiny_dataset()
    train, test, k = ds.clips("train").numpy(), ds.clips("test").numpy(), ds.context
    counts = np.ones((2, 2))
    for clip, t, r, c in itertools.product(train, range(k, ds.frames), range(5), range(5)):
        counts[clip[t - 1, r, c], clip[t, r, c]] += 1
    rates = copy_rates(ds, k).numpy()
    assert np.allclose(rates, counts / counts.sum(1, keepdims=True))
    p = (train.sum((0, 1)) + 1) / (len(train) * ds.frames + 2)
    assert np.allclose(pixel_marginals(ds).numpy(), p)
    copy, indep = copy_last_nll(ds, torch.from_numpy(rates), k), independent_nll(ds, pixel_marginals(ds), k)
    for i, clip in enumerate(test):
        want_copy = want_indep = 0.0
        for t, r, c in itertools.product(range(k, ds.frames), range(5), range(5)):
            want_copy -= math.log(rates[clip[t - 1, r, c], clip[t, r, c]])
            want_indep -= math.log(p[r, c] if clip[t, r, c] else 1 - p[r, c])
        assert copy[i] == pytest.approx(want_copy) and indep[i] == pytest.approx(want_indep)
