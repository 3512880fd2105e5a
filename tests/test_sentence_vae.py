"""The sentence VAE: its parts, that it learns real poems within seconds, and its commands end to end."""
import json
import math

import pytest
import torch

from genlab.data.containers.batch import Batch
from safetensors.torch import load_file

import genlab
from conftest import genlab as run_cli
from genlab.data.sources.corpora import corpus_availability
from genlab.data.text.batches import pad
from genlab.data.text.vocab import BOS, EOS, PAD, UNK, build_vocab
from genlab.models.latent.sentence_vae import SentenceVAE, SentenceVAEConfig

needs = {name: pytest.mark.skipif(not ok, reason=why) for name, (ok, why) in corpus_availability().items()}
pytestmark = pytest.mark.usefixtures("one_thread")   # small recurrent nets: one thread is the fastest

# Short English verse lines: a model small enough to train in seconds on one CPU thread (about 320 steps)
# still finds it worth putting something of each line in its code.
SMALL = ["--max-len", "8", "--embed-dim", "64", "--hidden", "128", "--latent-dim", "16", "--batch-size", "32",
         "--lr", "3e-3", "--kl-warmup", "250", "--word-keep", "0.5", "--samples", "4"]
# Smaller still, on the Tang couplets of five characters a half: for what needs training, not learning.
TINY = ["--max-len", "12", "--embed-dim", "16", "--hidden", "32", "--latent-dim", "4", "--batch-size", "64",
        "--samples", "4"]


def tiny_model(lines=("the cat sat on the mat", "the dog sat on the log", "a cat ran"), **config):
    info = build_vocab(lines, "word", min_count=1, max_len=10)
    torch.manual_seed(0)
    cfg = SentenceVAEConfig(embed_dim=8, hidden=16, latent_dim=4, **config)
    return SentenceVAE(cfg, info), info


def metrics(path):
    return [json.loads(line) for line in (path / "metrics.jsonl").read_text().splitlines()]


# ---- the parts ----------------------------------------------------------------------------------------

def test_kl_weight_schedules():
    def weights(schedule):
        model, _ = tiny_model(kl_schedule=schedule, kl_warmup=100)
        out = []
        for s in (0, 50, 100, 5000):
            model.steps.fill_(s)
            out.append(model.kl_weight())
        return out
    sig = weights("sigmoid")
    assert sig[0] < 0.01 and sig[1] == pytest.approx(0.5) and sig[2:] == [1.0, 1.0]
    assert weights("linear") == [0.0, 0.5, 1.0, 1.0]
    assert weights("none") == [1.0] * 4


def test_word_dropout_hides_inputs_only_while_training():
    model, info = tiny_model(word_keep=0.0)
    x, _ = pad([info.encode("the cat sat"), info.encode("a cat")])
    model.train()
    inputs = model._decoder_inputs(x)
    assert inputs[:, 0].tolist() == [BOS, BOS]
    assert bool(((inputs[:, 1:] == UNK) | (inputs[:, 1:] == PAD)).all())     # every word hidden, padding kept
    model.eval()
    assert model._decoder_inputs(x)[0].tolist() == [BOS] + info.encode("the cat sat")[:-1]


def test_the_iwae_bound_is_tighter_than_the_elbo():
    model, info = tiny_model()
    model.eval()
    x, lengths = pad([info.encode(s) for s in ("the cat sat on the mat", "a cat ran", "the dog sat")])
    torch.manual_seed(1)
    nelbo = torch.stack([model.eval_terms(x, iwae_k=0)["nelbo"] for _ in range(50)]).mean(0)
    iwae = model.iwae_nll(x, lengths, k=50)
    assert bool((iwae < nelbo).all())
    one = model.iwae_nll(x.repeat(50, 1), lengths.repeat(50), k=1).view(50, -1).mean(0)
    assert torch.allclose(one, nelbo, rtol=0.05)                 # k = 1 is the ELBO itself


def test_generation_stops_at_the_end_token_or_the_limit():
    model, info = tiny_model()
    model.eval()
    g = torch.Generator().manual_seed(0)
    ids = model.sample(20, generator=g)
    assert ids.shape[0] == 20 and ids.shape[1] <= info.max_len + 1
    for row in ids.tolist():
        if EOS in row:
            assert all(t == PAD for t in row[row.index(EOS) + 1:])
        assert BOS not in row
    z = torch.randn(5, 4)
    assert model.decode_text(z, greedy=True) == model.decode_text(z, greedy=True)


@pytest.mark.parametrize("mean, warned", [(1.0, False), (0.0, True)])
def test_a_collapsed_code_is_warned_of(mean, warned):
    model, info = tiny_model()
    with torch.no_grad():              # q(z|x) = N(mean, I) for every line: KL = 4 · mean² / 2 nats
        model.to_code.weight.zero_()
        model.to_code.bias.zero_()
        model.to_code.bias[:4] = mean
    model.train()
    x, lengths = pad([info.encode("the cat sat"), info.encode("a cat")])
    model.train_step(Batch(x, lengths=lengths), {"model": torch.optim.SGD(model.parameters(), lr=0.0)})
    report = model.epoch_report(None)
    assert report["kl"] == pytest.approx(2 * mean ** 2, abs=1e-6)
    assert ("posterior collapse" in report.get("warning", "")) == warned


def test_an_lstm_cell_trains_and_writes():
    model, info = tiny_model(cell="lstm")
    x, lengths = pad([info.encode("the cat sat on the mat"), info.encode("a cat ran")])
    opt = model.configure_optimizers(1e-2)
    first = model.train_step(Batch(x, lengths=lengths), opt)["loss"]
    for _ in range(20):
        last = model.train_step(Batch(x, lengths=lengths), opt)["loss"]
    assert last < first
    model.eval()
    assert all(isinstance(s, str) for s in model.sample_text(3, greedy=True))


def test_your_own_text_file(tmp_path, capsys):
    animals, places = ["cat", "dog", "fox", "owl", "hen"], ["hill", "sea", "wood", "town", "barn"]
    lines = [f"The {a} walked to the {p}, and the {b} stayed home." for a in animals for p in places for b in animals]
    (tmp_path / "walks.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "run"
    assert run_cli("train", "sentence-vae", "--data", f"text:{tmp_path / 'walks.txt'}", "--epochs", "1", *TINY,
                   "--max-len", "20", "--out", out) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["info"]["unit"] == "word" and (config["data"]["train"], config["data"]["test"]) == (113, 12)
    capsys.readouterr()
    assert run_cli("sample", out, "-n", "3") == 0
    assert len(capsys.readouterr().out.splitlines()) == 3


# ---- learning on real poems, and the commands --------------------------------------------------------

@pytest.fixture(scope="module")
def poems(tmp_path_factory):
    """A small sentence VAE trained on the lines of English songs and poems through the command line."""
    if not corpus_availability()["songs-poems"][0]:
        pytest.skip(corpus_availability()["songs-poems"][1])
    path = tmp_path_factory.mktemp("text") / "poems"
    threads = torch.get_num_threads()
    try:                                        # trained before the one_thread fixture of any test starts
        torch.set_num_threads(1)
        assert run_cli("train", "sentence-vae", "--data", "songs-poems", "--epochs", "4", *SMALL, "--out", path) == 0
    finally:
        torch.set_num_threads(threads)
    return path


def test_it_learns_poems_better_than_a_unigram_model_and_uses_its_code(poems, capsys):
    assert run_cli("eval", poems, "--json", "--iwae-k", "10") == 0
    result = json.loads(capsys.readouterr().out)
    assert result["perplexity"] < 0.8 * result["unigram_perplexity"]
    assert result["iwae_nats_per_line"] <= result["nelbo_nats_per_line"]
    assert result["kl_nats_per_line"] > 0.2                    # twice the posterior-collapse warning's threshold
    assert json.loads((poems / "eval.json").read_text()) == result
    rows = metrics(poems)
    assert rows[-1]["test_nelbo_nats_per_line"] < rows[0]["test_nelbo_nats_per_line"] and rows[-1]["kl_weight"] == 1.0
    assert all(r["kl"] > 0.1 and r["tokens_per_s"] > 0 and "warning" not in r for r in rows)


@needs["tang300"]
def test_a_collapsing_code_is_reported_as_it_trains(tmp_path, capsys):
    """Neither trick (all words shown, full KL weight from the first step): the decoder learns to ignore z."""
    assert run_cli("train", "sentence-vae", "--data", "tang300", "--epochs", "2", *TINY, "--word-keep", "1",
                   "--kl-schedule", "none", "--out", tmp_path / "run") == 0
    err = capsys.readouterr().err
    assert "posterior collapse" in err
    assert "warning" in metrics(tmp_path / "run")[-1] and metrics(tmp_path / "run")[-1]["kl"] < 0.1


def test_samples_are_lines_of_text(poems, capsys, tmp_path):
    assert (poems / "samples" / "epoch-0004.txt").read_text(encoding="utf-8").count("\n") == 4
    assert not list((poems / "samples").glob("*.png"))
    assert run_cli("sample", poems, "-n", "7", "--seed", "3", "-o", tmp_path / "s.txt") == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 7 and len(set(lines)) > 1
    assert (tmp_path / "s.txt").read_text(encoding="utf-8").splitlines() == lines
    assert run_cli("sample", poems, "-n", "7", "--seed", "3") == 0
    assert capsys.readouterr().out.splitlines() == lines        # the seed fixes the lines
    assert run_cli("sample", poems, "-n", "5", "--greedy") == 0
    greedy = capsys.readouterr().out.splitlines()
    assert run_cli("sample", poems, "-n", "5", "--greedy") == 0
    assert capsys.readouterr().out.splitlines() == greedy
    assert run_cli("sample", poems, "-n", "5", "--temperature", "0.001") == 0
    cold = capsys.readouterr().out.splitlines()                  # a cold softmax is nearly greedy decoding
    assert sum(a == b for a, b in zip(cold, greedy)) >= 4
    model = genlab.load(poems)
    assert all(isinstance(s, str) for s in model.sample_text(3))


def test_interpolation_and_reconstruction(poems, capsys):
    a, b = "Where seagulls flew over their nest.", "The frost still lingers on the earth"
    assert run_cli("explore", poems, "interpolate", a, b, "--steps", "5") == 0
    walk = capsys.readouterr().out.splitlines()
    assert len(walk) == 5 and all(walk)
    assert run_cli("explore", poems, "reconstruct", a) == 0
    assert capsys.readouterr().out.splitlines() == walk[:1]     # both decode a's own code greedily
    assert run_cli("explore", poems, "reconstruct", a + " Zyxwvut", "-n", "3") == 0
    out, err = capsys.readouterr()
    assert len(out.splitlines()) == 4 and "unknown to this model, read as <unk>:" in err and "'zyxwvut'" in err


@needs["tang300"]
def test_a_resumed_run_is_the_uninterrupted_one(tmp_path):
    argv = ["train", "sentence-vae", "--data", "tang300", *TINY, "--seed", "5"]
    assert run_cli(*argv, "--epochs", "2", "--out", tmp_path / "whole") == 0
    assert run_cli(*argv, "--epochs", "1", "--out", tmp_path / "split") == 0
    assert run_cli("train", "--resume", tmp_path / "split", "--epochs", "2") == 0
    drop = {"seconds", "images_per_s", "tokens_per_s"}
    whole, split = ([{k: v for k, v in r.items() if k not in drop} for r in metrics(tmp_path / d)]
                    for d in ("whole", "split"))
    assert whole == split
    a, b = (load_file(str(tmp_path / d / "model.safetensors")) for d in ("whole", "split"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert int(a["steps"]) == 2 * math.ceil(618 / 64)           # the KL schedule's clock came back too
    lines = (tmp_path / "split" / "samples" / "epoch-0002.txt").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 4 and any("\u4e00" <= ch <= "\u9fff" for ch in "".join(lines))  # Chinese, by character


@needs["tang300"]
def test_the_data_command_shows_text_corpora(capsys):
    assert run_cli("data") == 0
    listing = capsys.readouterr().out
    assert "tang300" in listing and "text:PATH" in listing and "digits" in listing
    assert run_cli("data", "tang300") == 0
    out = capsys.readouterr().out
    assert "1440 lines" in out and "vocab" in out and "examples" in out and "fortunes-zh" in out
