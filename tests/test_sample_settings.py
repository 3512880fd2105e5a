"""Sampling settings declared once, by a model or a modality, and read everywhere: `genlab sample RUN --help`
builds its flags from the run's declarations, the library and the explorer take the same names, and every
value is checked by the same parser, so a bad one is one line wherever it comes from."""
import math
import sys
from pathlib import Path

import pytest

import genlab
from genlab import modalities
from genlab.cli import build_parser
from genlab.errors import UserError
from genlab.models import get_model_class
from genlab.models.registry import model_names
from genlab.settings import NoSettings, check_settings, describe_fields
from genlab.web import views

from conftest import genlab as run_cli
from test_bad_input import refused

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from serve_load import tiny_runs  # noqa: E402


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return {p.name: p for p in tiny_runs(tmp_path_factory.mktemp("settings"), ("vae", "ddpm", "vpn", "sentence-vae"))}


def sample_help(run, capsys) -> str:
    with pytest.raises(SystemExit) as e:
        genlab.cli.main(["sample", str(run), "--help"])
    assert e.value.code == 0
    return capsys.readouterr().out


def flags_of(model: str) -> str:
    """The help of `genlab sample` for a run of `model`, built from its declarations as main() builds it."""
    cls = get_model_class(model)
    return build_parser(sample_run=(modalities.get(cls.modality), cls))._subparsers._group_actions[0] \
        .choices["sample"].format_help()


def test_each_runs_help_lists_its_own_settings_with_their_bounds(runs, capsys):
    ddpm = sample_help(runs["ddpm"], capsys)
    assert "--steps" in ddpm and "1 to 1,000" in ddpm and "DDIM" in ddpm
    assert "--class" in ddpm and "--temperature" not in ddpm
    vae = sample_help(runs["vae"], capsys)
    assert "--steps" not in vae and "--nrow" in vae
    video = sample_help(runs["vpn"], capsys)
    assert "--frames" in video and "--context" in video and "--nrow" not in video
    text = sample_help(runs["sentence-vae"], capsys)
    assert "--temperature" in text and "--greedy" in text and "--class" not in text


@pytest.mark.parametrize("model, flag", [("glow", "--temperature"), ("realnvp", "--temperature"),
                                         ("text2img", "--text"), ("wavenet", "--class")])
def test_the_flags_of_models_without_a_run_here_come_from_their_class(model, flag):
    assert flag in flags_of(model)
    assert "--steps" not in flags_of(model)


def test_a_setting_of_another_model_says_who_takes_it(runs, capsys):
    refused(capsys, ["sample", runs["vae"], "--steps", "5"], "--steps does not apply to vae", "only ddpm")
    refused(capsys, ["sample", runs["vae"], "--greedy"], "--greedy is for text models")
    refused(capsys, ["sample", runs["ddpm"], "--frames", "3"], "--frames is for video models")
    refused(capsys, ["sample", runs["ddpm"], "--steps", "0"], "--steps must be from 1 to 1,000", "'0'")
    with pytest.raises(UserError, match="--temperature does not apply to ddpm"):
        genlab.sample(runs["ddpm"], 2, temperature=0.5)


def test_the_setting_reaches_the_model(runs, tmp_path):
    paths = [tmp_path / f"{i}.png" for i in range(3)]
    for path, steps in zip(paths, ("3", "3", "5")):
        assert run_cli("sample", runs["ddpm"], "-n", "4", "--steps", steps, "--seed", "4", "-o", path) == 0
    assert paths[0].read_bytes() == paths[1].read_bytes() != paths[2].read_bytes()
    assert not genlab.sample(runs["ddpm"], 2, seed=4, steps=3).equal(genlab.sample(runs["ddpm"], 2, seed=4, steps=5))


@pytest.mark.parametrize("value", ["1e-300", "inf", "nan", "-1", "abc", 0, 1e9, float("inf"), True])
def test_hostile_values_are_one_line(value):
    text = modalities.get("text").SampleSettings
    with pytest.raises(UserError, match="--temperature must be"):
        check_settings(text, {"temperature": value})


def test_every_declaration_is_a_dataclass_of_described_fields_that_never_collide():
    for name in model_names():
        cls = get_model_class(name)
        modality = modalities.get(cls.modality)
        mine, theirs = (describe_fields(c) for c in modality.setting_classes(cls))
        assert not {f["name"] for f in mine} & {f["name"] for f in theirs}, name
        assert not {f["flag"] for f in mine + theirs} & {"-n", "-o", "--seed", "--device", "--threads", "--output"}
        for f in mine + theirs:
            assert f["help"] and f["type"] in ("int", "float", "bool", "str"), (name, f)
            if f["low"] is not None and f["high"] is not None:
                assert f["low"] <= f["high"] and math.isfinite(f["high"])
    assert get_model_class("vae").SampleSettings is NoSettings


def test_the_explorer_offers_exactly_the_declared_settings(runs):
    def names(run):
        return [f["name"] for f in views.describe(genlab.load(run))["settings"]]
    assert names(runs["ddpm"]) == ["steps"]
    assert names(runs["sentence-vae"]) == ["temperature", "greedy"]
    assert names(runs["vpn"]) == ["frames"]
    assert names(runs["vae"]) == []
