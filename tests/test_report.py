"""`genlab report`: one self-contained HTML page of runs — every picture and sound inside it, nothing
fetched, each run's configuration, curves, samples and the views its declarations and its kind of data give
it (a translator's translations there and back, a video model's continued clips), and one sortable table of
every run's figures with units and the feature network named; readable with twenty runs."""
import base64
import html
import io
import json
import re
import shutil
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import genlab
from genlab import modalities
from genlab.cli import main
from genlab.errors import UserError
from genlab.runs import Run
from genlab.web import views
from genlab.web.report import write_report

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from serve_load import tiny_runs  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")


class Page(HTMLParser):
    """Every tag with its attributes, the comparison table's cells, and the text."""

    def __init__(self, text: str):
        super().__init__()
        self.tags, self.rows, self.heads, self._cell, self._in_table = [], [], [], None, False
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append((tag, a))
        if tag == "table" and a.get("id") == "comparison-table":
            self._in_table = True
        elif self._in_table and tag == "tr":
            self.rows.append([])
        elif self._in_table and tag in ("td", "th"):
            self._cell = [tag, a, ""]

    def handle_endtag(self, tag):
        if tag == "table":
            self._in_table = False
        elif self._cell and tag in ("td", "th"):
            kind, a, text = self._cell
            (self.heads if kind == "th" else self.rows[-1]).append((text.strip(), a))
            self._cell = None

    def handle_data(self, data):
        if self._cell:
            self._cell[2] += data


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("reported")
    out = {p.name: p for p in tiny_runs(root)}
    out["wgan"] = genlab.train("wgan", "digits", root / "wgan", epochs=1, samples=8, threads=1, quiet=True,
                               latent_dim=8, hidden=64).path
    genlab.evaluate([out["vae"]], ["likelihood", "fid", "memorisation"], iwae_k=5, samples=100, threads=1,
                    live=False)
    return out


@pytest.fixture(scope="module")
def report(runs, tmp_path_factory):
    path = tmp_path_factory.mktemp("report") / "report.html"
    assert main(["report", *map(str, runs.values()), "-o", str(path), "--threads", "1"]) == 0
    return path.read_text(encoding="utf-8")


def test_the_report_is_self_contained(report):
    page = Page(report)
    images = [a for tag, a in page.tags if tag == "img"]
    assert len(images) > 10
    for a in images:                           # every picture inside the file, and a picture indeed
        head, data = a["src"].split(",", 1)
        assert head.startswith("data:image/") and head.endswith(";base64")
        Image.open(io.BytesIO(base64.b64decode(data))).verify()
    sounds = [a for tag, a in page.tags if tag == "audio"]
    assert sounds                              # and every sound, a WAV file indeed
    for a in sounds:
        head, data = a["src"].split(",", 1)
        assert head == "data:audio/wav;base64" and base64.b64decode(data)[:4] == b"RIFF"
    for tag, a in page.tags:
        for attr in ("src", "href", "action", "srcset", "poster"):
            v = a.get(attr)
            assert v is None or v.startswith(("data:", "#")), (tag, attr, v[:60])
    assert "http://" not in report and "https://" not in report and "@import" not in report
    assert "default-src 'none'" in report              # and the page itself forbids fetching anything


def run_sections(report: str, runs: dict) -> dict:
    """Each run's section of the report, by the run's name."""
    sections = dict(re.findall(r'<section class="run" id="(run-\d+)">(.*?)</section>', report, re.S))
    assert len(sections) == len(runs)
    return {n: sections[f"run-{i}"] for i, n in enumerate(runs)}


def data_of(src: str) -> bytes:
    return base64.b64decode(src.split(",", 1)[1])


def test_each_run_has_its_configuration_curves_samples_and_views(report, runs):
    by_name = run_sections(report, runs)
    for name, body in by_name.items():
        assert "Configuration" in body and "Training curves" in body and "Latest samples" in body, name
        assert "<svg" in body, name
    assert ">latent_dim<" in by_name["vae"] and "<td>4</td>" in by_name["vae"]
    assert "Latent grid" in by_name["vae"] and "Interpolation" in by_name["vae"]
    assert "Memorisation" in by_name["vae"] and "Memorisation" not in by_name["cvae"]
    assert "By class" in by_name["cvae"] and "By class" not in by_name["vae"]
    assert "Completions" in by_name["pixelcnn"] and "Latent grid" not in by_name["pixelcnn"]
    assert "two codes drawn from N(0, I)" in by_name["gan"]
    assert 'aria-label="wasserstein"' in by_name["wgan"] and "Wasserstein distance" in by_name["wgan"]
    if "sentence-vae" in by_name:
        body = by_name["sentence-vae"]
        assert 'aria-label="kl"' in body and 'aria-label="test_kl_nats_per_line"' in body
        assert '<ol class="lines">' in body and "Interpolation" in body


def test_a_translator_shows_its_translations_there_and_back(report, runs):
    body = run_sections(report, runs)["cyclegan"]
    latest = Page(body.split("<h3>Latest samples</h3>", 1)[1].split("<h3>", 1)[0])
    shown, = [a["src"] for tag, a in latest.tags if tag == "img"]
    assert data_of(shown) == (runs["cyclegan"] / "samples" / "epoch-0001.png").read_bytes()   # as training wrote it
    assert "<h4>Translations</h4>" in body
    view = Page(body.split("<h4>Translations</h4>", 1)[1])
    grid = np.asarray(Image.open(io.BytesIO(data_of(next(a["src"] for tag, a in view.tags if tag == "img")))))
    # Six rows of eight held-out images (A, A→B, A→B→A, B, B→A, B→A→B): the model's own, computed here.
    model, run = genlab.load(runs["cyclegan"]), Run.open(runs["cyclegan"])
    images, k = modalities.get("image").translations(model, modalities.of_run(run).reload(run, warn=False), 48)
    assert k == 8 and grid.shape == (6 * 9 + 1, 8 * 9 + 1)
    assert np.array_equal(grid, np.asarray(Image.open(io.BytesIO(views.png(images, nrow=k)))))


def test_a_video_models_clips_are_in_the_page_as_gif_and_strip(report, runs):
    body = run_sections(report, runs)["vpn"]
    latest = Page(body.split("<h3>Latest samples</h3>", 1)[1].split("<h3>", 1)[0])
    shown = {a["src"].split(";", 1)[0]: data_of(a["src"]) for tag, a in latest.tags if tag == "img"}
    samples = runs["vpn"] / "samples"
    assert shown == {"data:image/gif": (samples / "epoch-0001.gif").read_bytes(),
                     "data:image/png": (samples / "epoch-0001.png").read_bytes()}
    assert "<h4>Continued clips</h4>" in body and "3 frames given" in body
    view = Page(body.split("<h4>Continued clips</h4>", 1)[1])
    gif, strip = [a["src"] for tag, a in view.tags if tag == "img"][:2]
    assert gif.startswith("data:image/gif;base64,") and strip.startswith("data:image/png;base64,")
    with Image.open(io.BytesIO(data_of(gif))) as im:
        assert im.n_frames == 6                        # 3 frames given, 3 drawn: the rest of the 6-frame clip


def test_a_sound_models_samples_play_in_the_page(report, runs):
    body = run_sections(report, runs)["wavenet"]
    sound, = re.findall(r'<audio controls src="(data:audio/wav;base64,[^"]+)"', body)
    assert data_of(sound) == (runs["wavenet"] / "samples" / "epoch-0001.wav").read_bytes()


def test_the_table_has_every_runs_figures_with_units_and_the_feature_network(report, runs):
    page = Page(report)
    heads = [h for h, _ in page.heads]
    rows = {row[0][0]: row for row in page.rows if row}
    assert set(rows) == set(runs)
    fid_col = next(i for i, h in enumerate(heads) if h.startswith("FID"))
    nelbo_col = next(i for i, (h, a) in enumerate(page.heads) if a.get("title") == "nelbo_nats")
    assert heads[nelbo_col] == "−ELBOnats/img" and heads[fid_col].startswith("FID")
    figures = json.loads((runs["vae"] / "eval.json").read_text())
    assert float(rows["vae"][fid_col][1]["data-v"]) == pytest.approx(figures["fid"])
    assert float(rows["vae"][nelbo_col][1]["data-v"]) == pytest.approx(figures["nelbo_nats"])
    assert rows["vae"][nelbo_col][0].startswith(f"{figures['nelbo_nats']:.2f}±")
    assert rows["gan"][nelbo_col][0] == "—"                   # a GAN has no likelihood
    # A run never evaluated shows its last epoch's test figures, and says so.
    last = [json.loads(line) for line in (runs["cvae"] / "metrics.jsonl").read_text().splitlines()][-1]
    assert float(rows["cvae"][nelbo_col][1]["data-v"]) == pytest.approx(last["test_nelbo_nats"])
    assert any("training log, epoch 1" == c for c, _ in rows["cvae"])
    assert html.escape(figures["feature_network"]) in report and "F1" in [c for c, _ in rows["vae"]]
    assert "sortable" in report and "aria-sort" in report


def test_twenty_runs_stay_readable(runs, tmp_path):
    copies = []
    for i in range(20):
        copies.append(tmp_path / f"vae-{i:02d}")
        shutil.copytree(runs["vae" if i % 2 else "pixelcnn"], copies[-1])
    out = write_report(copies, tmp_path / "twenty.html", threads=1, quiet=True)
    text = out.read_text(encoding="utf-8")
    page = Page(text)
    assert len([r for r in page.rows if r]) == 20 and text.count('<section class="run"') == 20
    assert "<details open>" not in text                   # each run folded under its heading
    assert text.count('<li><a href="#run-') == 20         # and listed in the index
    assert len(text.encode()) < 4_000_000


def test_names_and_lines_are_escaped(runs, tmp_path):
    odd = tmp_path / 'a<b>&"c'
    shutil.copytree(runs["vae"], odd)
    text = write_report([odd], tmp_path / "odd.html", threads=1, quiet=True).read_text(encoding="utf-8")
    assert "a&lt;b&gt;&amp;&quot;c" in text and 'a<b>&"c' not in text


def test_bad_input_is_one_line(runs, tmp_path, capsys):
    assert main(["report", str(tmp_path / "nothing"), "-o", str(tmp_path / "r.html")]) == 2
    assert "not a run directory" in capsys.readouterr().err
    assert main(["report", str(runs["vae"]), "-o", str(tmp_path / "r.txt")]) == 2
    assert main(["report", str(runs["vae"]), "-o", str(tmp_path / "missing" / "r.html")]) == 2
    with pytest.raises(UserError):
        write_report([], tmp_path / "r.html")


def test_a_run_killed_within_its_first_epoch_shows_its_steps_and_samples_of_its_checkpoint(tmp_path):
    import signal
    import subprocess
    import time
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "genlab", "train", "pixelcnn", "--data", "digits", "--epochs", "1",
                             "--batch-size", "4", "--checkpoint-every", "5", "--threads", "1", "--out", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while not (out / "model.safetensors").is_file() and time.time() < deadline and proc.poll() is None:
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    assert not (out / "metrics.jsonl").is_file() or not (out / "metrics.jsonl").read_text().strip()
    page = Path(write_report([out], tmp_path / "r.html", threads=1, quiet=True)).read_text()
    assert "steps (stopped within epoch 1)" in page and "0 epochs" not in page
    assert "drawn now from the weights of its latest checkpoint" in page and "no samples written yet" not in page
