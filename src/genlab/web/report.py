"""`genlab report RUN [RUN ...] -o report.html`: one self-contained page of runs.

Every picture is inside the file (PNG data URLs, curves as inline SVG) and so is the little script that
sorts the table: the page opens from disk, offline, and fetches nothing. Per run: its configuration, its
training curves, its latest samples (pictures, sound to play, clips as animated GIFs) and what its
declarations and its kind of data let it show (latent grids, interpolations, classes, completions,
translations there and back, continued clips, the memorisation picture); above them one table of every
run's evaluation figures, with units and the feature network named, sortable by any column. With many runs
each run folds away under its heading and the index and the table stay one screen each.
"""
from __future__ import annotations

import base64
import json
import math
import tempfile
import time
from pathlib import Path

import torch


from .. import api, modalities
from ..atomic import write_atomic
from ..errors import UserError
from ..runs import Run, diverged
from ..version import __version__
from .plots import bucket_means, line_plot
from .report_page import CSS, SCRIPT, TEMPLATE
from .report_views import IMAGE_TYPES, esc, figure, img, model_views


# What a logged figure is, where its name does not say it (shown under its curve's title).
FIGURE_NOTES = {
    "loss": "the training loss of each step",
    "wasserstein": "the critic's estimate of the Wasserstein distance, E D(real) − E D(fake): it falls as the "
                   "generator improves",
    "kl": "the KL term of the ELBO, nats per example", "kl_weight": "the KL term's weight (annealed from 0 to 1)",
    "recon": "the reconstruction term, nats per example", "d_loss": "the discriminator's (critic's) loss",
    "g_loss": "the generator's loss", "d_real_acc": "D's accuracy on real images",
    "d_fake_acc": "D's accuracy on generated images", "nats_per_token": "training nats per token",
    "diversity_ratio": "sample spread ÷ data spread (near 0: collapse)",
}
SKIP_KEYS = {"step", "epoch", "seconds", "images_per_s", "tokens_per_s", "warning"}

# The comparison table: (key, heading, unit); "{u}" is one example of the run's kind of data.
FIGURES = [
    ("nll_nats", "NLL", "nats/{u}"), ("nelbo_nats", "−ELBO", "nats/{u}"), ("iwae_nats", "IWAE", "nats/{u}"),
    ("recon_nats", "recon", "nats/{u}"), ("kl_nats", "KL", "nats/{u}"),
    ("nll_bpd", "NLL", "bits/dim"), ("nelbo_bpd", "−ELBO", "bits/dim"), ("iwae_bpd", "IWAE", "bits/dim"),
    ("baseline_nll_nats", "indep. pixels", "nats/{u}"),
    ("nelbo_nats_per_line", "−ELBO", "nats/line"), ("iwae_nats_per_line", "IWAE", "nats/line"),
    ("recon_nats_per_line", "recon", "nats/line"), ("kl_nats_per_line", "KL", "nats/line"),
    ("nelbo_nats_per_token", "−ELBO", "nats/token"), ("iwae_nats_per_token", "IWAE", "nats/token"),
    ("perplexity", "perplexity", "per token"), ("unigram_perplexity", "unigram ppl", "per token"),
    ("fid", "FID", "features²"), ("kid", "KID×10³", "features²"), ("precision", "precision", "share"),
    ("recall", "recall", "share"), ("density", "density", "ratio"), ("coverage", "coverage", "share"),
    ("modes_covered", "modes", "classes"), ("modes_kl", "KL(modes)", "nats"),
    ("inception_score", "IS", "classes"), ("memorisation_ratio", "NN ratio", "ratio"),
    ("copy_excess", "copies", "share"), ("data_copying_ct", "C_T", "z"), ("parzen_nats", "Parzen", "nats/{u}"),
]
SCALE = {"kid": 1e3}
NOT_HEADLINES = {"baseline_nll_nats", "unigram_perplexity"}      # a data set's figures, not the model's
UNIT_SUFFIXES = ("_nats_per_line", "_nats_per_token", "_nats", "_bpd")


# ---- reading a run ----

class RunPage:
    """What the report shows of one run directory."""

    def __init__(self, index: int, path: Path):
        self.index, self.run = index, Run.open(path)
        self.config = self.run.config
        self.name = self.run.path.name or str(self.run.path)
        self.metrics, self.steps = self.run.metrics(), self.run.steps()
        self.modality = modalities.of_run(self.run)
        self.cls = self.run.model_class
        f = self.run.path / "eval.json"
        self.eval = _read_json(f) if f.is_file() else None
        self.epochs = self.metrics[-1]["epoch"] if self.metrics else 0
        self.trained_steps = max([r["step"] for r in self.steps[-1:] + self.metrics[-1:] if "step" in r] or [0])

    @property
    def trained(self) -> str:
        """How far it trained: its epochs, or the steps of one it was stopped within."""
        if self.epochs:
            return f"{self.epochs} epoch{'s' * (self.epochs != 1)}"
        if self.trained_steps:
            return f"{self.trained_steps} steps (stopped within epoch 1)"
        return "not trained yet"

    @property
    def anchor(self) -> str:
        return f"run-{self.index}"

    def figures(self) -> tuple[dict, str]:
        """The run's figures and where they come from: eval.json, else the last epoch's test figures (the
        same quantities in the same units: test_nelbo_nats is eval's nelbo_nats for those weights)."""
        if self.eval:
            return self.eval, "eval.json"
        last = next((r for r in reversed(self.metrics) if any(k.startswith("test_") for k in r)), None)
        if last is None:
            return {}, "—"
        return {k[5:]: v for k, v in last.items() if k.startswith("test_")}, f"training log, epoch {last['epoch']}"


def _read_json(f: Path) -> dict | None:
    try:
        d = json.loads(f.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return None
    return d if isinstance(d, dict) else None


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def curves_html(page: RunPage) -> str:
    """Every figure logged per step (against steps) and every test figure per epoch (with its ± standard
    error), one small plot each."""
    plots = []
    steps = page.steps
    keys = list(dict.fromkeys(k for s in steps[:1000] for k in s if k not in SKIP_KEYS and _is_number(s[k])))
    for k in keys:
        xs, ys = bucket_means([s["step"] for s in steps], [s.get(k) for s in steps])
        plots.append(_plot_box(line_plot(k, "training step", xs, ys, note=FIGURE_NOTES.get(k, "")), k))
    epochs = page.metrics
    if not steps:              # a run logged before steps.jsonl: its per-epoch training figures
        for k in dict.fromkeys(k for e in epochs for k in e
                               if not k.startswith("test_") and k not in SKIP_KEYS and _is_number(e[k])):
            have = [e for e in epochs if _is_number(e.get(k))]
            plots.append(_plot_box(line_plot(k, "epoch", [e["epoch"] for e in have], [e[k] for e in have],
                                             note=FIGURE_NOTES.get(k, ""), dots=True), k))
    tests = dict.fromkeys(k for e in epochs for k in e if k.startswith("test_") and not k.endswith("_se")
                          and _is_number(e[k]))
    for k in tests:
        have = [e for e in epochs if _is_number(e.get(k))]
        plots.append(_plot_box(line_plot(k, "epoch", [e["epoch"] for e in have], [e[k] for e in have],
                                         errors=[e.get(k + "_se") for e in have], colour="#d62728", dots=True),
                               k.removeprefix("test_") + " on the test split, ± its standard error"))
    if not plots:
        return '<p class="none">nothing logged yet</p>'
    return '<div class="plots">' + "".join(plots) + "</div>"


def _plot_box(svg: str, key: str) -> str:
    note = FIGURE_NOTES.get(key)
    return f'<figure class="plot">{svg}' + (f"<figcaption>{esc(note)}</figcaption>" if note else "") + "</figure>"


def latest_samples(page: RunPage, device="cpu") -> tuple[str, str]:
    """(section, thumbnail): the last epoch's samples as training wrote them: a picture, lines, or sound
    (with the picture of its waveforms beside it). A run stopped before its first epoch ended has none:
    its latest checkpoint's weights draw them now, and the caption says so."""
    folder = page.run.path / "samples"
    files = sorted(p for p in folder.glob("epoch-*") if p.is_file()) if folder.is_dir() else []
    if not files and (page.run.path / "model.safetensors").is_file():
        with tempfile.TemporaryDirectory() as tmp:
            try:
                model = api.load(page.run.path, device=device)
                page.modality.write_samples(model, Path(tmp) / "checkpoint", 64,
                                            torch.Generator(device=model.device).manual_seed(0))
            except UserError as e:
                return f'<p class="none">no samples written yet, and none can be drawn ({esc(str(e))})</p>', ""
            caption = (f"drawn now from the weights of its latest checkpoint, step {page.trained_steps} (training "
                       f"writes samples at the end of each epoch)")
            return _sample_files(page, sorted(Path(tmp).iterdir()), caption)
    if not files:
        return '<p class="none">no samples written yet</p>', ""
    return _sample_files(page, [p for p in files if p.stem == files[-1].stem])


def _sample_files(page: RunPage, last: list[Path], caption: str = "") -> tuple[str, str]:
    parts, thumb = [], ""
    for f in last:
        if f.suffix == ".txt":
            lines = f.read_text(encoding="utf-8", errors="replace").splitlines()[:20]
            parts.append('<ol class="lines">' + "".join(f"<li>{esc(line)}</li>" for line in lines) + "</ol>")
            thumb = thumb or esc(lines[0] if lines else "")
        elif f.suffix == ".wav":
            data = base64.b64encode(f.read_bytes()).decode()
            parts.insert(0, f'<audio controls src="data:audio/wav;base64,{data}"></audio>')
        elif f.suffix in IMAGE_TYPES:
            data = f.read_bytes()
            parts.append(img(data, "samples of " + page.name, mime=IMAGE_TYPES[f.suffix]))
            thumb = img(data, "samples of " + page.name, width=96, mime=IMAGE_TYPES[f.suffix])
    names = ", ".join(f.name for f in last)
    said = esc(f"{caption}: {names}" if caption else names)
    return f"<figure>{''.join(parts)}<figcaption>{said}</figcaption></figure>", thumb


def config_html(page: RunPage) -> str:
    c = page.config
    cls = page.cls
    decl = cls.declaration()
    parts = [("model", {"name": c["model"], **decl, "settings": None}), ("settings", c.get("config", {})),
             ("data", c.get("data", {})), ("training", {**c.get("train", {}), "seed": c.get("seed")})]
    out = []
    for title, d in parts:
        rows = "".join(f"<tr><th>{esc(str(k))}</th><td>{esc(_plain(v))}</td></tr>"
                       for k, v in d.items() if v is not None)
        out.append(f'<table class="kv"><caption>{esc(title)}</caption>{rows}</table>')
    return '<div class="config">' + "".join(out) + "</div>"


def _plain(v) -> str:
    if isinstance(v, (list, tuple)):
        return ", ".join(map(str, v)) or "—"
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def memorisation_html(page: RunPage) -> str:
    f = page.run.path / "memorisation.png"
    if not f.is_file():
        return ""
    return ("<h4>Memorisation</h4>" + figure(img(f.read_bytes(), "memorisation", width=None),
            "the samples closest to the training set (top) above their nearest training images (bottom), from "
            "<code>genlab eval --metrics memorisation</code>"))


def run_section(page: RunPage, device, open_: bool) -> tuple[str, str]:
    samples, thumb = latest_samples(page, device)
    d = page.config.get("data", {})
    said = diverged(page.config)
    head = (f"{esc(page.cls.name)} · {esc(page.cls.family or '—')} · {esc(str(d.get('spec', '')))} · "
            f"{page.trained}" + (" · diverged" if said else ""))
    body = ((f'<p class="none">{esc(said[0].upper() + said[1:])}.</p>' if said else "")
            + f"<h3>Configuration</h3>{config_html(page)}"
            f"<h3>Training curves</h3>{curves_html(page)}"
            f"<h3>Latest samples</h3>{samples}"
            f"{_section('What it draws', model_views(page, device) + memorisation_html(page))}")
    section = (f'<section class="run" id="{page.anchor}"><details{" open" * open_}><summary><h2>{esc(page.name)}'
               f'</h2><span class="head">{head}</span></summary>{body}</details></section>')
    return section, thumb


def _section(title: str, body: str) -> str:
    return f"<h3>{esc(title)}</h3>{body}" if body.strip() else ""


# ---- the comparison table ----

def comparison_html(pages: list[RunPage]) -> str:
    rows = [(p, *p.figures()) for p in pages]
    keys = [k for k, _, _ in FIGURES if any(_is_number(f.get(k)) for _, f, _ in rows)]
    extra = sorted({k for _, f, _ in rows for k, v in f.items()
                    if k.endswith(UNIT_SUFFIXES) and _is_number(v) and k not in dict.fromkeys(x for x, _, _ in FIGURES)
                    and not k.endswith(("_se", "_std"))})
    known = {k: (h, u) for k, h, u in FIGURES}
    networks = list(dict.fromkeys(f["feature_network"] for _, f, _ in rows if f.get("feature_network")))
    heads = ["run", "model", "data", "pixels", "epochs", "figures from"]
    if any(f.get("samples") for _, f, _ in rows):
        heads.append("samples")
    if networks:
        heads.append("features")
    cols = []
    for k in keys + extra:
        h, u = known.get(k, (k, _unit_of(k)))
        per = "/".join(dict.fromkeys(p.modality.unit for p, f, _ in rows if _is_number(f.get(k))))
        cols.append((k, h, u.replace("{u}", per)))
    th = "".join(f'<th data-type="text">{esc(h)}</th>' for h in heads)
    th += "".join(f'<th data-type="num" title="{esc(k)}">{esc(h)}<small>{esc(u)}</small></th>' for k, h, u in cols)
    body = []
    for p, f, source in rows:
        cells = [f'<td><a href="#{p.anchor}">{esc(p.name)}</a></td>', _td(p.cls.name), _td(f.get("data", p.config["data"].get("spec"))),
                 _td(f.get("pixels", p.config["data"].get("binarize", "—"))), _td(p.trained, p.epochs), _td(source)]
        if "samples" in heads:
            cells.append(_td(f.get("samples", "—"), f.get("samples")))
        if networks:
            net = f.get("feature_network")
            cells.append(f'<td title="{esc(net)}">F{networks.index(net) + 1}</td>' if net else _td("—"))
        for k, h, unit in cols:
            cells.append(_figure_cell(f, k))
        body.append("<tr>" + "".join(cells) + "</tr>")
    notes = [("Units: nats per example of the run's kind of data (img: one image; line: one line, its end token "
              "counted), on the test split, ± the standard error over test examples; bits/dim per pixel channel "
              "(palette: per pixel); sample figures ± their bootstrap standard deviation. Click a heading to sort; "
              "click again to reverse. — : the run has no such figure.")]
    if networks:
        notes.append("Sample figures (FID, KID, precision, recall, density, coverage, modes, IS) are measured in the "
                     "feature space named in the column features: "
                     + "; ".join(f"F{i + 1}: {esc(n)}" for i, n in enumerate(networks))
                     + ": they compare only within one feature network and one sample count.")
    return (f'<div class="scroll"><table class="sortable" id="comparison-table"><thead><tr>{th}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table></div>' + "".join(f'<p class="note">{n}</p>' for n in notes))


def _unit_of(key: str) -> str:
    for suffix, unit in (("_nats_per_line", "nats/line"), ("_nats_per_token", "nats/token"), ("_nats", "nats"),
                         ("_bpd", "bits/dim")):
        if key.endswith(suffix):
            return unit
    return ""


def _td(text, value=None) -> str:
    v = f' data-v="{value}"' if _is_number(value) else ""
    return f"<td{v}>{esc(str(text))}</td>"


def _figure_cell(f: dict, k: str) -> str:
    v = f.get(k)
    if not _is_number(v):
        return '<td class="na">—</td>'
    scale = SCALE.get(k, 1.0)
    err = f.get(f"{k}_se", f.get(f"{k}_std"))
    if k == "modes_covered":
        text = f"{v}/{f.get('modes_total', '?')}"
    else:
        text = _num(v * scale) + (f"±{_num(err * scale, like=v * scale)}" if _is_number(err) else "")
    mark = " ≈" if k in (f.get("within_floor") or ()) else ""
    return f'<td data-v="{v * scale!r}">{esc(text)}{mark}</td>'


def _num(v: float, like: float | None = None) -> str:
    """A figure with 3 decimals under 10, 2 under 1000, none above (its ± with the figure's own decimals)."""
    a = abs(v if like is None else like)
    return f"{v:.3f}" if a < 10 else f"{v:.2f}" if a < 1000 else f"{v:.0f}"


# ---- the page ----

def write_report(runs, output: str | Path = "report.html", *, device="cpu", threads: int | None = None,
                 quiet: bool = False, extra=()) -> Path:
    """One HTML page of the runs at `output`, self-contained; returns its path. `extra`: more sections,
    shown after the comparison table, each (title, file, caption): a picture (.png, .gif, .jpg) or a text
    file shown as it is (a table printed in plain text)."""
    paths = [Path(p) for p in ([runs] if isinstance(runs, (str, Path)) else runs)]
    if not paths:
        raise UserError("name at least one run for the report")
    output = Path(output)
    if output.suffix.lower() not in (".html", ".htm"):
        raise UserError(f"the report is an HTML page: give -o a name ending in .html, not {output.name!r}")
    if not output.parent.is_dir():
        raise UserError(f"cannot write {output}: folder {output.parent} does not exist")
    dev = api.setup_torch(device, threads)
    pages = [RunPage(i, p) for i, p in enumerate(paths)]
    sections, index = [], []
    for page in pages:
        section, thumb = run_section(page, dev, open_=len(pages) <= 3)
        sections.append(section)
        figures, _ = page.figures()
        headline = next(((h, k) for k, h, _ in FIGURES if _is_number(figures.get(k)) and k not in NOT_HEADLINES),
                        None)
        fig = (f"{esc(headline[0])} {_num(figures[headline[1]] * SCALE.get(headline[1], 1))}" if headline else "")
        index.append(f'<li><a href="#{page.anchor}">{thumb}<b>{esc(page.name)}</b><span>{esc(page.cls.name)} · '
                     f'{esc(str(page.config["data"].get("spec", "")))}</span><span>{fig}</span></a></li>')
        if not quiet:
            print(f"report: {page.run.path}", flush=True)
    title = f"genlab report: {len(pages)} run{'s' * (len(pages) != 1)}"
    page_html = TEMPLATE.format(
        title=esc(title), css=CSS, script=SCRIPT, version=esc(__version__),
        when=esc(time.strftime("%Y-%m-%d %H:%M")), index="".join(index), table=comparison_html(pages),
        extra=extra_html(extra), runs="".join(sections), count=len(pages))
    write_atomic(output, lambda p: p.write_text(page_html, encoding="utf-8"))
    return output


def extra_html(extra) -> str:
    """The caller's own sections: (title, file, caption) each, a picture or a plain-text file."""
    parts = []
    for title, path, caption in extra:
        path = Path(path)
        try:
            if path.suffix.lower() in IMAGE_TYPES:
                body = img(path.read_bytes(), title, mime=IMAGE_TYPES[path.suffix.lower()])
            else:
                body = f'<pre class="text">{esc(path.read_text(encoding="utf-8", errors="replace"))}</pre>'
        except OSError as e:
            raise UserError(f"cannot read {path} for the report: {e.strerror or e}") from None
        parts.append(f"<h2>{esc(title)}</h2>{figure(body, esc(caption))}")
    return f'<section id="extra">{"".join(parts)}</section>' if parts else ""
