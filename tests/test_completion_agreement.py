"""Completion agreement (evaluation/completion.py): hand-made models whose completions are known (a model
sure of one value draws it everywhere), and the covered part's log-likelihood against brute force
(log p(x) − log Σ over every filling of the covered pixels) and against log_prob."""
import itertools

import pytest
import torch

from genlab.data.containers.base import DataInfo
from genlab.errors import UserError
from genlab.evaluation.completion import completion_agreement, is_raster_suffix, split_log_prob, value_log_probs
from genlab.explore.completion import cover_mask
from genlab.models import get_model_class

pytestmark = pytest.mark.usefixtures("one_thread")

COLOURS = ((0, 0, 0), (200, 30, 30), (30, 30, 200), (255, 255, 255))
PALETTE = DataInfo((3, 4, 4), 0, "palette", palette=COLOURS)
RGB8 = DataInfo((3, 4, 4), 0, "continuous")
BINARY = DataInfo((1, 3, 3), 0, "binary")
SMALL = DataInfo((3, 2, 3), 0, "palette", palette=COLOURS)   # few enough covered pixels to fill every way
TINY = dict(channels=8, blocks=1, head=8, kernel=3)


def pixelcnn(info, seed=0):
    torch.manual_seed(seed)
    cls = get_model_class("pixelcnn")
    return cls(cls.Config(**TINY), info).double().eval()


def sure_of(model, value):
    """The model made certain of one value for every channel of every pixel: its output layer's weights
    zero, its bias +60 for that value (so each pixel's distribution puts all but e⁻⁶⁰ on it)."""
    k = model.pixels.k
    with torch.no_grad():
        model.out.weight.zero_()
        model.out.bias.zero_()
        for ch in range(model.pixels.channels):
            model.out.bias[ch * k + value] = 60.0
    return model


def palette_images(index):
    """Palette indices N×H×W to images as a palette run's data set gives them (colours k/255)."""
    colours = torch.tensor(COLOURS, dtype=torch.float64)
    return (colours[index] / 255).permute(0, 3, 1, 2)


def test_a_model_that_completes_perfectly_scores_one():
    model = sure_of(pixelcnn(PALETTE), 2)
    images = palette_images(torch.full((3, 4, 4), 2))
    images[:, :, 0, 0] = torch.tensor(COLOURS[1]) / 255             # the visible part may hold anything
    figures = completion_agreement(model, images, ("bottom-half", "75%"), seed=3)
    for cover, covered in (("bottom-half", 8), ("75%", 12)):
        f = figures[cover]
        assert f["match"] == 1.0 and f["abs_error"] == 0.0 and f["covered_pixels"] == covered and f["images"] == 3
        assert -1e-12 < f["covered_log_likelihood_nats"] <= 0 and f["covered_bits_per_pixel"] < 1e-12


def test_agreement_counts_the_covered_pixels_by_hand():
    # Palette: the model draws colour 2 everywhere; the truth's covered half (bottom 2 rows of 4×4) holds
    # colour 2 in 5 of 8 pixels and colour 3 (white) in 3: match 5/8, and the error is |white − colour 2|
    # summed over channels, over 3 of 8 pixels of 3 channels each.
    model = sure_of(pixelcnn(PALETTE), 2)
    index = torch.full((1, 4, 4), 2)
    index[0, 2, :3] = 3
    f = completion_agreement(model, palette_images(index), ["bottom-half"])["bottom-half"]
    diff = sum(abs(a - b) for a, b in zip(COLOURS[3], COLOURS[2]))
    assert f["match"] == pytest.approx(5 / 8) and f["abs_error"] == pytest.approx(3 * diff / (8 * 3))
    # The covered part's log-likelihood: the 5 right pixels cost ~0, the 3 wrong ones 60 nats each.
    assert f["covered_log_likelihood_nats"] == pytest.approx(-3 * 60, abs=1e-6)
    assert f["covered_nats_per_pixel"] == pytest.approx(-3 * 60 / 8, abs=1e-6)

    # 8-bit: the model draws 100 in every channel. Covered pixels: 4 exactly right, 4 with green at 110
    # (one channel 10 levels off): match 4/8, mean abs error 4·10 / (8·3). Data arrive dequantised.
    model = sure_of(pixelcnn(RGB8), 100)
    values = torch.full((1, 3, 4, 4), 100.0)
    values[0, 1, 3, :] = 110
    f = completion_agreement(model, (values + 0.5) / 256, ["bottom-half"])["bottom-half"]
    assert f["match"] == pytest.approx(4 / 8) and f["abs_error"] == pytest.approx(40 / 24)


@pytest.mark.parametrize("info, cover", [(SMALL, "75%"), (SMALL, "bottom-half"), (BINARY, "75%")])
def test_covered_log_likelihood_is_the_conditional_by_brute_force(info, cover):
    model = pixelcnn(info, seed=1)
    with torch.no_grad():                 # sharper conditionals than a fresh net's, so errors would show
        for p in model.parameters():
            p.mul_(3)
    _, h, w = info.shape
    mask = cover_mask(cover, h, w)
    assert is_raster_suffix(mask)
    levels = model.pixels.levels
    g = torch.Generator().manual_seed(0)
    truth = torch.randint(levels, (2, h, w), generator=g)
    # Every filling of the covered pixels, the visible ones kept: Σ p(x_vis, x'_cov) = p(x_vis).
    fillings = torch.tensor(list(itertools.product(range(levels), repeat=int(mask.sum()))))
    assert len(fillings) <= 256
    for img in truth:
        every = img.expand(len(fillings), h, w).clone()
        every[:, mask] = fillings
        x = to_input(info, every)
        log_p_visible = torch.logsumexp(model.log_prob(x).double(), 0)
        covered, visible = split_log_prob(model, to_input(info, img[None]), mask)
        log_p = model.log_prob(to_input(info, img[None])).double()
        assert covered.item() == pytest.approx((log_p - log_p_visible).item(), abs=1e-9)
        assert visible.item() == pytest.approx(log_p_visible.item(), abs=1e-9)


def to_input(info, values):
    """Discrete values N×H×W to images as the data set gives them."""
    if info.pixels == "palette":
        return palette_images(values)
    return values[:, None].double()


@pytest.mark.parametrize("info", [PALETTE, RGB8, BINARY], ids=["palette", "rgb8", "binary"])
def test_covered_and_visible_add_up_to_log_prob(info):
    model = pixelcnn(info, seed=2)
    _, h, w = info.shape
    x = torch.rand(5, *info.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    if info.pixels == "binary":
        x = (x > 0.5).double()
    log_p = model.log_prob(x).double().detach()
    assert torch.allclose(value_log_probs(model, x).double().flatten(1).sum(1), log_p, atol=1e-9)
    everything, nothing = split_log_prob(model, x, cover_mask("100%", h, w))
    assert torch.allclose(everything, log_p, atol=1e-9) and torch.equal(nothing, torch.zeros(5, dtype=torch.float64))
    for cover in ("bottom-half", "right-half", "75%"):
        covered, visible = split_log_prob(model, x, cover_mask(cover, h, w))
        assert torch.allclose(covered + visible, log_p, atol=1e-9)
        assert (covered < 0).all() and (visible < 0).all()
    # completion_agreement reports the same covered figure, per image and per covered pixel
    f = completion_agreement(model, x, ["100%"])["100%"]
    assert f["covered_log_likelihood_nats"] == pytest.approx(float(log_p.mean()), abs=1e-9)
    assert f["covered_nats_per_pixel"] == pytest.approx(float(log_p.mean()) / (h * w), abs=1e-9)


def test_a_cover_that_is_not_a_raster_suffix_has_no_conditional_figure():
    model = pixelcnn(PALETTE)
    f = completion_agreement(model, palette_images(torch.zeros(2, 4, 4, dtype=torch.long)), ["right-half"])
    assert not is_raster_suffix(cover_mask("right-half", 4, 4))
    assert "covered_log_likelihood_nats" not in f["right-half"] and 0 <= f["right-half"]["match"] <= 1


def test_a_model_that_cannot_complete_is_refused_with_one_line():
    cls = get_model_class("vae")
    vae = cls(cls.Config(latent_dim=2, hidden=8), DataInfo((1, 4, 4), 0, "binary"))
    with pytest.raises(UserError, match="cannot complete images"):
        completion_agreement(vae, torch.zeros(1, 1, 4, 4))
