"""text2img (GAN-CLS, Reed et al. 2016): it learns to draw the class a caption names, in as many ways as
its noise z says (MSGAN's mode seeking), its discriminator rejects real images with another image's
caption, and a run samples the same images for the same caption
and seed after it is saved and loaded, through the command line and the library alike."""
import json
import random

import numpy as np
import pytest
import torch
from PIL import Image
from torch.nn import functional as F

import genlab
from conftest import genlab as run_cli, refused
from genlab import modalities
from genlab.data.captions.batches import token_ids
from genlab.data.captions.grammar import scheme_for
from genlab.data.containers.images import save_grid
from genlab.evaluation.features import builtin_network
from genlab.models import GenerativeModel, get_model_class
from genlab.models.adversarial.indicators import mean_pairwise_distance
from genlab.models.base import make_config

pytestmark = pytest.mark.usefixtures("one_thread")

# Tiny nets at ten times the learning rate bear a fifth of the paper's mode-seeking weight (the docstring's).
TINY = {"hidden": "128", "latent_dim": "16", "word_dim": "16", "text_hidden": "32", "text_dim": "16",
        "diversity": "0.2"}
EPOCHS = 24
TINY_FLAGS = ["--hidden", "64", "--latent-dim", "8", "--word-dim", "8", "--text-hidden", "16", "--text-dim", "8"]


def built(spec="digits", **settings):
    """A text2img model on `spec`, its info, and its training batches, as `genlab train` builds them."""
    cls = get_model_class("text2img")
    image = modalities.get("image")
    config = make_config(cls.Config, {**TINY, **settings})
    ds = image.load(spec, {})
    info, record = image.prepare(ds, cls, config, {"spec": spec})
    torch.manual_seed(0)
    model = cls(config, info)
    train, _ = image.batches(ds, info, record, batch_size=64, seed=0, device="cpu")
    return model, ds, train


def trained(**settings):
    """A tiny model after a few seconds on the 8×8 digits, and 20 samples (each its own z) of each class's
    plain caption ("a seven"), class by class."""
    model, ds, train = built(**settings)
    opt = model.configure_optimizers(2e-3)
    for epoch in range(EPOCHS):
        for batch in train.epoch(epoch):
            model.train_step(batch, opt)
    model.eval()
    scheme = scheme_for(ds)
    captions = [scheme.caption(k, (0, 0, 0), random.Random(k)) for k in range(10)]
    tokens = token_ids(model.info.vocab, captions).repeat_interleave(20, 0)
    return ds, model.sample(len(tokens), condition=tokens, generator=torch.Generator().manual_seed(0))


@pytest.fixture(scope="module")
def learnt():
    threads = torch.get_num_threads()      # a module's fixture comes before the one_thread fixture
    torch.set_num_threads(1)
    try:
        return trained()
    finally:
        torch.set_num_threads(threads)


def test_it_learns_to_draw_the_class_its_caption_names(learnt):
    """genlab's classifier reads the digit each caption names, against 10% by chance (about 90% after 24
    epochs on one thread, with mode seeking as without)."""
    ds, images = learnt
    _, probs = builtin_network(ds, "cpu")(images)
    accuracy = (probs.argmax(1) == torch.arange(10).repeat_interleave(20)).float().mean().item()
    assert accuracy > 0.6, accuracy


def spread_per_caption(images: torch.Tensor) -> float:
    return sum(mean_pairwise_distance(group) for group in images.split(20)) / 10


def test_mode_seeking_makes_one_caption_draw_many_images(learnt):
    """Without the mode-seeking term G draws nearly one image per caption whatever z (its samples of one
    caption about 35% as spread as the class's real images); with it about 85%, nearly as varied as the class."""
    ds, images = learnt
    _, collapsed = trained(diversity="0")
    x = ds.train_x.float() / 255
    real = sum(mean_pairwise_distance(x[ds.train_y == k]) for k in range(10)) / 10
    seeking, plain = spread_per_caption(images), spread_per_caption(collapsed)
    assert seeking > 0.6 * real and seeking > 1.5 * plain, (seeking, plain, real)


def test_the_mode_seeking_term_is_msgans_ratio():
    """G's loss adds 1 / (mean|G(z₁, t) − G(z₂, t)| / mean|z₁ − z₂| + ε), written out here from the same
    draws; with `diversity` 0 it is not taken."""
    model, _, train = built(interpolation="0")
    tokens = next(iter(train.epoch(0))).condition
    n = len(tokens)
    torch.manual_seed(7)
    with torch.no_grad():
        code = model.encoder(tokens)
        z = torch.randn(2 * n, model.config.latent_dim)
        fake = model.generator(z, code.repeat(2, 1))
        expected = 1 / ((fake[:n] - fake[n:]).abs().mean() / (z[:n] - z[n:]).abs().mean() + 1e-5)
        adversarial = F.softplus(-model.discriminator(fake, code.repeat(2, 1))).mean()
    torch.manual_seed(7)
    logs = model._generator_step(tokens, model.configure_optimizers(2e-3)["generator"])
    assert logs["g_ms_loss"] == pytest.approx(float(expected), rel=1e-5)
    assert logs["g_loss"] == pytest.approx(float(adversarial), rel=1e-5)
    model, _, _ = built(interpolation="0", diversity="0")
    assert "g_ms_loss" not in model._generator_step(tokens, model.configure_optimizers(2e-3)["generator"])


def test_the_discriminator_loss_is_gan_cls_three_terms():
    model, _, train = built()
    batch = next(iter(train.epoch(0)))
    real, tokens = batch.x * 2 - 1, batch.condition
    # The loss written out from D's scores: real, mismatched (another image's caption, the same words
    # excepted) and fake, the last two halved, as the paper's; then D's step on the same draws.
    torch.manual_seed(7)
    with torch.no_grad():
        fake = model.generator(model._noise(len(real)), model.encoder(tokens))
        n = len(tokens)
        other = (torch.arange(n) + int(torch.randint(1, n, ()))) % n
        code = model.encoder(tokens)
        differ = (tokens != tokens[other]).any(1)
        expected = (F.softplus(-model.discriminator(real, code)).mean()
                    + 0.5 * F.softplus(model.discriminator(real, code[other]))[differ].mean()
                    + 0.5 * F.softplus(model.discriminator(fake, code)).mean())
    torch.manual_seed(7)
    logs = model._discriminator_step(real, tokens, model.configure_optimizers(2e-3)["discriminator"])
    assert logs["d_loss"] == pytest.approx(float(expected), rel=1e-5)
    assert {"d_real_acc", "d_fake_acc", "d_wrong_acc"} <= set(logs)


def test_the_discriminator_pushes_a_real_image_with_a_wrong_caption_to_fake():
    model, _, train = built()
    opt = model.configure_optimizers(2e-3)["discriminator"]
    batches = list(train.epoch(0))
    for step in range(200):                                     # D alone, G as it is: about 9 epochs
        batch = batches[step % len(batches)]
        model._discriminator_step(batch.x * 2 - 1, batch.condition, opt)
    model.eval()
    batch = batches[1]
    with torch.no_grad():
        code = model.encoder(batch.condition)
        other = (torch.arange(len(code)) + 1) % len(code)
        differ = (batch.condition != batch.condition[other]).any(1)
        matched = model.discriminator(batch.x * 2 - 1, code)
        mismatched = model.discriminator(batch.x * 2 - 1, code[other])[differ]
    assert float(matched.mean()) > 0 > float(mismatched.mean())
    # Most pairs, not all: another image's caption may say the same digit in other words.
    assert float((matched[differ] > mismatched).float().mean()) > 0.75


def test_a_caption_repeated_across_the_batch_is_no_mismatch():
    model, _, train = built()
    batch = next(iter(train.epoch(0)))
    same = batch.condition[:1].expand(16, -1)
    with torch.no_grad():
        terms = model.discriminator_terms(batch.x[:16] * 2 - 1, same, batch.x[16:32] * 2 - 1)
    assert float(terms["wrong"]) == 0 and len(terms["wrong_out"]) == 0


def test_gan_int_adds_the_halfway_term_only_when_asked():
    for weight, has in (("1.0", True), ("0", False)):
        model, _, train = built(interpolation=weight)
        logs = model.train_step(next(iter(train.epoch(0))), model.configure_optimizers(2e-4))
        assert ("g_int_loss" in logs) == has and all(np.isfinite(v) for v in logs.values())


# ---- through the command line ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("t2i") / "run"
    assert run_cli("train", "text2img", "--data", "digits", *TINY_FLAGS, "--epochs", "2", "--samples", "16",
                   "--holdout", "thick 7", "--out", out, "--threads", "1") == 0
    return out


def test_a_run_keeps_its_words_and_samples_a_caption_the_same_after_loading(run, tmp_path):
    config = json.loads((run / "config.json").read_text())
    assert "thick" in config["info"]["vocab"] and config["info"]["captions"][7] == "a seven"
    assert config["data"]["holdout"] == "thick seven" and config["config"]["holdout"] == "thick 7"
    assert (run / "samples" / "epoch-0002.png").is_file()
    a, b, c = (tmp_path / f"{k}.png" for k in "abc")
    for out, text in ((a, "a thin upright three"), (b, "a thin upright three"), (c, "a thick seven")):
        assert run_cli("sample", run, "--text", text, "-n", "8", "--seed", "3", "-o", out, "--threads", "1") == 0
    assert a.read_bytes() == b.read_bytes() and a.read_bytes() != c.read_bytes()
    # The library, from the saved files alone: the very same images.
    model = GenerativeModel.from_pretrained(run)
    tokens = token_ids(model.info.vocab, ["a thin upright three"])
    images = model.sample(8, condition=tokens, generator=torch.Generator().manual_seed(3))
    save_grid(images, tmp_path / "lib.png")
    assert np.array_equal(np.asarray(Image.open(tmp_path / "lib.png")), np.asarray(Image.open(a)))
    again = genlab.load(run).sample(8, condition=tokens, generator=torch.Generator().manual_seed(3))
    assert torch.equal(images, again)


def test_a_resumed_run_equals_an_uninterrupted_one(tmp_path):
    """Each epoch's wording of the captions and its mismatched pairs replay from the seed."""
    from safetensors.torch import load_file
    settings = dict(hidden=32, latent_dim=8, word_dim=8, text_hidden=16, text_dim=8, holdout="thick 7")
    common = dict(threads=1, quiet=True)
    genlab.train("text2img", "digits", tmp_path / "whole", epochs=2, samples=0, **settings, **common)
    genlab.train("text2img", "digits", tmp_path / "halves", epochs=1, samples=0, **settings, **common)
    genlab.resume(tmp_path / "halves", epochs=2, **common)
    whole, halves = (load_file(tmp_path / r / "model.safetensors") for r in ("whole", "halves"))
    assert whole.keys() == halves.keys() and all(torch.equal(whole[k], halves[k]) for k in whole)


def test_wrong_captions_and_wrong_options_are_one_line(run, tmp_path, capsys):
    refused(capsys, ["sample", run, "--text", "a purple seven", "-o", tmp_path / "x.png"], "'purple'", "words")
    refused(capsys, ["sample", run, "--text", "  ", "-o", tmp_path / "x.png"], "empty")
    refused(capsys, ["sample", run, "--class", "3", "-o", tmp_path / "x.png"], "--class", "--text")
    gan = tmp_path / "gan"
    assert run_cli("train", "gan", "--data", "digits", "--hidden", "16", "--latent-dim", "4", "--epochs", "1",
                   "--samples", "0", "--out", gan, "--threads", "1") == 0
    capsys.readouterr()
    refused(capsys, ["sample", gan, "--text", "a seven", "-o", tmp_path / "x.png"], "--text", "gan")
    refused(capsys, ["train", "text2img", "--data", "digits", "--holdout", "purple 7", "--out", tmp_path / "h"],
              "holdout", "'purple 7'")
    folder = tmp_path / "plain"
    folder.mkdir()
    for i in range(3):
        Image.fromarray(np.full((8, 8), 60 * i, dtype=np.uint8)).save(folder / f"{i}.png")
    refused(capsys, ["train", "text2img", "--data", f"folder:{folder}", "--out", tmp_path / "f"],
              "captions:FILE", "no classes")


def test_it_trains_on_the_users_captions(tmp_path, capsys):
    (tmp_path / "img").mkdir()
    lines = []
    for i in range(20):                                # dark and bright squares, said so
        shade = "bright" if i % 2 else "dark"
        Image.fromarray(np.full((8, 8), 230 if i % 2 else 30, dtype=np.uint8)).save(tmp_path / "img" / f"{i}.png")
        lines.append(f"img/{i}.png\ta {shade} square")
    (tmp_path / "c.txt").write_text("\n".join(lines) + "\n")
    out = tmp_path / "run"
    assert run_cli("train", "text2img", "--data", f"captions:{tmp_path / 'c.txt'}", *TINY_FLAGS, "--epochs", "1",
                   "--samples", "4", "--out", out, "--threads", "1") == 0
    config = json.loads((out / "config.json").read_text())
    assert config["data"]["captions"] == "file" and set(config["info"]["captions"]) == {"a dark square",
                                                                                        "a bright square"}
    assert run_cli("sample", out, "--text", "a bright square", "-n", "4", "-o", tmp_path / "s.png") == 0
    capsys.readouterr()
    refused(capsys, ["sample", out, "--text", "a bright circle", "-o", tmp_path / "s.png"], "'circle'")
    refused(capsys, ["train", "text2img", "--data", f"captions:{tmp_path / 'c.txt'}", "--holdout", "thick 7",
                       "--out", tmp_path / "h"], "holdout")


def test_the_explorer_names_the_caption_of_each_row_it_drew(run):
    from genlab.web import views
    model = genlab.load(run)
    shown = views.sample(model, 8, seed=0)
    assert shown["captions"] == list(model.info.captions) and shown["image"].startswith("data:image/png;base64,")
    typed = views.sample(model, 4, seed=0, settings={"text": "a thin upright three"})
    assert "captions" not in typed


def test_eval_gives_its_class_and_attribute_agreement(run, capsys):
    """The figures the text2img benchmark measured, from `genlab eval` (their values are for the benchmark's
    trained runs; two tiny epochs here): the captions of held-out images read against their classes, and
    each attribute's same-noise pairs over the classes whose combination training said (not thick 7)."""
    assert run_cli("eval", run, "--metrics", "classes", "--samples", "200", "--json", "--threads", "1") == 0
    r = json.loads(capsys.readouterr().out)
    assert 0 <= r["class_agreement"] <= 1 and r["class_samples"] == 200 and r["class_chance"] == 0.1
    assert set(r["attribute_agreement"]) == {a.name for a in scheme_for(genlab.data.load_dataset("digits")).attributes}
    assert all(0 <= m <= 1 and se >= 0 for m, se in r["attribute_agreement"].values())
    assert run_cli("eval", run, "--metrics", "classes", "--samples", "200", "--threads", "1") == 0
    assert "attribute agreement" in capsys.readouterr().out
