"""The base class's training step is what it claims: one `train_step` is zero_grad, `loss(batch)`, backward
and the optimiser's step, nothing more; and a model that declares only its `loss` trains."""
import copy
from dataclasses import dataclass

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from genlab.data.containers.base import DataInfo
from genlab.data.containers.batch import Batch
from genlab.models import GenerativeModel, get_model_class
from genlab.models.latent.vae import VAEConfig

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = {"vae": VAEConfig(latent_dim=3, hidden=16, kl_warmup=5),      # a warm-up: a counter the loss reads
        "pixelcnn": get_model_class("pixelcnn").Config(channels=8, blocks=1, head=8, kernel=3)}


@pytest.mark.parametrize("name", list(TINY))
def test_one_step_is_zero_grad_loss_backward_step(name):
    torch.manual_seed(0)
    model = get_model_class(name)(TINY[name], DataInfo((1, 4, 4))).train()
    by_hand = copy.deepcopy(model)
    x = (torch.rand(8, 1, 4, 4, generator=torch.Generator().manual_seed(1)) < 0.4).float()
    steps, hand = model.configure_optimizers(1e-2), by_hand.configure_optimizers(1e-2)["model"]
    for k in range(2):                               # the second step starts from the optimiser's state
        torch.manual_seed(10 + k)
        logs = model.train_step(Batch(x, None), steps)
        torch.manual_seed(10 + k)
        hand.zero_grad(set_to_none=True)
        loss, figures = by_hand.loss(Batch(x, None))
        loss.backward()
        hand.step()
        assert logs == {"loss": loss.item(), **figures}
    assert list(logs)[0] == "loss"
    mine, theirs = model.state_dict(), by_hand.state_dict()
    assert mine.keys() == theirs.keys() and all(torch.equal(mine[k], theirs[k]) for k in mine)


@dataclass
class NoConfig:
    pass


class Pixels(GenerativeModel):
    """Independent Bernoulli pixels, declaring only its loss."""
    name = "independent-pixels"
    Config = NoConfig

    def __init__(self, config, info):
        super().__init__(config, info)
        self.logits = nn.Parameter(torch.zeros(info.dims))

    def loss(self, batch):
        x = batch.x.flatten(1)
        nll = F.binary_cross_entropy_with_logits(self.logits.expand_as(x), x, reduction="none").sum(1).mean()
        return nll, {"on": torch.sigmoid(self.logits).mean().item()}


def test_a_model_with_only_a_loss_trains():
    model = Pixels(NoConfig(), DataInfo((1, 4, 4))).train()
    x = (torch.rand(32, 1, 4, 4, generator=torch.Generator().manual_seed(2)) < 0.2).float()
    opt = model.configure_optimizers(0.1)
    logs = [model.train_step(Batch(x, None), opt) for _ in range(30)]
    assert list(logs[0]) == ["loss", "on"]
    assert logs[-1]["loss"] < 0.8 * logs[0]["loss"] and logs[-1]["on"] < 0.4     # towards the data's 0.2
