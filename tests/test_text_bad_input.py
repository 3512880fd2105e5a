"""Bad input to the text commands: exit status 2, one line `genlab: error: ...` naming the problem, never a
traceback, and nothing written or changed."""
import shutil

import pytest
import torch

from conftest import genlab as run_cli
from genlab.data.sources import fortunes
from genlab.data.sources.corpora import corpus_availability
from test_bad_input import refused, snapshot

ok, why = corpus_availability()["tang300"]
pytestmark = [pytest.mark.skipif(not ok, reason=why), pytest.mark.usefixtures("one_thread")]

TINY = ["--max-len", "12", "--embed-dim", "16", "--hidden", "32", "--latent-dim", "4", "--batch-size", "64",
        "--samples", "2"]


@pytest.fixture(autouse=True)
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="module")
def poems(tmp_path_factory):
    path = tmp_path_factory.mktemp("text") / "poems"
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        assert run_cli("train", "sentence-vae", "--data", "tang300", "--epochs", "1", *TINY, "--out", path) == 0
    finally:
        torch.set_num_threads(threads)
    return path


def text_file(tmp_path, content: bytes):
    f = tmp_path / "lines.txt"
    f.write_bytes(content)
    return f"text:{f}"


# ---- train: refused before anything is written ----------------------------------------------------------

TRAIN_CASES = [
    (["sentence-vae"], ["sentence-vae models text", "'digits' is images", "tang300", "text:PATH"]),
    (["sentence-vae", "--data", "mnist"], ["models text", "'mnist'"]),
    (["vae", "--data", "tang300"], ["'tang300' is text", "vae models images", "sentence-vae"]),
    (["sentence-vae", "--data", "text:nosuch.txt"], ["text file nosuch.txt does not exist"]),
    (["sentence-vae", "--data", "tang300", "--word-keep", "1.5"], ["word_keep", "between 0 and 1", "1.5"]),
    (["sentence-vae", "--data", "tang300", "--tokens", "syllable"], ["tokens must be one of", "'syllable'"]),
    (["sentence-vae", "--data", "tang300", "--cell", "rnn"], ["cell must be one of", "gru, lstm"]),
    (["sentence-vae", "--data", "tang300", "--max-len", "3"], ["longer than max_len=3", "--max-len"]),
    (["sentence-vae", "--data", "tang300", "--binarize", "dynamic"], ["--binarize is for image models"]),
    (["sentence-vae", "--data", "tang300", "--size", "8"], ["--size is for", "image"]),
]


@pytest.mark.parametrize("argv, names", TRAIN_CASES, ids=[" ".join(a) for a, _ in TRAIN_CASES])
def test_train_refuses_bad_text_options(capsys, tmp_path, argv, names):
    refused(capsys, ["train", *argv, "--out", tmp_path / "out"], *names)
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("content, names", [
    (b"a first line\na second line\n\xe9t\xe9 en France\n", ["line 3", "not UTF-8", "0xe9", "save the file as UTF-8"]),
    (b"", ["is empty"]),
    (b"one line only\n", ["1 distinct non-empty line", "at least 2"]),
])
def test_train_refuses_a_bad_text_file(capsys, tmp_path, content, names):
    spec = text_file(tmp_path, content)
    refused(capsys, ["train", "sentence-vae", "--data", spec, "--out", tmp_path / "out"], *names)
    assert not (tmp_path / "out").exists()


def test_a_missing_package_says_what_to_install(capsys, tmp_path, monkeypatch):
    monkeypatch.setattr(fortunes, "FORTUNE_DIRS", (tmp_path / "nowhere",))
    refused(capsys, ["train", "sentence-vae", "--data", "tang300", "--out", tmp_path / "out"],
            "'tang300' is not available", "apt-get install fortunes-zh")
    refused(capsys, ["data", "fortunes"], "apt-get install fortunes-min fortunes")
    assert not (tmp_path / "out").exists()


# ---- a trained text run given bad options, and an image run given text options --------------------------

RUN_CASES = [
    ("text", ["sample", "{}", "--temperature", "0.5", "--greedy"], ["--temperature and --greedy exclude each other"]),
    ("text", ["sample", "{}", "--temperature", "0"], ["--temperature must be from 0.001 to 1,000", "'0'"]),
    ("text", ["sample", "{}", "-o", "lines.png"], ["'lines.png'", ".txt"]),
    ("text", ["sample", "{}", "-o", "sub/lines.txt"], ["sub", "does not exist"]),
    ("text", ["sample", "{}", "--class", "1"], ["--class is for", "image"]),
    ("text", ["explore", "{}", "grid"], ["grid is for image models", "interpolate and reconstruct"]),
    ("text", ["explore", "{}", "interpolate", "", "春风"], ["the line is empty"]),
    ("text", ["explore", "{}", "interpolate", "春风", "明月", "--steps", "1"], ["--steps must be at least 2"]),
    ("text", ["explore", "{}", "reconstruct", "qwerty"], ["every token of 'qwerty' is unknown", "by char"]),
    ("text", ["explore", "{}", "reconstruct", "春风", "-n", "-2"], ["-n must be 0 or more"]),
    ("text", ["eval", "{}", "--metrics", "fid"], ["--metrics fid", "text runs have likelihood only"]),
    ("text", ["data", "tang300", "-o", "x.png"], ["-o writes a grid of images"]),
    ("text", ["complete", "{}", "--image", "x.png"], ["sentence-vae cannot complete images"]),
    ("vae", ["sample", "{}", "--greedy"], ["--greedy is for text models", "vae, which draws images"]),
    ("vae", ["sample", "{}", "--temperature", "2"], ["--temperature does not apply to vae"]),
    ("vae", ["explore", "{}", "reconstruct", "a line"], ["reconstruct is for text models", "vae draws images"]),
]


@pytest.mark.slow
@pytest.mark.parametrize("kind, argv, names", RUN_CASES, ids=[f"{k} {' '.join(a[::2])}" for k, a, _ in RUN_CASES])
def test_bad_options_for_a_run(capsys, tmp_path, runs, poems, kind, argv, names):
    run = poems if kind == "text" else runs["vae"]
    before, run_before = snapshot(tmp_path), snapshot(run)
    refused(capsys, [a.format(run) for a in argv], *names)
    assert snapshot(tmp_path) == before
    assert snapshot(run) == run_before


@pytest.mark.slow
def test_eval_refuses_text_and_image_runs_together(capsys, tmp_path, runs, poems):
    before = snapshot(poems)
    refused(capsys, ["eval", poems, runs["vae"]], "evaluate image runs and text runs separately")
    assert snapshot(poems) == before


def test_resume_of_a_text_run_refuses_image_options(capsys, tmp_path, poems):
    run = shutil.copytree(poems, tmp_path / "run")
    before = snapshot(run)
    refused(capsys, ["train", "--resume", run, "--binarize", "none", "--epochs", "2"],
            "--binarize cannot change when a run resumes")
    assert snapshot(run) == before
