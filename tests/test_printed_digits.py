"""`printed-digits`: digits drawn from the machine's fonts, labelled, fixed by their seed, centred like MNIST's,
learnable; fonts without digits left out; and one clear line when no font is there."""
import shutil

import numpy as np
import pytest
import torch

from genlab.cli import main
from genlab.data import load_dataset
from genlab.data.sources import printed_digits
from genlab.errors import UserError

FONTS = printed_digits.usable_fonts()
needs_fonts = pytest.mark.skipif(not FONTS, reason="no font with digits under /usr/share/fonts "
                                                  "(apt-get install fonts-dejavu-core fonts-liberation)")


@pytest.fixture(scope="module")
def small():
    return printed_digits.load(count=600)


@needs_fonts
def test_images_are_labelled_digits_of_mnists_size_split_once(small):
    assert small.train_x.shape[1:] == (1, 28, 28) and small.train_x.dtype == torch.uint8
    assert len(small.train_x) + len(small.test_x) == 600 and len(small.test_x) == 120
    assert small.class_names == tuple("0123456789")
    labels = torch.cat([small.train_y, small.test_y])
    assert torch.bincount(labels).tolist() == [60] * 10
    again = printed_digits.load(count=600)             # the same seed: the same images (from the cache or drawn)
    assert torch.equal(again.train_x, small.train_x) and torch.equal(again.test_y, small.test_y)
    assert len(set(small.extra["train_fonts"])) > 1                       # many fonts


@needs_fonts
def test_each_digit_is_inked_inside_the_square_and_centred_by_its_mass(small):
    x = torch.cat([small.train_x, small.test_x])[:, 0].double()
    ink = x.sum((1, 2))
    assert bool((ink > 0).all())
    ys, xs = torch.meshgrid(torch.arange(28.0, dtype=torch.float64), torch.arange(28.0, dtype=torch.float64),
                            indexing="ij")
    cy, cx = (x * ys).sum((1, 2)) / ink, (x * xs).sum((1, 2)) / ink
    assert float((cy - 13.5).abs().max()) < 1.5 and float((cx - 13.5).abs().max()) < 1.5
    rows = (x > 0).any(2)
    height = 28 - rows.int().argmax(1) - rows.flip(1).int().argmax(1)      # first to last inked row
    assert int(height.min()) >= 8 and int(height.max()) <= 24


@needs_fonts
def test_the_digits_are_learnt_by_a_nearest_mean_classifier(small):
    # A check that the labels are the digits drawn: class means of the training images read the test ones.
    means = torch.stack([small.train_x[small.train_y == d].double().mean(0).flatten() for d in range(10)])
    distances = torch.cdist(small.test_x.double().flatten(1), means)
    assert float((distances.argmin(1) == small.test_y).double().mean()) > 0.6        # chance: 0.1


@needs_fonts
def test_a_font_without_digits_is_left_out(tmp_path):
    shutil.copy(FONTS[0], tmp_path / FONTS[0].name)
    (tmp_path / "broken.ttf").write_bytes(b"not a font at all")
    assert printed_digits.usable_fonts([tmp_path]) == [tmp_path / FONTS[0].name]
    ds = printed_digits.load(count=40, dirs=[tmp_path])
    assert ds.extra["fonts"] == [str(tmp_path / FONTS[0].name)]
    drawn = {}                                         # one font: each digit looks alike but for size and angle
    for img, y in zip(ds.train_x, ds.train_y):
        drawn.setdefault(int(y), img)
    assert len({bytes(v.numpy()) for v in drawn.values()}) == len(drawn)


def test_no_font_is_one_clear_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(printed_digits, "FONT_DIRS", (str(tmp_path),))
    with pytest.raises(UserError, match="fonts-dejavu-core"):
        load_dataset("printed-digits")
    assert main(["data", "printed-digits"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "apt-get install fonts-dejavu-core fonts-liberation" in err
    assert printed_digits.available()[0] is False


@needs_fonts
def test_placing_a_glyph_keeps_it_whole_and_centres_its_mass():
    from PIL import Image
    glyph = Image.fromarray(np.pad(np.full((40, 10), 255, dtype=np.uint8), ((0, 0), (0, 10))))   # ink at the left
    out = printed_digits.place(glyph, 20).astype(np.float64)
    assert out.sum() > 0 and (out > 0).any(1).sum() == 20                 # 20 rows tall
    cx = (out * np.arange(28)[None, :]).sum() / out.sum()
    assert abs(cx - 13.5) <= 0.5                                          # the mass, not the box, centred
