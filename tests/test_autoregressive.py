"""Autoregressive models, built tiny: causality proven by gradients, exact normalisation, cached sampling
giving the very images naive sampling gives, completion that keeps what it is given."""
import itertools

import pytest
import torch

from genlab.data.containers.batch import Batch

from genlab.data.containers.base import DataInfo
from genlab.models import get_model_class

TINY = {
    "pixelcnn": dict(channels=12, blocks=2, head=12, kernel=3),
    "gated-pixelcnn": dict(channels=12, layers=3, head=12, first_kernel=3, kernel=3),
    "pixelrnn-row": dict(channels=12, layers=2, head=12, first_kernel=3),
    "pixelrnn-diag": dict(channels=12, layers=2, head=12, first_kernel=3),
    "pixel-lstm": dict(hidden=12, layers=2, embed=4),
}
MODELS = list(TINY)
BINARY = DataInfo((1, 5, 6), 3, "binary")            # not square: rows and columns swapped would show
RGB8 = DataInfo((3, 3, 4), 0, "continuous")          # 8-bit colour: channels predicted R, then G, then B
PALETTE = DataInfo((3, 3, 4), 0, "palette",           # colour read as 3 features, one index per pixel
                   palette=((0, 0, 0), (200, 30, 30), (30, 200, 30), (30, 30, 200), (255, 255, 255)))
INFOS = {"binary": BINARY, "rgb8": RGB8, "palette": PALETTE}


pytestmark = pytest.mark.usefixtures("one_thread")


def build(name, info, dtype=torch.float64, **extra):
    torch.manual_seed(0)
    cls = get_model_class(name)
    return cls(cls.Config(**{**TINY[name], **extra}), info).to(dtype)


def labels(model, n):
    return torch.arange(n) % model.num_conditions if getattr(model, "conditional", False) else None


def values_shape(info):
    """Discrete values per pixel, H, W: a palette pixel is one value (its index), however many colours."""
    return (1, *info.shape[1:]) if info.pixels == "palette" else info.shape


def dependencies(model, info, batch=16):
    """dep[i, j]: does the output for value i depend on input value j? Values in the model's order,
    index (row·W + column)·C + channel. Gradients of each output, summed over a batch of random inputs
    (one input alone can hide a path behind a ReLU that happens to be off); a value read as several
    features (a palette colour) is an input if any of them is."""
    c, h, w = values_shape(info)
    k, f = model.pixels.k, model.pixels.features
    inp = torch.randn(batch, f, h, w, dtype=torch.float64, requires_grad=True)
    out = model(inp, labels(model, batch))
    dep = torch.zeros(c * h * w, c * h * w, dtype=torch.bool)
    for r, col, ch in itertools.product(range(h), range(w), range(c)):
        g, = torch.autograd.grad(out[:, ch * k:(ch + 1) * k, r, col].sum(), inp, retain_graph=True)
        seen = (g.abs().sum(0) != 0).view(c, f // c, h, w).any(1)
        dep[(r * w + col) * c + ch] = seen.permute(1, 2, 0).flatten()
    return dep


def index(info, r, col, ch=0):
    c, _, w = values_shape(info)
    return (r * w + col) * c + ch


def positions(info):
    c, h, w = values_shape(info)
    return list(itertools.product(range(h), range(w), range(c)))


# ---- causality ------------------------------------------------------------------------------------

@pytest.mark.parametrize("pixels", INFOS)
@pytest.mark.parametrize("name", MODELS)
def test_no_output_depends_on_its_own_or_a_later_value(name, pixels):
    info = INFOS[pixels]
    dep = dependencies(build(name, info), info)
    leaks = dep.triu().nonzero().tolist()             # j >= i: the value itself or a later one
    assert not leaks, f"{name} leaks the future: (output, input) pairs {leaks[:5]}"
    # and it does see its neighbours: the pixel before, the pixel above, this pixel's earlier channels
    c, h, w = values_shape(info)
    for r, col, ch in positions(info):
        i = index(info, r, col, ch)
        assert all(dep[i, index(info, r, col, d)] for d in range(ch))
        if col > 0:
            assert all(dep[i, index(info, r, col - 1, d)] for d in range(c))
        if r > 0:
            assert all(dep[i, index(info, r - 1, col, d)] for d in range(c))


@pytest.mark.parametrize("pixels", INFOS)
def test_gated_pixelcnn_has_no_blind_spot(pixels):
    """It sees every earlier value within its field: rows r-R … r-1 at columns c-R … c+R, and the row's
    columns c-R … c-1 (R = first_kernel//2 + (layers-1)·kernel//2), and nothing else."""
    info = INFOS[pixels]
    cfg = TINY["gated-pixelcnn"]
    R = cfg["first_kernel"] // 2 + (cfg["layers"] - 1) * (cfg["kernel"] // 2)
    dep = dependencies(build("gated-pixelcnn", info), info)
    expected = torch.zeros_like(dep)
    for (r, col, ch), (r2, col2, ch2) in itertools.product(positions(info), repeat=2):
        above = r - R <= r2 < r and abs(col2 - col) <= R
        left = r2 == r and (col - R <= col2 < col or (col2 == col and ch2 < ch))
        expected[index(info, r, col, ch), index(info, r2, col2, ch2)] = above or left
    assert torch.equal(dep, expected), (dep != expected).nonzero().tolist()[:5]


@pytest.mark.parametrize("pixels", INFOS)
def test_pixel_lstm_and_diagonal_bilstm_see_the_whole_past(pixels):
    info = INFOS[pixels]
    d = len(positions(info))
    past = torch.ones(d, d, dtype=torch.bool).tril(-1)
    assert torch.equal(dependencies(build("pixel-lstm", info), info), past)
    # Diagonal BiLSTM: all of it but one value, the last channel of the last pixel of the row above,
    # which the mask-A first layer hands on only to pixels from column W-1-first_kernel//2 on (see
    # diagonal_bilstm.py).
    c, h, w = values_shape(info)
    p = TINY["pixelrnn-diag"]["first_kernel"] // 2
    for r, col, ch in positions(info):
        if r > 0 and col < w - 1 - p:
            past[index(info, r, col, ch), index(info, r - 1, w - 1, c - 1)] = False
    dep = dependencies(build("pixelrnn-diag", info), info)
    assert torch.equal(dep, past), (dep != past).nonzero().tolist()[:5]


# ---- exact likelihood -----------------------------------------------------------------------------

@pytest.mark.parametrize("name", MODELS)
def test_log_prob_sums_to_one_over_every_binary_image(name):
    info = DataInfo((1, 3, 4), 0, "binary")
    model = build(name, info)
    every = torch.tensor(list(itertools.product((0.0, 1.0), repeat=12))).view(-1, 1, 3, 4)    # 4,096 images
    with torch.no_grad():
        lp = model.log_prob(every)
    assert lp.shape == (4096,) and lp.dtype == torch.float64
    assert abs(float(torch.logsumexp(lp, 0))) < 1e-9


@pytest.mark.parametrize("name", MODELS)
def test_a_4x4_model_trains_scores_and_samples(name):
    from genlab.models.autoregressive.base import AutoregressiveModel

    info = DataInfo((1, 4, 4), 0, "binary")
    model = build(name, info, dtype=torch.float32)
    assert isinstance(model, AutoregressiveModel) and model.discrete and model.default_binarize == "dynamic"
    x = (torch.rand(32, 1, 4, 4) < 0.3).float()
    opt = model.configure_optimizers(1e-2)
    before = model.log_prob(x).mean().item()
    for _ in range(20):
        logs = model.train_step(Batch(x, None), opt)
    assert logs["loss"] < -before and model.log_prob(x).shape == (32,)
    assert torch.allclose(model.eval_terms(x)["nll"], -model.log_prob(x))
    assert model.sample(3).shape == (3, 1, 4, 4)


@pytest.mark.parametrize("name", ["pixelcnn", "pixel-lstm"])   # the 256-way layout: shared, and pixel-lstm's own
def test_log_prob_sums_to_one_over_every_pair_of_8bit_values(name):
    info = DataInfo((1, 1, 2), 0, "continuous")
    model = build(name, info)
    k = torch.cartesian_prod(torch.arange(256), torch.arange(256)).view(-1, 1, 1, 2)
    x = (k + 0.999 * torch.rand(k.shape)) / 256           # as the loader gives 8-bit data: dequantised
    with torch.no_grad():
        lp = model.log_prob(x)
    assert abs(float(torch.logsumexp(lp, 0))) < 1e-9
    assert torch.allclose(lp, model.log_prob(k / 255))    # and the same values as samples give them


# ---- sampling -------------------------------------------------------------------------------------

@pytest.mark.parametrize("pixels", INFOS)
@pytest.mark.parametrize("name", MODELS)
def test_cached_sampling_gives_the_images_naive_sampling_gives(name, pixels):
    info = INFOS[pixels]
    model = build(name, info)      # float64: the two paths round differently, but never by 1e-12
    naive = model.sample(6, generator=torch.Generator().manual_seed(5), cached=False)
    cached = model.sample(6, generator=torch.Generator().manual_seed(5))
    assert torch.equal(naive, cached)
    other = model.sample(6, generator=torch.Generator().manual_seed(6))
    assert not torch.equal(cached, other)
    assert naive.shape == (6, *info.shape) and naive.min() >= 0 and naive.max() <= 1
    levels = 1 if info.pixels == "binary" else 255
    assert torch.equal(naive * levels, (naive * levels).round())   # 0/1, or k/255


@pytest.mark.parametrize("name", MODELS)
def test_cached_sampling_in_float32_gives_the_same_images_too(name):
    model = build(name, BINARY, dtype=torch.float32)
    naive = model.sample(8, generator=torch.Generator().manual_seed(0), cached=False)
    assert torch.equal(naive, model.sample(8, generator=torch.Generator().manual_seed(0)))


@pytest.mark.parametrize("name", MODELS)
def test_completion_keeps_the_given_pixels_and_matches_naive(name):
    info = RGB8
    model = build(name, info)
    x = torch.rand(4, *info.shape)
    mask = torch.zeros(info.shape[1:], dtype=torch.bool)
    mask[1:, 2:] = True                                   # not a suffix: later given pixels stay given too
    cached = model.complete(x, mask, generator=torch.Generator().manual_seed(1))
    naive = model.complete(x, mask, generator=torch.Generator().manual_seed(1), cached=False)
    assert torch.equal(cached, naive)
    given = model.pixels.values(x)
    got = model.pixels.values(cached)
    assert torch.equal(got[..., ~mask], given[..., ~mask])
    assert not torch.equal(got[..., mask], given[..., mask])


def test_conditional_gated_pixelcnn_needs_labelled_data_and_uses_the_label():
    from genlab.errors import UserError

    with pytest.raises(UserError, match="labelled data"):
        build("gated-pixelcnn", DataInfo((1, 4, 4), 0, "binary"), conditional=True)
    model = build("gated-pixelcnn", BINARY, conditional=True)
    x = torch.rand(3, *BINARY.shape).round()
    a, b = model.log_prob(x, torch.tensor([0, 0, 0])), model.log_prob(x, torch.tensor([1, 1, 1]))
    assert not torch.allclose(a, b)
    with pytest.raises(UserError, match="class label"):
        model.log_prob(x)
    # sampling: one class for all, or the classes in turn when none is asked for
    g = torch.Generator().manual_seed(0)
    same = model.sample(3, condition=torch.tensor(2), generator=g)
    assert torch.equal(same, model.sample(3, condition=torch.tensor([2, 2, 2]), generator=torch.Generator().manual_seed(0)))
    assert model.sample(4).shape == (4, *BINARY.shape)
