"""Class agreement: the data's classifier reads samples drawn for each class. Hand-made stand-ins fix the
figure's two ends (a model drawing real images of the asked class scores the classifier's accuracy; one
ignoring the class scores chance), and a trained cvae scores far above chance through `genlab eval`."""
from __future__ import annotations

import json

import pytest
import torch
from conftest import genlab, refused

from genlab.data import load_dataset
from genlab.data.containers.base import DataInfo
from genlab.evaluation.class_agreement import class_figures, real_agreement
from genlab.evaluation.features import builtin_network
from genlab.evaluation.sample_quality import bootstrap_indices

pytestmark = pytest.mark.usefixtures("one_thread")


class RealImagesOf:
    """Draws held-out images: of the class asked for, or (`ignores`) of any class."""
    condition_kind, num_conditions, name, device = "class", 10, "stand-in", torch.device("cpu")
    info = DataInfo(shape=(1, 8, 8), num_classes=10, pixels="continuous")

    def __init__(self, ds, ignores=False):
        self.ds, self.ignores = ds, ignores

    def sample(self, n, condition=None, generator=None):
        pools = [torch.nonzero(self.ds.test_y == k).flatten() for k in range(10)]
        wanted = torch.randint(10, (n,), generator=generator) if self.ignores else condition.cpu()
        pick = [pools[k][torch.randint(len(pools[k]), (1,), generator=generator)] for k in wanted.tolist()]
        return self.ds.test_x[torch.cat(pick)].float() / 255


def test_the_figure_runs_from_chance_to_the_classifiers_accuracy():
    ds = load_dataset("digits")
    network = builtin_network(ds, "cpu")
    ceiling = real_agreement(network, ds.test_x.float() / 255, ds.test_y)
    faithful = class_figures(RealImagesOf(ds), ds, network, bootstrap_indices, 500)
    careless = class_figures(RealImagesOf(ds, ignores=True), ds, network, bootstrap_indices, 500)
    assert ceiling > 0.9 and abs(faithful["class_agreement"] - ceiling) < 0.05, (faithful, ceiling)
    assert abs(careless["class_agreement"] - 0.1) < 0.05, careless
    assert 0.005 < careless["class_agreement_std"] < 0.03 and faithful["class_chance"] == 0.1


def test_eval_reads_a_trained_cvae_far_above_chance_and_refuses_a_vae(runs, tmp_path, capsys):
    refused(capsys, ["eval", runs["cvae"], runs["vae"], "--metrics", "classes"], "not conditional", runs["vae"])
    assert genlab("eval", runs["vae"], "--metrics", "all", "--samples", "100", "--threads", "1") == 0  # all: none
    assert "class agr." not in capsys.readouterr().out
    assert genlab("eval", runs["cvae"], "--metrics", "classes", "--threads", "1") == 0
    assert "class agr." in capsys.readouterr().out
    assert genlab("eval", runs["cvae"], "--metrics", "classes", "--json", "--threads", "1") == 0
    r = json.loads(capsys.readouterr().out)
    assert r["class_agreement"] > 0.5 and r["class_chance"] == 0.1, r
    assert r["data_reference"]["class_agreement"] > 0.9
