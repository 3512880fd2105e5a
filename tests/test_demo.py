"""The README's first command: `genlab demo` trains, draws and compares, and never touches a folder the user
already has (it writes beside it)."""
import json
import warnings

import pytest
from conftest import genlab as run_cli


def test_the_demo_writes_its_pictures_and_table_beside_a_folder_in_use(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "demo-out").mkdir()
    (tmp_path / "demo-out" / "mine.txt").write_text("kept")
    assert run_cli("demo", "--epochs", "1", "--threads", "1") == 0
    out = tmp_path / "demo-out-2"
    assert sorted(p.name for p in (tmp_path / "demo-out").iterdir()) == ["mine.txt"]
    for name in ("samples-vae.png", "ae-vs-vae.png", "latent-grid-vae-2d.png", "cvae-by-class.png", "comparison.txt"):
        assert (out / name).is_file(), name
    # It opens with the zoo's pictures, as shipped.
    from genlab import zoo
    for name in zoo.names():
        for picture in zoo.card(name)["pictures"]:
            assert (out / "zoo" / f"{name}-{picture}").read_bytes() == zoo.resolve(f"zoo:{name}/{picture}").read_bytes()
    results = {r["model"] + r["run"][-3:]: r for r in json.loads((out / "comparison.json").read_text())}
    assert len(results) == 5 and all("fid" in r for r in results.values())
    assert "class_agreement" in results["cvaevae"] and "class_agreement" not in results["vaevae"]   # all metrics
    assert "FID" in (out / "comparison.txt").read_text() and "(training images)" in capsys.readouterr().out


# ---- genlab demo pokemon ---------------------------------------------------------------------------------

def sprites(folder, n=40, size=16):
    """n small sprites: a blob in one of four colours, with a darker eye, on white, as PNG files."""
    import numpy as np
    from PIL import Image
    rng = np.random.RandomState(0)
    inks = [(220, 40, 40), (40, 160, 60), (40, 70, 220), (240, 200, 30)]
    folder.mkdir()
    for i in range(n):
        a = np.full((size, size, 3), 255, np.uint8)
        x0, y0 = rng.randint(1, 5, 2)
        x1, y1 = rng.randint(11, 15, 2)
        a[y0:y1, x0:x1] = inks[i % 4]
        a[y0 + 2, x0 + 2] = (20, 20, 20)
        Image.fromarray(a).save(folder / f"{i:03d}.png")
    return folder


def test_the_pokemon_demo_writes_one_page_of_the_line_up(tmp_path, one_thread):
    import torch
    from torch import nn

    from genlab.demo_pokemon import run_pokemon_demo

    # A fixed random projection as the feature network: the self-supervised one needs 100 training images.
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.script(nn.Sequential(nn.Flatten(), nn.Linear(3 * 16 * 16, 8))).save(str(tmp_path / "features.pt"))
    out = tmp_path / "demo"
    report = run_pokemon_demo(out, torch.device("cpu"), epochs=1, data=f"folder:{sprites(tmp_path / 'sprites')}",
                              features=str(tmp_path / "features.pt"))
    page = report.read_text()
    for title in ("Real sprites and their 167-colour versions", "Samples", "Completions by gated-pixelcnn, 75% covered",
                  "The code grid of vae-2d", "Nearest training sprites: dcgan", "Evaluation"):
        assert f"<h2>{title}</h2>" in page, title
    for name in ("real-vs-palette.png", "samples.png", "completions-gated-pixelcnn-bottom-half.png",
                 "completions-gated-pixelcnn-75pc.png", "code-grid-vae-2d.png", "runs/vae-2d/memorisation.png"):
        assert (out / name).is_file(), name
    text = (out / "comparison.txt").read_text()
    assert "(test images)" in text and "log p(cov | vis)" in text and "(test images)" in page
    results = json.loads((out / "comparison.json").read_text())
    assert sorted(r["model"] for r in results["runs"]) == ["dcgan", "gated-pixelcnn", "vae"]
    assert all("fid" in r and "memorisation_ratio" in r for r in results["runs"])
    agreement = results["completion_agreement"]
    assert list(agreement) == ["gated-pixelcnn"] and set(agreement["gated-pixelcnn"]) == {"bottom-half", "75%"}
    for f in agreement["gated-pixelcnn"].values():
        assert 0 <= f["match"] <= 1 and f["covered_log_likelihood_nats"] < 0 and f["images"] == 4


def test_the_pokemon_demo_without_the_sprites_says_how_to_fetch_them(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GENLAB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.chdir(tmp_path)
    assert run_cli("demo", "pokemon", "--threads", "1") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "genlab data fetch pokemon" in err
    assert not (tmp_path / "demo-pokemon-out").exists()
    with pytest.raises(SystemExit) as e:        # argparse refuses a demo it does not know, with its usage line
        run_cli("demo", "pokemons")
    assert e.value.code == 2 and "invalid choice: 'pokemons'" in capsys.readouterr().err
