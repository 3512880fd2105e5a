"""Unpaired translation: the measures against the truth on hand-made cases, two domains drawn without
pairing, the translators' pieces against their papers' formulas, their learning on tiny data, and the
commands (train with --data-a/--data-b, sample, translate, eval) end to end on tiny folders."""
import json

import pytest
import torch
from PIL import Image

from genlab.cli import main
from genlab.data import make_info
from genlab.data.containers.base import ImageDataset
from genlab.data.containers.batch import Batch
from genlab.errors import UserError
from genlab.data.containers.two_domains import TwoDomainBatches, TwoDomains, conform, split_domains, two_domains
from genlab.evaluation import translation as tr
from genlab.modalities.image import ImageModality
from genlab.models import get_model_class
from genlab.models.adversarial.cyclegan import least_squares
from genlab.models.adversarial.translation_nets import ImagePool
from genlab.models.base import make_config

pytestmark = pytest.mark.usefixtures("one_thread")


def genlab(*argv) -> int:
    return main([str(a) for a in argv])


# ---- the measures, on hand-made cases ---------------------------------------------------------------

def test_a_perfect_translation_scores_perfectly_and_the_identity_scores_as_its_baseline():
    g = torch.Generator().manual_seed(0)
    inputs = torch.randint(0, 256, (6, 3, 5, 5), dtype=torch.uint8, generator=g)
    truth = torch.randint(0, 256, (6, 3, 5, 5), dtype=torch.uint8, generator=g)
    train_a = torch.randint(0, 256, (4, 3, 5, 5), dtype=torch.uint8, generator=g)
    perfect = tr.direction_figures(truth.double() / 255, inputs, train_a, truth, truth=truth)
    assert perfect["mae"] == pytest.approx(0, abs=1e-9) and perfect["within"] == 1.0
    assert perfect["colour_tv"] == pytest.approx(0, abs=1e-9)           # the very colours of the target
    identity = tr.direction_figures(inputs.double() / 255, inputs, train_a, truth, truth=truth)
    assert identity["mae"] == pytest.approx(identity["identity_mae"])
    assert identity["within"] == pytest.approx(identity["identity_within"])
    assert identity["colour_tv"] == pytest.approx(identity["colour_tv_identity"])


def test_mae_and_share_within_against_a_pixel_by_pixel_count():
    g = torch.Generator().manual_seed(1)
    a = torch.randint(0, 256, (3, 3, 4, 4), dtype=torch.uint8, generator=g)
    b = torch.randint(0, 256, (3, 3, 4, 4), dtype=torch.uint8, generator=g)
    for i in range(3):
        diffs, close = [], 0
        for y in range(4):
            for x in range(4):
                d = [abs(int(a[i, c, y, x]) - int(b[i, c, y, x])) for c in range(3)]
                diffs += d
                close += sum(v * v for v in d) ** 0.5 <= 100
        assert float(tr.pixel_mae(a, b)[i]) == pytest.approx(sum(diffs) / len(diffs))
        assert float(tr.within_share(a, b, 100)[i]) == pytest.approx(close / 16)
    # The threshold itself counts as within; a hair beyond it does not.
    flat = torch.zeros(1, 3, 1, 2, dtype=torch.uint8)
    off = flat.clone()
    off[0, 0, 0, 0], off[0, 0, 0, 1] = 16, 17
    assert float(tr.within_share(off, flat, 16.0)[0]) == 0.5


def test_the_colour_map_recovers_a_recolouring_and_takes_medians():
    g = torch.Generator().manual_seed(2)
    colours = torch.tensor([[255, 255, 255], [200, 30, 30], [30, 200, 30], [10, 10, 10]], dtype=torch.uint8)
    recolour = torch.tensor([[255, 255, 255], [30, 30, 200], [240, 220, 0], [10, 10, 10]], dtype=torch.uint8)
    index = torch.randint(0, 4, (20, 6, 6), generator=g)
    source, target = colours[index].permute(0, 3, 1, 2), recolour[index].permute(0, 3, 1, 2)
    cmap = tr.fit_colour_map(source[:15], target[:15])
    assert torch.equal(cmap(source[15:]), target[15:])                # held out: exact
    assert tr.scores(cmap(source[15:]), target[15:])["mae"] == 0
    # One source colour whose pixels become X three times and Y twice: the median is X.
    src = torch.zeros(1, 1, 1, 5, dtype=torch.uint8)
    dst = torch.tensor([[[[7, 7, 7, 200, 200]]]], dtype=torch.uint8)
    assert int(tr.fit_colour_map(src, dst)(src)[0, 0, 0, 0]) == 7
    # Grey images keep every level: the inversion 255 - x is learnt exactly.
    grey = torch.randint(0, 256, (8, 1, 8, 8), dtype=torch.uint8, generator=g)
    assert torch.equal(tr.fit_colour_map(grey, 255 - grey)(grey), 255 - grey)


def test_histogram_distance_and_class_agreement_on_hand_made_cases():
    black, white = torch.zeros(2, 3, 4, 4, dtype=torch.uint8), torch.full((2, 3, 4, 4), 255, dtype=torch.uint8)
    assert tr.histogram_distance(black, black) == 0 and tr.histogram_distance(black, white) == 1
    half = torch.cat([black, white])
    assert tr.histogram_distance(half, white) == pytest.approx(0.5)
    share, se = tr.agreement(torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]]), torch.tensor([0, 1, 1, 1]))
    assert share == 0.75 and se == pytest.approx((0.75 / 3) ** 0.5 / 2)      # sample SD over √4


def test_the_table_has_a_row_per_direction():
    r = {"run": "runs/x", "model": "cyclegan", "cycle_a_mae": 3.0, "cycle_b_mae": 4.0, "a2b_mae": 1.5,
         "a2b_identity_mae": 9.0, "b2a_mae": 2.0, "b2a_identity_mae": 9.0}
    lines = tr.format_table([r]).splitlines()
    assert "identity MAE" in lines[0] and lines[2].split()[:3] == ["x", "cyclegan", "a2b"]
    assert lines[3].split()[:4] == ["x", "cyclegan", "b2a", "4.000"]


# ---- two domains, never paired ---------------------------------------------------------------------

def test_a_spec_of_two_domains_is_cut_where_both_sides_are_data(tmp_path):
    assert split_domains("pokemon+pokemon-shiny") == ("pokemon", "pokemon-shiny")
    assert split_domains("folder:/x/a+b+digits") == ("folder:/x/a+b", "digits")    # a "+" in a path
    assert split_domains("folder:/x/a+b") is None and split_domains("digits") is None
    assert two_domains("mnist", "folder:/y") == "mnist+folder:/y"
    with pytest.raises(UserError, match="--data-b"):
        two_domains("mnist", "nonsense")


def coded(n: int) -> torch.Tensor:
    """n 1×2×2 images whose first pixel is their index: what a batch holds is read back from it."""
    x = torch.zeros(n, 1, 2, 2, dtype=torch.uint8)
    x[:, 0, 0, 0] = torch.arange(n, dtype=torch.uint8)
    return x


def test_two_domains_are_drawn_independently_each_image_once_an_epoch():
    n = 60
    batches = TwoDomainBatches(coded(n), coded(n), binarize="none", batch_size=6, shuffle=True, seed=0)
    met, seen_a, seen_b = 0, [], []
    for epoch in range(5):
        a, b = [], []
        for batch in batches.epoch(epoch):
            assert len(batch.x) == len(batch.condition)
            a.append((batch.x[:, 0, 0, 0] * 256).floor().long())
            b.append((batch.condition[:, 0, 0, 0] * 256).floor().long())
        a, b = torch.cat(a), torch.cat(b)
        assert sorted(a.tolist()) == list(range(n)) and sorted(b.tolist()) == list(range(n))
        met += int((a == b).sum())               # image i of A beside image i of B: a true pair
        seen_a.append(a), seen_b.append(b)
    assert met <= 15                              # chance: one per epoch on average; paired: all 300
    assert not torch.equal(seen_a[0], seen_a[1])  # a new order every epoch
    again = [(bt.x, bt.condition) for bt in batches.epoch(3)]     # and the same order for the same epoch
    assert torch.equal(torch.cat([x for x, _ in again])[:, 0, 0, 0].mul(256).floor().long(), seen_a[3])


def test_the_smaller_domain_is_repeated_to_the_larger_ones_length():
    batches = TwoDomainBatches(coded(10), coded(25), binarize="none", batch_size=8, shuffle=True, seed=1)
    a = torch.cat([bt.x for bt in batches.epoch(0)])[:, 0, 0, 0].mul(256).floor().long()
    b = torch.cat([bt.condition for bt in batches.epoch(0)])[:, 0, 0, 0].mul(256).floor().long()
    assert len(a) == len(b) == 25 and sorted(b.tolist()) == list(range(25))
    assert sorted(torch.bincount(a, minlength=10).tolist()) == [2] * 5 + [3] * 5     # two rounds, then half a third
    test = TwoDomainBatches(coded(10), coded(25), binarize="none", batch_size=8, shuffle=False)
    assert len(torch.cat([bt.x for bt in test.epoch(0)])) == 25


def test_domain_b_takes_domain_as_shape():
    grey = ImageDataset("g", torch.randint(0, 256, (4, 1, 8, 8), dtype=torch.uint8), torch.zeros(2, 1, 8, 8, dtype=torch.uint8))
    colour = conform(grey, (3, 4, 4))
    assert colour.train_x.shape == (4, 3, 4, 4) and torch.equal(colour.train_x[:, 0], colour.train_x[:, 2])
    # Area averaging: each 2×2 block's mean.
    expected = grey.train_x.double().reshape(4, 1, 4, 2, 4, 2).mean((3, 5)).round().to(torch.uint8)
    assert torch.equal(colour.train_x[:, :1], expected)
    back = conform(colour, (1, 4, 4))
    assert (back.train_x.int() - colour.train_x[:, :1].int()).abs().max() <= 1      # luma of a grey is the grey


# ---- the translators' pieces ------------------------------------------------------------------------

def test_the_pool_keeps_fifty_past_fakes_and_swaps_half():
    torch.manual_seed(0)
    pool = ImagePool(50, (1, 2, 2))
    first = torch.rand(50, 1, 2, 2)
    assert torch.equal(pool.query(first), first) and int(pool.count) == 50    # filled, each returned as it came
    new = torch.arange(400.0)[:, None, None, None].expand(-1, 1, 2, 2) + 10    # each its own value
    out = pool.query(new)
    swapped = (out != new).flatten(1).any(1)
    assert 0.4 < swapped.float().mean() < 0.6                                 # about half from the pool
    for i in swapped.nonzero().flatten().tolist():                            # each an earlier fake
        v = float(out[i, 0, 0, 0])
        assert (v < 10 and bool((first == out[i]).flatten(1).all(1).any())) or 10 <= v < 10 + i
    assert "images" in pool.state_dict() and "count" in pool.state_dict()    # saved with the weights


def test_cyclegan_losses_are_the_papers():
    info = make_info(ImageDataset("t", torch.zeros(2, 3, 8, 8, dtype=torch.uint8), torch.zeros(1, 3, 8, 8, dtype=torch.uint8)), "none")
    cls = get_model_class("cyclegan")
    torch.manual_seed(0)
    model = cls(make_config(cls.Config, {"features": "4", "blocks": "1", "pool_size": "0"}), info)
    scores = torch.tensor([[0.5, 1.5], [-1.0, 1.0]])
    assert float(least_squares(scores, 1.0)) == pytest.approx((0.25 + 0.25 + 4 + 0) / 4)
    x, y = torch.rand(3, 3, 8, 8), torch.rand(3, 3, 8, 8)
    a, b = x * 2 - 1, y * 2 - 1
    with torch.no_grad():
        cycle = (model.g_ba(model.g_ab(a)) - a).abs().mean() + (model.g_ab(model.g_ba(b)) - b).abs().mean()
        identity = (model.g_ab(b) - b).abs().mean() + (model.g_ba(a) - a).abs().mean()
        adversarial = least_squares(model.d_b(model.g_ab(a)), 1) + least_squares(model.d_a(model.g_ba(b)), 1)
        d_b = 0.5 * (least_squares(model.d_b(b), 1) + least_squares(model.d_b(model.g_ab(a)), 0))
    logs = model.train_step(Batch(x, y), model.configure_optimizers(1e-4))
    assert logs["cycle_loss"] == pytest.approx(float(cycle), rel=1e-5)
    assert logs["identity_loss"] == pytest.approx(float(identity), rel=1e-5)
    assert logs["g_loss"] == pytest.approx(float(adversarial), rel=1e-5)
    assert logs["d_b_loss"] == pytest.approx(float(d_b), rel=1e-3)        # the fakes of G before its step
    # The round trip's test figure is its mean absolute error in 8-bit levels.
    terms = model.eval_terms(x, y)
    with torch.no_grad():
        direct = (model.g_ba(model.g_ab(a)) - a).abs().flatten(1).mean(1) * 127.5
    assert torch.allclose(terms["cycle_a_mae"], direct)


@pytest.mark.parametrize("name", ["cyclegan", "discogan"])
def test_a_translator_refuses_what_is_not_images_and_translates_either_way(name):
    info = make_info(ImageDataset("t", torch.zeros(2, 1, 8, 8, dtype=torch.uint8), torch.zeros(1, 1, 8, 8, dtype=torch.uint8)), "none")
    cls = get_model_class(name)
    model = cls(make_config(cls.Config, {"features": "4"}), info).eval()
    with pytest.raises(UserError, match="draws none of its own"):
        model.sample(2)
    with pytest.raises(UserError, match="N×1×8×8"):
        model.translate(torch.rand(2, 3, 8, 8))
    with pytest.raises(UserError, match="a2b or b2a"):
        model.translate(torch.rand(2, 1, 8, 8), "sideways")
    with pytest.raises(UserError, match="--data-a"):
        model.train_step(Batch(torch.rand(2, 1, 8, 8)), model.configure_optimizers(1e-4))
    x = torch.rand(2, 1, 8, 8)
    ab, ba = model.translate(x, "a2b"), model.translate(x, "b2a")
    assert ab.shape == x.shape and not torch.equal(ab, ba) and 0 <= float(ab.min()) and float(ab.max()) <= 1
    assert torch.equal(model.sample(2, condition=x), ab)


# ---- learning: the colours move to the other domain's within seconds ---------------------------------

def greys(n, low, high, seed):
    g = torch.Generator().manual_seed(seed)
    level = torch.randint(low, high, (n, 1, 1, 1), generator=g)
    return (level + torch.randint(-8, 9, (n, 1, 8, 8), generator=g)).clamp(0, 255).to(torch.uint8)


@pytest.mark.parametrize("name, settings", [("cyclegan", {"features": "8", "blocks": "1"}),
                                            ("discogan", {"features": "8"})])
def test_a_translator_learns_to_move_dark_images_into_the_light_domain(name, settings):
    a = ImageDataset("dark", greys(64, 0, 100, 0), greys(32, 0, 100, 1))
    b = ImageDataset("light", greys(64, 155, 255, 2), greys(32, 155, 255, 3))
    ds = TwoDomains(name="dark+light", train_x=a.train_x, test_x=a.test_x, a=a, b=b)
    cls = get_model_class(name)
    torch.manual_seed(0)
    model = cls(make_config(cls.Config, settings), make_info(ds, "none"))
    opts = model.configure_optimizers(1e-3)
    batches = TwoDomainBatches(a.train_x, b.train_x, binarize="none", batch_size=16, shuffle=True)
    for epoch in range(15):                     # 60 steps
        for batch in batches.epoch(epoch):
            model.train_step(batch, opts)
    model.eval()
    f = ImageModality().translation_figures(model, ds)
    # The inputs' grey levels and the target's do not overlap (total variation 1); the translations' do.
    assert f["a2b_colour_tv_identity"] == 1.0 and f["b2a_colour_tv_identity"] == 1.0
    assert f["a2b_colour_tv"] < 0.6 and f["b2a_colour_tv"] < 0.6, f


def test_figures_against_the_truth_when_the_domains_name_the_same_images():
    g = torch.Generator().manual_seed(4)
    xa = torch.randint(0, 256, (12, 3, 8, 8), dtype=torch.uint8, generator=g)
    xb = 255 - xa
    ids = [f"c{i}" for i in range(12)]
    a = ImageDataset("a", xa[:8], xa[8:], extra={"train_ids": ids[:8], "test_ids": ids[8:]})
    b = ImageDataset("b", xb[:8], xb[8:], extra={"train_ids": ids[:8], "test_ids": ids[8:]})
    ds = TwoDomains(name="a+b", train_x=a.train_x, test_x=a.test_x, a=a, b=b)
    cls = get_model_class("cyclegan")
    model = cls(make_config(cls.Config, {"features": "4", "blocks": "1"}), make_info(ds, "none")).eval()
    f = ImageModality().translation_figures(model, ds)
    direct = tr.scores(xa[8:], xb[8:])
    assert f["a2b_identity_mae"] == pytest.approx(direct["mae"])
    translated = model.translate((xa[8:].float() + 0.5) / 256, "a2b")
    assert f["a2b_mae"] == pytest.approx(tr.scores(translated, xb[8:])["mae"])
    assert "a2b_agreement" not in f                 # unlabelled: no classes to read
    unpaired = TwoDomains(name="a+b", train_x=a.train_x, test_x=a.test_x, a=a,
                          b=ImageDataset("b", xb[:8], xb[8:], extra={"test_ids": ids[8:]}))
    assert "a2b_mae" not in ImageModality().translation_figures(model, unpaired)


# ---- the commands, end to end on tiny folders -------------------------------------------------------

def write_folder(root, colour, n=12, side=12, seed=0):
    """n images of a coloured square on white at random places."""
    g = torch.Generator().manual_seed(seed)
    root.mkdir(parents=True)
    for i in range(n):
        im = Image.new("RGB", (side, side), (255, 255, 255))
        s = int(torch.randint(3, 6, (1,), generator=g))
        x, y = torch.randint(0, side - s, (2,), generator=g).tolist()
        im.paste(colour, (x, y, x + s, y + s))
        im.save(root / f"{i:02d}.png")
    return root


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("domains")
    return write_folder(root / "red", (200, 30, 30), n=24), write_folder(root / "blue", (30, 30, 200), n=30, seed=1)


@pytest.mark.parametrize("name, settings", [("cyclegan", ["--features", "4", "--blocks", "1"]),
                                            ("discogan", ["--features", "4"])])
def test_train_sample_translate_and_eval_a_translator(name, settings, folders, tmp_path, capsys):
    red, blue = folders
    run = tmp_path / "run"
    assert genlab("train", name, "--data-a", f"folder:{red}", "--data-b", f"folder:{blue}", "--epochs", "2",
                  "--batch-size", "4", "--samples", "12", "--threads", "1", "--out", run, *settings) == 0
    config = json.loads((run / "config.json").read_text())
    assert config["data"]["spec"] == f"folder:{red.resolve()}+folder:{blue.resolve()}"
    assert config["data"]["train"] == config["data"]["train_b"] > config["data"]["train_a"]   # the larger domain
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and "test_cycle_a_mae" in rows[-1] and "test_cycle_b_mae" in rows[-1]
    # Six rows (A, A→B, A→B→A, B, B→A, B→A→B) of n/6 held-out images (at most the 2 of A's test split),
    # 12-pixel images with a pixel between them, enlarged by the least whole factor that makes the picture's
    # short side 256 px (10, then 19); --scale sets it.
    assert Image.open(run / "samples" / "epoch-0002.png").size == ((2 * 13 + 1) * 10, (6 * 13 + 1) * 10)
    assert genlab("sample", run, "-n", "6", "-o", tmp_path / "s.png") == 0
    assert Image.open(tmp_path / "s.png").size == ((1 * 13 + 1) * 19, (6 * 13 + 1) * 19)
    assert genlab("sample", run, "-n", "6", "--scale", "3", "-o", tmp_path / "s3.png") == 0
    assert Image.open(tmp_path / "s3.png").size == ((1 * 13 + 1) * 3, (6 * 13 + 1) * 3)
    for direction in ("a2b", "b2a"):
        out = tmp_path / f"{direction}.png"
        assert genlab("translate", run, "--image", next(red.iterdir()), "--direction", direction, "-o", out) == 0
        assert Image.open(out).size == (12 * 22, 12 * 22)        # at least 256 px across, pixels kept square
        assert "drawn 22× larger" in capsys.readouterr().out
    capsys.readouterr()
    assert genlab("eval", run, "--json") == 0
    r = json.loads(capsys.readouterr().out)
    assert {"cycle_a_mae", "cycle_b_mae", "a2b_colour_tv", "b2a_colour_tv_floor"} <= r.keys()
    assert genlab("eval", run) == 0
    assert "cycle MAE" in capsys.readouterr().out
    assert genlab("eval", run, "--metrics", "fid") == 2           # it draws nothing of its own
    assert "translates images" in capsys.readouterr().err


def test_a_resumed_translator_ends_as_one_never_interrupted(folders, tmp_path):
    from safetensors.torch import load_file
    red, blue = folders
    common = ["--data-a", f"folder:{red}", "--data-b", f"folder:{blue}", "--batch-size", "8", "--samples", "0",
              "--threads", "1", "--features", "4", "--blocks", "1", "--pool-size", "5",
              "--lr-schedule", "constant"]          # a decay to 0 would follow each run's own length
    assert genlab("train", "cyclegan", *common, "--epochs", "2", "--out", tmp_path / "whole") == 0
    assert genlab("train", "cyclegan", *common, "--epochs", "1", "--out", tmp_path / "parts") == 0
    assert genlab("train", "--resume", tmp_path / "parts", "--epochs", "2", "--threads", "1") == 0
    whole, parts = (load_file(str(tmp_path / d / "model.safetensors")) for d in ("whole", "parts"))
    assert whole.keys() == parts.keys() and "pool_a.images" in whole
    assert all(torch.equal(whole[k], parts[k]) for k in whole)


def test_bad_translation_input_is_one_line(folders, tmp_path, capsys):
    red, blue = folders
    a, b = f"folder:{red}", f"folder:{blue}"
    cases = [
        (["train", "cyclegan", "--data-a", a], "both --data-a"),
        (["train", "cyclegan", "--data", "digits"], "two domains"),
        (["train", "vae", "--data-a", a, "--data-b", b], "translators"),
        (["train", "cyclegan", "--data-a", a, "--data-b", "nonsense"], "--data-b takes"),
    ]
    for argv, message in cases:
        assert genlab(*argv, "--out", tmp_path / "never", "--threads", "1") == 2
        assert message in capsys.readouterr().err
    assert not (tmp_path / "never").exists()
    vae = tmp_path / "vae"
    assert genlab("train", "vae", "--epochs", "1", "--hidden", "8", "--samples", "0", "--out", vae, "--threads", "1") == 0
    capsys.readouterr()
    assert genlab("translate", vae, "--image", next(red.iterdir())) == 2
    assert "does not translate" in capsys.readouterr().err
