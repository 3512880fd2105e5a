"""pixel-lstm's cached step, which does the LSTM cell's maths by hand, against nn.LSTM over the whole
sequence: the same logits at every step (any number of layers, every kind of pixel), and so the same
samples and completions in float32 as well as float64."""
import pytest
import torch

from genlab.data.containers.base import DataInfo
from genlab.models import get_model_class

BINARY = DataInfo((1, 5, 6), 0, "binary")
RGB8 = DataInfo((3, 3, 4), 0, "continuous")
PALETTE = DataInfo((3, 3, 4), 0, "palette", palette=((0, 0, 0), (200, 30, 30), (30, 200, 30), (255, 255, 255)))
INFOS = {"binary": BINARY, "rgb8": RGB8, "palette": PALETTE}

pytestmark = pytest.mark.usefixtures("one_thread")


def build(info, layers, dtype):
    torch.manual_seed(layers)
    cls = get_model_class("pixel-lstm")
    return cls(cls.Config(hidden=10, layers=layers, embed=3), info).to(dtype)


def random_input(model, info, n, dtype):
    c, (h, w) = model.pixels.channels, info.shape[1:]
    values = torch.randint(0, model.pixels.levels, (n, c, h, w))
    return model.pixels.scaled(values, dtype)


@pytest.mark.parametrize("layers", [1, 3])       # 3: a middle layer reads the state the one below wrote
@pytest.mark.parametrize("pixels", INFOS)
def test_every_cached_step_gives_the_logits_of_the_whole_sequence_through_nn_lstm(pixels, layers):
    info = INFOS[pixels]
    model = build(info, layers, torch.float64)
    inp = random_input(model, info, 5, torch.float64)
    k, channels, (h, w) = model.pixels.k, model.pixels.channels, info.shape[1:]
    with torch.no_grad():
        full = model(inp)
        state = model.cache_start(inp, None)
        for r in range(h):
            for c in range(w):
                for ch in range(channels):
                    step = model.cache_step(state, inp, r, c, ch)
                    want = full[:, ch * k:(ch + 1) * k, r, c]
                    assert torch.allclose(step, want, rtol=0, atol=1e-12), (r, c, ch)


@pytest.mark.parametrize("pixels", INFOS)
def test_cached_sampling_and_completion_in_float32_give_what_naive_gives(pixels):
    info = INFOS[pixels]
    model = build(info, 3, torch.float32)
    for seed in range(3):
        naive = model.sample(6, generator=torch.Generator().manual_seed(seed), cached=False)
        assert torch.equal(naive, model.sample(6, generator=torch.Generator().manual_seed(seed)))
    x = torch.rand(4, *info.shape)
    mask = torch.zeros(info.shape[1:], dtype=torch.bool)
    mask[1:, 2:] = True
    completed = model.complete(x, mask, generator=torch.Generator().manual_seed(1))
    assert torch.equal(completed, model.complete(x, mask, generator=torch.Generator().manual_seed(1), cached=False))
