"""Captions with meaning (data/captions/): the attributes measured on hand-made images, the grammar that
writes them (every caption read back to its class and attributes, in varied words), the combinations held
out, and the user's own captions (`captions:FILE`), whose faults are one line and exit status 2."""
import random

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import refused
from genlab.data import load_dataset
from genlab.data.captions.batches import split_captions, token_ids
from genlab.data.captions.file import load_caption_file
from genlab.data.captions.grammar import (CLOTHES, DIGIT_ATTRIBUTES, HIGH, LOW, MID, THING_ATTRIBUTES, Scheme,
                                          levels_of, parse_holdout, scheme_for, thresholds)
from genlab.data.captions.measures import area, brightness, size, slant, stroke_width, width
from genlab.data.containers.base import ImageDataset
from genlab.data.sources.fashion_mnist import CLASS_NAMES as FASHION_CLASSES
from genlab.data.text.vocab import UNK
from genlab.errors import UserError

pytestmark = pytest.mark.usefixtures("one_thread")


def canvas(*shapes, side=28, value=255):
    """One 1×1×side×side uint8 image with the given (rows, cols) index arrays inked."""
    x = torch.zeros(1, 1, side, side, dtype=torch.uint8)
    for rows, cols in shapes:
        x[0, 0, rows, cols] = value
    return x


def bar(width, top=6, length=16, left=12):
    rows, cols = np.meshgrid(np.arange(top, top + length), np.arange(left, left + width), indexing="ij")
    return torch.from_numpy(rows.ravel()), torch.from_numpy(cols.ravel())


def sheared_bar(shift_per_row, width=2, top=4, length=20, left=8):
    """A bar whose columns move right by `shift_per_row` for each row up (a stroke leaning right)."""
    rows, cols = [], []
    for y in range(top, top + length):
        x0 = left + int(round(shift_per_row * (top + length - 1 - y)))
        for dx in range(width):
            rows.append(y)
            cols.append(x0 + dx)
    return torch.tensor(rows), torch.tensor(cols)


def disc(radius, centre=14):
    ys, xs = np.mgrid[0:28, 0:28]
    inside = (ys - centre) ** 2 + (xs - centre) ** 2 <= radius ** 2
    return torch.from_numpy(ys[inside]), torch.from_numpy(xs[inside])


# ---- the measurements, on hand-made images -------------------------------------------------------------

def test_stroke_width_is_the_width_of_an_upright_bar_and_ranks_slanted_strokes():
    for w in (1, 2, 4, 6):                      # exact for an upright rectangle of any length
        assert float(stroke_width(canvas(bar(w)))) == pytest.approx(w, abs=1e-9)
    thin, thick = stroke_width(canvas(sheared_bar(0.5, width=2))), stroke_width(canvas(sheared_bar(0.5, width=5)))
    assert float(thick) > float(thin) + 1.5
    assert float(stroke_width(torch.zeros(1, 1, 8, 8, dtype=torch.uint8))) == 0      # a blank image: no stroke


def test_slant_is_zero_upright_and_the_shear_of_a_leaning_stroke_either_way():
    assert float(slant(canvas(bar(3)))) == pytest.approx(0, abs=1e-9)
    right = float(slant(canvas(sheared_bar(0.5))))
    left = float(slant(torch.flip(canvas(sheared_bar(0.5)), dims=[3])))
    assert right == pytest.approx(0.5, abs=0.03) and left == pytest.approx(right, abs=1e-9)
    assert float(slant(canvas(sheared_bar(0.25)))) == pytest.approx(0.25, abs=0.03)


def test_size_is_the_radius_of_gyration():
    small, large = float(size(canvas(disc(3)))), float(size(canvas(disc(9))))
    assert small == pytest.approx(3 / 2 ** 0.5, rel=0.1) and large == pytest.approx(9 / 2 ** 0.5, rel=0.05)


def test_brightness_area_and_width_of_hand_made_garments():
    grey, white = canvas(bar(6), value=128), canvas(bar(6))
    assert float(brightness(grey)) == pytest.approx(128 / 255) and float(brightness(white)) == pytest.approx(1)
    assert float(area(canvas(bar(4, length=4)))) == pytest.approx(16 / 784)
    assert float(area(canvas(bar(10, length=10, left=2)))) == pytest.approx(100 / 784)
    narrow, wide = float(width(canvas(bar(4)))), float(width(canvas(bar(12, left=8))))
    # √(w² − 1): the spread of w whole pixels, a rectangle's width less a little
    assert narrow == pytest.approx((4 ** 2 - 1) ** 0.5) and wide == pytest.approx((12 ** 2 - 1) ** 0.5)
    assert float(width(grey)) == pytest.approx(float(width(white)))               # the shape's, not its shade


def test_levels_are_thirds_of_each_class_on_the_training_split():
    values = torch.tensor([[v] for v in range(1, 10)] + [[10.0 * v] for v in range(1, 10)], dtype=torch.float64)
    labels = torch.tensor([0] * 9 + [1] * 9)
    cuts = thresholds(values, labels, 2)
    levels = levels_of(values, labels, cuts)[:, 0].tolist()
    assert levels == [LOW] * 3 + [MID] * 3 + [HIGH] * 3 + [LOW] * 3 + [MID] * 3 + [HIGH] * 3   # each its own class
    # A new image is placed by the training split's thirds of its class: 5 is large for class 0, small for 1.
    assert levels_of(torch.tensor([[8.5], [8.5]], dtype=torch.float64), torch.tensor([0, 1]), cuts)[:, 0].tolist() \
        == [HIGH, LOW]


# ---- the grammar ---------------------------------------------------------------------------------------

def schemes():
    digits = scheme_for(load_dataset("digits"))
    fashion = ImageDataset("fashion-mnist", torch.zeros(2, 1, 4, 4, dtype=torch.uint8),
                           torch.zeros(1, 1, 4, 4, dtype=torch.uint8), torch.tensor([0, 1]), torch.tensor([0]),
                           class_names=FASHION_CLASSES)
    folder = ImageDataset("folder:x", torch.zeros(2, 1, 4, 4, dtype=torch.uint8),
                          torch.zeros(1, 1, 4, 4, dtype=torch.uint8), torch.tensor([0, 1]), torch.tensor([0]),
                          class_names=("Cat", "Dog house"))
    return {"digits": digits, "clothes": scheme_for(fashion), "things": scheme_for(folder)}


@pytest.mark.parametrize("name", ["digits", "clothes", "things"])
def test_every_caption_reads_back_to_its_class_and_attributes(name):
    scheme = schemes()[name]
    assert scheme.name == name
    rng = random.Random(0)
    combos = [(a, b, c) for a in (LOW, MID, HIGH) for b in (LOW, MID, HIGH) for c in (LOW, MID, HIGH)]
    for label in range(len(scheme.nouns)):
        for levels in combos:
            for _ in range(8):
                caption = scheme.caption(label, levels, rng)
                assert scheme.parse(caption) == (label, levels), caption
                assert UNK not in token_ids(scheme.vocabulary(), [caption])[0].tolist(), caption  # every word known


def test_captions_are_worded_in_many_ways():
    scheme = schemes()["digits"]
    rng = random.Random(1)
    thick_slanted_seven = {scheme.caption(7, (MID, HIGH, HIGH), rng) for _ in range(300)}
    assert len(thick_slanted_seven) >= 30, thick_slanted_seven
    assert any("7" in c.split() for c in thick_slanted_seven) and any("seven" in c for c in thick_slanted_seven)
    assert {scheme.caption(3, (LOW, MID, LOW), rng) for _ in range(300)} >= {"a small upright 3"}
    # The examples of the issue read as they should.
    assert scheme.parse("a thick, slanted seven") == (7, (MID, HIGH, HIGH))
    assert scheme.parse("a small upright 3") == (3, (LOW, MID, LOW))
    assert scheme.parse("an eight that is bold")[0] == 8 and scheme.parse("a thick one")[0] == 1
    assert scheme.parse("a thick thing") == (None, (MID, HIGH, MID))          # no class named
    clothes = schemes()["clothes"]
    assert clothes.parse("a bright t-shirt")[0] == 0 and clothes.parse("a dark shirt")[0] == 6   # the longest noun
    assert clothes.parse("an ankle boot")[0] == 9 and clothes.plain(9) == "an ankle boot"


def test_written_captions_say_the_class_and_what_is_measured_of_each_image():
    ds = load_dataset("digits")
    scheme = scheme_for(ds)
    train, _ = split_captions(ds, {})
    said = [scheme.parse(c) for c in train.lines(list(range(len(ds.train_x))), random.Random(0))]
    assert [label for label, _ in said] == ds.train_y.tolist()
    measured = scheme.measure(ds.train_x)
    for a in range(len(scheme.attributes)):
        levels = torch.tensor([lv[a] for _, lv in said])
        for k in range(10):                              # within each class: "thick" ones are thicker than "thin"
            mine = ds.train_y == k
            high, low = measured[mine & (levels == HIGH), a], measured[mine & (levels == LOW), a]
            assert len(high) >= 20 and len(low) >= 20
            assert float(high.min()) > float(low.max())


def test_held_out_combinations_are_never_said_in_training():
    ds = load_dataset("digits")
    scheme = scheme_for(ds)
    held = parse_holdout(scheme, "thick 7, small three")
    assert held == ((7, 1, HIGH), (3, 0, LOW))
    train, test = split_captions(ds, {"holdout": "thick 7, small three"})
    for split, n in ((train, len(ds.train_x)), (test, len(ds.test_x))):
        said = [scheme.parse(c) for c in split.lines(list(range(n)), random.Random(0))]
        assert not any(label == 7 and lv[1] == HIGH for label, lv in said)
        assert not any(label == 3 and lv[0] == LOW for label, lv in said)
        assert any(label == 7 and lv[1] == LOW for label, lv in said)            # the rest is still said
        assert any(label != 7 and lv[1] == HIGH for label, lv in said)           # and "thick" of other digits
    for bad in ("7", "thick", "thick slanted 7", "a thick seven and a thin two"):
        with pytest.raises(UserError, match="holdout"):
            parse_holdout(scheme, bad)


def test_unlabelled_images_have_no_captions_to_write():
    with pytest.raises(UserError, match="captions:FILE"):
        scheme_for(ImageDataset("pokemon", torch.zeros(2, 3, 4, 4, dtype=torch.uint8),
                                torch.zeros(1, 3, 4, 4, dtype=torch.uint8)))


def test_two_classes_of_one_name_are_refused():
    with pytest.raises(UserError, match="both called"):
        Scheme("things", (("cat",), ("Cat",)), THING_ATTRIBUTES)
    assert Scheme("digits", tuple((str(k),) for k in range(10)), DIGIT_ATTRIBUTES).parse("a 7")[0] == 7
    assert len(CLOTHES) == 10


# ---- captions:FILE -------------------------------------------------------------------------------------

def write_captioned(folder, n=12):
    """n 8×8 PNGs, image i all of grey level 20·i, captioned "shade i" (path relative to the file)."""
    (folder / "img").mkdir(parents=True, exist_ok=True)
    lines = []
    for i in range(n):
        Image.fromarray(np.full((8, 8), 20 * i, dtype=np.uint8)).save(folder / "img" / f"{i}.png")
        lines.append(f"img/{i}.png\tshade {i}")
    f = folder / "captions.txt"
    f.write_text("\n".join(lines[:6]) + "\n\n" + "\n".join(lines[6:]) + "\n")
    return f


def test_a_caption_file_pairs_each_image_with_its_caption(tmp_path):
    ds = load_caption_file(str(write_captioned(tmp_path)))
    assert ds.shape == (1, 8, 8) and len(ds.train_x) + len(ds.test_x) == 12 and len(ds.test_x) == 1
    for x, caption in zip(torch.cat([ds.train_x, ds.test_x]), ds.train_captions + ds.test_captions):
        assert caption == f"shade {int(x[0, 0, 0]) // 20}"
    again = load_caption_file(str(tmp_path / "captions.txt"))
    assert again.content_hash() == ds.content_hash()
    (tmp_path / "captions.txt").write_text((tmp_path / "captions.txt").read_text().replace("shade 3", "shade three"))
    assert load_caption_file(str(tmp_path / "captions.txt")).content_hash() != ds.content_hash()  # captions count


@pytest.mark.parametrize("fault, words", [
    ("missing", ["does not exist", "nothere.txt"]),
    ("no tab", ["line 2", "no tab"]),
    ("empty caption", ["line 1", "caption", "empty"]),
    ("no path", ["line 1", "no image path"]),
    ("missing image", ["line 3", "gone.png", "does not exist"]),
    ("one image", ["at least 2"]),
    ("endless caption", ["line 2", "100,000 words", "at most 64"]),
])
def test_a_bad_caption_file_is_one_line_and_exit_2(tmp_path, capsys, fault, words):
    f = write_captioned(tmp_path)
    good = f.read_text().splitlines()
    lines = {"no tab": [good[0], "img/1.png shade 1"],
             "empty caption": ["img/0.png\t   ", good[1]],
             "no path": ["\tshade 0", good[1]],
             "missing image": [good[0], good[1], "img/gone.png\tshade 9"],
             "one image": [good[0]],
             "endless caption": [good[0], "img/1.png\t" + "thick " * 100_000, good[2]]}.get(fault)
    if lines is not None:
        f.write_text("\n".join(lines) + "\n")
    spec = f"captions:{tmp_path / 'nothere.txt'}" if fault == "missing" else f"captions:{f}"
    refused(capsys, ["train", "text2img", "--data", spec, "--epochs", "1", "--out", tmp_path / "run"], *words)
    assert not (tmp_path / "run").exists()
