"""The real-versus-real floor: figures with their uncertainty, a row of real training images judged like
samples, and a mark on every figure of a model that cannot be told from real data at this sample count."""
import json
import math
from types import SimpleNamespace

import pytest
import torch

from genlab.data import load_dataset
from genlab.evaluation.quality import SampleQuality
from genlab.evaluation.sample_quality import FLOOR_KEYS, default_samples, real_images
from genlab.evaluation.table import format_quality
from genlab.runs import write_json

pytestmark = pytest.mark.usefixtures("one_thread")
METRICS = ["fid", "kid", "prdc", "modes", "is"]


class FakeModel:
    """What draw_samples needs of a model: binary pixels on the CPU, drawn by `make(count, generator)`."""

    def __init__(self, make):
        self.make, self.device, self.info = make, torch.device("cpu"), SimpleNamespace(pixels="binary")

    def sample(self, m, generator=None):
        return self.make(m, generator)


def real_model(images):
    """A 'model' whose samples ARE real images, handed out in order."""
    state = {"next": 0}

    def make(m, generator):
        out = images[state["next"]:state["next"] + m]
        state["next"] += m
        return out
    return FakeModel(make)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


@pytest.fixture(scope="module")
def judged(digits, tmp_path_factory):
    """At the test split's size: samples that are the held-out test images, and uniform noise."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)           # module-wide: `one_thread` covers only each test's own call
    n = len(digits.test_x)
    quality = SampleQuality(METRICS, n, None, "cpu")
    test = real_images(digits.test_x, "dynamic", None, "cpu", seed=1)      # the judge's own test images
    real = quality.report(real_model(test), tmp_path_factory.mktemp("real"), "h", digits, "dynamic", False)
    noise = FakeModel(lambda m, g: torch.rand(m, 1, 8, 8, generator=g))
    bad = quality.report(noise, tmp_path_factory.mktemp("noise"), "h", digits, "dynamic", False)
    torch.set_num_threads(threads)
    return {"real": {"name": "real", "model": "fake", "data": "digits", "data_hash": "h",
                     "pixels": "dynamic (binary)", **real},
            "noise": {"name": "noise", "model": "fake", "data": "digits", "data_hash": "h",
                      "pixels": "dynamic (binary)", **bad}}


def test_every_figure_has_a_positive_bootstrap_deviation(judged):
    for r in (judged["real"], judged["noise"], judged["real"]["data_floor"]):
        for key in FLOOR_KEYS:
            assert r[key] is not None and math.isfinite(r[key]), key
            assert f"{key}_std" in r and r[f"{key}_std"] >= 0, key
        for key in ("fid", "kid", "precision", "recall", "density", "inception_score", "modes_kl"):
            assert r[f"{key}_std"] > 0, key
        assert r["bootstrap_resamples"] >= 50


def test_the_floor_is_as_many_real_training_images_disjoint_from_the_reference(judged, digits):
    floor, real = judged["real"]["data_floor"], judged["real"]
    assert floor["samples"] == real["samples"] == len(digits.test_x) == floor["references"]
    # Samples that are the test images score exactly the test images' row.
    assert real["fid"] == real["data_reference"]["fid"]
    # Disjoint: the floor is no copy of the reference (it would score FID 0 and precision 1).
    assert floor["fid"] > 0.5 and floor["recall"] < 1


def test_real_images_are_within_the_floors_noise_and_noise_is_not(judged):
    real, noise = judged["real"], judged["noise"]
    assert {"fid", "kid", "precision", "density", "coverage", "modes_covered"} <= set(real["within_floor"])
    # Noise still spreads over the classifier's classes (a coarse count), but nothing else is data-like.
    assert set(noise["within_floor"]) <= {"modes_covered"}
    assert noise["fid"] > real["data_floor"]["fid"] + 10 * noise["fid_std"]
    lines = format_quality([real, noise])
    table = "\n".join(lines)
    assert "(test images)" in table and "(training images)" in table and "floor" in table
    row = {line.split()[0]: line.split() for line in lines if line.split()}
    fid_column = 6                                  # run, model, data, "dynamic (binary)", n, FID
    assert row["real"][fid_column].endswith("≈") and "±" in row["real"][fid_column]
    assert not row["noise"][fid_column].endswith("≈")
    floor_row = row["(training"]                   # "(training images)", data, digits, dynamic, n, FID
    assert "≈" not in " ".join(floor_row) and "±" in floor_row[fid_column]


def test_eval_json_stays_valid_json(judged, tmp_path):
    write_json(tmp_path / "eval.json", judged["real"])
    back = json.loads((tmp_path / "eval.json").read_text())
    assert back["data_floor"]["fid_std"] > 0 and back["within_floor"] == judged["real"]["within_floor"]
    assert back["data_reference"]["samples"] == back["samples"]


def test_no_floor_where_the_training_split_cannot_spare_as_many_images(digits, tmp_path):
    n = len(digits.train_x) // 2 + 1
    out = SampleQuality(["fid"], n, None, "cpu").report(
        FakeModel(lambda m, g: torch.rand(m, 1, 8, 8, generator=g)), tmp_path, "h", digits, "dynamic", False)
    assert out["data_floor"] is None and out["within_floor"] == [] and out["fid_std"] > 0
    table = "\n".join(format_quality([{"name": "x", "model": "fake", "data": "digits", "data_hash": "h",
                                       "pixels": "dynamic (binary)", **out}]))
    assert "(training images)" in table and "fewer than 2n" in table


def test_the_default_sample_count_leaves_room_for_the_floor(digits):
    n = default_samples(digits)
    assert n == len(digits.train_x) // 2 > len(digits.test_x)
    assert default_samples(SimpleNamespace(train_x=range(60_000))) == 10_000
