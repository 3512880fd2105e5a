"""The zoo: trained runs shipped inside genlab. Every entry loads, draws, and gives the figure its card
states within its ±; nothing is ever written into it; `zoo:NAME` is a run to every command; a copy resumes."""
import hashlib
import json

import pytest

import genlab
from genlab import zoo

from conftest import genlab as run_cli
from test_bad_input import refused

pytestmark = pytest.mark.usefixtures("one_thread")
ENTRIES = zoo.names()


def snapshot() -> dict:
    return {str(p.relative_to(zoo.HOME)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(zoo.HOME.rglob("*")) if p.is_file() and "__pycache__" not in p.parts}


def test_the_zoo_is_small_and_every_entry_has_its_card():
    assert ENTRIES, "the zoo ships at least one entry"
    assert sum(p.stat().st_size for p in zoo.HOME.rglob("*") if p.is_file()) < 50 * 2**20
    for name in ENTRIES:
        card = zoo.card(name)
        for key in ("lecture", "model", "data", "command", "training", "headline", "headline_key", "figures"):
            assert card[key], (name, key)
        assert card["command"].startswith(f"genlab train {card['model']}")
        assert (zoo.HOME / name / "README.md").read_text().startswith(f"# zoo:{name}")
        for picture in card["pictures"]:
            assert (zoo.HOME / name / picture).is_file()


@pytest.mark.parametrize("name", ENTRIES)
def test_each_entry_gives_its_cards_figure_and_changes_nothing(name, tmp_path, capsys):
    before = snapshot()
    card = zoo.card(name)
    key = card["headline_key"]
    capsys.readouterr()
    # The headline's own metric: the likelihood, else a sample figure at the card's sample count.
    metric = {"class_agreement": "classes", "fid": "fid"}.get(key)
    extra = ["--metrics", metric, "--samples", card["samples"]] if metric else []
    assert run_cli("eval", f"zoo:{name}", "--json", "--iwae-k", "0", *extra) == 0
    r = json.loads(capsys.readouterr().out)
    se = card["figures"].get(f"{key}_se", card["figures"].get(f"{key}_std", 0.0))
    assert abs(r[key] - card["figures"][key]) <= 2 * se + 1e-6, (r[key], card["figures"][key], se)
    assert snapshot() == before                     # no eval.json, no picture inside genlab


def test_zoo_names_are_runs_to_the_commands_and_never_change(tmp_path, capsys):
    name = ENTRIES[0]
    before = snapshot()
    out = tmp_path / "s"
    picture = zoo.card(name)["pictures"][0]
    suffix = picture[picture.rindex("."):]
    assert run_cli("sample", f"zoo:{name}", "-n", "2", "-o", f"{out}{suffix}") == 0
    assert genlab.load(f"zoo:{name}").name == zoo.card(name)["model"]
    refused(capsys, ["train", "--resume", f"zoo:{name}", "--epochs", "99"], "shipped with genlab", "zoo copy")
    refused(capsys, ["sample", "zoo:no-such-entry"], "no zoo entry", name)
    refused(capsys, ["zoo", "no-such-entry"], "no zoo entry")
    assert snapshot() == before
    assert zoo.expand(["zoo:", "runs/x"]) == [f"zoo:{n}" for n in ENTRIES] + ["runs/x"]
    capsys.readouterr()
    assert run_cli("zoo") == 0
    listing = capsys.readouterr().out
    assert all(n in listing for n in ENTRIES), listing
    assert run_cli("zoo", name) == 0 and capsys.readouterr().out.startswith(f"# zoo:{name}")


@pytest.mark.slow
def test_a_copy_resumes_where_the_entry_stopped(tmp_path, capsys):
    resumable = [n for n in ENTRIES if zoo.card(n).get("resumable")]
    name = min(resumable, key=lambda n: zoo.card(n)["minutes"] / zoo.card(n)["epochs"])   # the quickest epoch
    dest = tmp_path / "copy"
    assert run_cli("zoo", "copy", name, dest) == 0
    epochs = zoo.card(name)["epochs"]
    assert run_cli("train", "--resume", dest, "--epochs", epochs + 1, "--threads", "1") == 0
    rows = [json.loads(line) for line in (dest / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["epoch"] == epochs + 1 and rows[-1]["step"] > zoo.card(name)["steps"]
    capsys.readouterr()
    refused(capsys, ["zoo", "copy", name, dest], "already exists")
