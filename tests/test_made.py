"""MADE: exact and normalised (summed over every binary image of a tiny size), autoregressive by gradients
(no output sees its own or a later input in its ordering), and learning on real digits."""
import itertools

import pytest
import torch

import genlab
from genlab.data.containers.base import DataInfo
from genlab.models import get_model_class
from genlab.models.base import make_config

MADE = get_model_class("made")


def tiny(shape=(1, 2, 3), masks=3):
    torch.manual_seed(0)
    return MADE(make_config(MADE.Config, {"hidden": "16", "masks": str(masks)}), DataInfo(shape=shape))


@pytest.mark.parametrize("masks,shape", [(1, (1, 2, 3)), (3, (1, 2, 3)), (3, (1, 4, 4))])
def test_probabilities_of_every_binary_image_sum_to_one(masks, shape):
    model = tiny(shape, masks=masks).eval()
    d = shape[0] * shape[1] * shape[2]
    images = torch.tensor(list(itertools.product([0.0, 1.0], repeat=d))).view(-1, *shape)     # 2^16 at 4×4
    total = torch.logsumexp(model.log_prob(images).double(), 0).exp().item()
    assert abs(total - 1) < 1e-5


def test_each_output_depends_only_on_earlier_inputs_in_its_ordering():
    model = tiny(masks=3)
    for m in range(3):
        order = model.orders[m]
        for d in range(6):
            x = torch.rand(1, 6, requires_grad=True)
            model.logits(x, m)[0, d].backward()
            seen = x.grad[0].ne(0)
            assert not bool(seen[order >= order[d]].any()), (m, d)      # nothing at or after d's turn


def test_sampling_draws_binary_images_of_the_data_shape():
    x = tiny().sample(5, generator=torch.Generator().manual_seed(1))
    assert x.shape == (5, 1, 2, 3) and set(x.unique().tolist()) <= {0.0, 1.0}


@pytest.mark.slow
def test_it_learns_digits_beyond_the_independent_pixel_baseline(tmp_path):
    run = genlab.train("made", "digits", tmp_path / "made", epochs=40, batch_size=64, threads=1, quiet=True,
                       samples=0, hidden=256, masks=4)
    (r,) = genlab.evaluate([run.path], iwae_k=0, threads=1, live=False)
    assert r["nll_nats"] < r["baseline_nll_nats"] - 2, r          # 24.2 against 27.1 at 60 epochs


def test_completion_draws_the_raster_orderings_conditional():
    from test_nade import exact_completion_test
    model = tiny(masks=1).eval()
    with torch.no_grad():                       # conditionals far from one half
        for p in model.parameters():
            p.normal_(0, 1.5)
    exact_completion_test(model)
