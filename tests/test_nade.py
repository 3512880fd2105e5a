"""NADE: exact and normalised (summed over every binary image of a tiny size), autoregressive by gradients
(pixel d's conditional sees only the pixels before it), its pixel-by-pixel sampler drawing from the same
distribution, and learning on real digits."""
import itertools

import pytest
import torch

import genlab
from genlab.data.containers.base import DataInfo
from genlab.errors import UserError
from genlab.models import get_model_class
from genlab.models.base import make_config

pytestmark = pytest.mark.usefixtures("one_thread")

NADE = get_model_class("nade")


def tiny(shape=(1, 2, 3)):
    torch.manual_seed(0)
    model = NADE(make_config(NADE.Config, {"hidden": "16"}), DataInfo(shape=shape))
    with torch.no_grad():                       # weights of a real size: conditionals far from one half
        for p in model.parameters():
            p.normal_(0, 1.5)
    return model.eval()


def every_image(shape=(1, 2, 3)):
    d = shape[0] * shape[1] * shape[2]
    return torch.tensor(list(itertools.product([0.0, 1.0], repeat=d))).view(-1, *shape)


@pytest.mark.parametrize("shape", [(1, 2, 3), (1, 4, 4)])
def test_probabilities_of_every_binary_image_sum_to_one(shape):
    total = torch.logsumexp(tiny(shape).log_prob(every_image(shape)).double(), 0).exp().item()    # 2^16 at 4×4
    assert abs(total - 1) < 1e-5


def test_each_conditional_depends_only_on_earlier_pixels():
    model = tiny()
    for d in range(6):
        x = torch.rand(1, 6, requires_grad=True)
        model.logits(x)[0, d].backward()
        seen = x.grad[0].ne(0)
        assert not bool(seen[d:].any()), d                          # nothing at or after pixel d
        assert bool(seen[:d].all()), d                              # and every pixel before it


def test_the_recurrence_is_the_direct_sum_over_earlier_pixels():
    model = tiny()
    x = torch.bernoulli(torch.full((5, 6), 0.5))
    W, c, V, b = model.input.weight, model.input.bias, model.output.weight, model.output.bias
    direct = torch.stack([torch.sigmoid(c + x[:, :d] @ W[:, :d].t()) @ V[d] + b[d] for d in range(6)], 1)
    assert torch.allclose(model.logits(x), direct, atol=1e-5)


def test_samples_follow_the_model_distribution():
    model = tiny()
    x = model.sample(4000, generator=torch.Generator().manual_seed(1))
    assert x.shape == (4000, 1, 2, 3) and set(x.unique().tolist()) <= {0.0, 1.0}
    codes = (x.flatten(1) * 2 ** torch.arange(5, -1, -1)).sum(1).long()           # every_image() order
    seen = torch.bincount(codes, minlength=64).double() / len(codes)
    exact = model.log_prob(every_image()).detach().double().exp()
    assert 0.5 * float((seen - exact).abs().sum()) < 0.06          # total variation; ~0.03 from 4000 draws


def test_it_refuses_pixels_that_are_not_binary():
    with pytest.raises(UserError, match="binary pixels"):
        NADE(NADE.Config(), DataInfo(shape=(1, 2, 3), pixels="continuous"))


def test_it_learns_digits_beyond_the_independent_pixel_baseline(tmp_path):
    run = genlab.train("nade", "digits", tmp_path / "nade", epochs=30, batch_size=64, lr=3e-3, threads=1,
                       quiet=True, samples=0, hidden=64)
    (r,) = genlab.evaluate([run.path], iwae_k=0, threads=1, live=False)
    assert r["nll_nats"] < r["baseline_nll_nats"] - 2, r          # 23.9 against 27.1


def exact_completion_test(model):
    """Completions of the last three pixels of one image follow the model's conditional p(x4..6 | x1..3),
    computed by enumerating the eight endings with log_prob; a cover cut at pixel 5 draws the same pixel 4."""
    first = torch.tensor([1.0, 0.0, 1.0])
    endings = torch.tensor(list(itertools.product([0.0, 1.0], repeat=3)))
    images = torch.cat([first.expand(8, 3), endings], 1).view(8, 1, 2, 3)
    exact = torch.softmax(model.log_prob(images).detach().double(), 0)
    x = images[:1].expand(4000, -1, -1, -1)
    cover = torch.tensor([[False, False, False], [True, True, True]])
    drawn = model.complete(x, cover, generator=torch.Generator().manual_seed(2))
    assert torch.equal(drawn.flatten(1)[:, :3], x.flatten(1)[:, :3])             # the given pixels stay
    codes = (drawn.flatten(1)[:, 3:] * torch.tensor([4.0, 2.0, 1.0])).sum(1).long()
    seen = torch.bincount(codes, minlength=8).double() / len(codes)
    assert 0.5 * float((seen - exact).abs().sum()) < 0.04, (seen, exact)
    part = torch.tensor([[False, False, False], [True, False, False]])
    first_only = model.complete(x, part, generator=torch.Generator().manual_seed(2))
    assert torch.equal(first_only.flatten(1)[:, 3], drawn.flatten(1)[:, 3])


def test_completion_draws_the_models_conditional():
    exact_completion_test(tiny())
