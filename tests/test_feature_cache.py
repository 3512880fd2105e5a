"""The feature networks train correctly whatever grad mode their caller is in, and a cached network whose
weights are not finite is trained again, not trusted (each on an empty cache of its own)."""
import math

import pytest
import torch
from safetensors.torch import load_file, save_file

from genlab.data import load_dataset
from genlab.evaluation import classifier, selfsup

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def empty_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GENLAB_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "features"


@pytest.mark.parametrize("mode", [torch.no_grad, torch.inference_mode])
def test_the_classifier_trains_inside_no_grad_and_inference_mode(empty_cache, mode):
    ds = load_dataset("digits")
    with mode():
        net, meta = classifier.load_or_train(ds, "cpu")
    assert meta["test_accuracy"] > 0.9
    assert list(empty_cache.glob("*.safetensors"))


def test_the_self_supervised_encoder_trains_inside_no_grad(empty_cache):
    with torch.no_grad():
        net, meta = selfsup.load_or_train(load_dataset("digits"), "cpu", steps=20)
    assert all(torch.isfinite(p).all() for p in net.parameters())
    assert list(empty_cache.glob("*.safetensors"))


def test_nan_weights_in_the_cache_are_retrained(empty_cache):
    ds = load_dataset("digits")
    classifier.load_or_train(ds, "cpu")
    [f] = empty_cache.glob("*.safetensors")
    weights = load_file(str(f))
    weights = {k: torch.full_like(v, math.nan) if v.is_floating_point() else v for k, v in weights.items()}
    save_file(weights, str(f))
    net, meta = classifier.load_or_train(ds, "cpu")
    assert all(torch.isfinite(t).all() for t in net.state_dict().values()) and meta["test_accuracy"] > 0.9
    assert all(torch.isfinite(t).all() for t in load_file(str(f)).values())       # the cache was mended
