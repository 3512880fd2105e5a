"""The README's first command: `genlab demo` trains, draws and compares, and never touches a folder the user
already has (it writes beside it)."""
import json

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
    results = {r["model"] + r["run"][-3:]: r for r in json.loads((out / "comparison.json").read_text())}
    assert len(results) == 5 and all("fid" in r for r in results.values())
    assert "FID" in (out / "comparison.txt").read_text() and "(training images)" in capsys.readouterr().out
