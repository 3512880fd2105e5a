"""Text: lines (a sentence, a verse, a short poem each) from the built-in corpora or the user's file,
read by word or by character into a vocabulary built from the training split.

Lines go to stdout, one each; `-o FILE.txt` also writes them to a file."""
from __future__ import annotations

import dataclasses
import math
import sys
from pathlib import Path

import torch

from ..data.sources.corpora import corpus_availability, is_text_spec, load_corpus
from ..data.text.batches import TextBatches, encode_lines
from ..data.text.dataset import PREFIX
from ..data.text.vocab import BOS, PAD, build_vocab
from ..errors import UserError
from ..atomic import write_atomic
from ..settings import option
from .base import Modality

EVAL_BATCH = 64


@dataclasses.dataclass
class TextSampling:
    temperature: float | None = option(None, "sample each token from the softmax at this temperature (default 1)",
                                       low=1e-3, high=1e3)
    greedy: bool = option(False, "take the most likely token at each step")


class TextModality(Modality):
    name = "text"
    noun = "text"
    verb = "writes text"
    unit = "line"
    data_hint = "tang300, song100, fortunes, songs-poems or text:PATH"
    SampleSettings = TextSampling
    page_settings = ("temperature", "greedy")
    sample_count = 10
    train_sizes = {"tang300": 1440, "song100": 358, "fortunes": 22356, "songs-poems": 4915}
    views = ("interpolate", "reconstruct")
    panels = (("sentences", ("encode", "decode")),)
    report_views = (("Interpolation", "lines_between", ("encode", "decode")),)
    page_count = 8
    sample_view = ("lines", "New lines from the model.")

    # ---- data ----
    def owns(self, spec):
        return is_text_spec(spec)

    def availability(self):
        rows = [(name, ok, why) for name, (ok, why) in corpus_availability().items()]
        return rows + [("text:PATH", None, "any UTF-8 text file, one sentence, verse or short poem a line")]

    def load(self, spec, options):
        self.refuse(options, self.data_options, self.noun)
        return load_corpus(spec)

    def prepare(self, ds, model_cls, config, options):
        unit = ds.unit if config.tokens == "auto" else config.tokens
        info = build_vocab(ds.train, unit, lowercase=config.lowercase, min_count=config.min_count,
                           max_len=config.max_len)
        spec = self.absolute(options["spec"], PREFIX)
        record = {"spec": spec, "name": ds.name, "hash": ds.content_hash(), "train": len(ds.train),
                  "test": len(ds.test), "unit": info.unit, "vocab": info.size}
        return info, record

    def reload(self, run, warn=True):
        ds = load_corpus(run.config["data"]["spec"])
        if warn:
            self.warn_changed(run, ds.content_hash(), "text")
        return ds

    def batches(self, ds, info, record, *, batch_size, seed, device):
        train_ids, left_train = encode_lines(info, ds.train)
        test_ids, left_test = encode_lines(info, ds.test)
        if not test_ids:
            raise UserError(f"every test line of {ds.name} is longer than max_len={info.max_len} tokens; "
                            f"raise --max-len")
        train = TextBatches(train_ids, batch_size=batch_size, shuffle=True, seed=seed, device=device)
        test = TextBatches(test_ids, batch_size=EVAL_BATCH, shuffle=False, device=device)
        train.left_out = left_train + left_test
        return train, test

    def announce(self, model, ds, train, record) -> str:
        info = model.info
        skipped = f", {train.left_out} longer than {info.max_len} tokens left out" if train.left_out else ""
        return (f"{ds.name} ({train.num_images()} lines, {train.num_tokens()} tokens by {info.unit}, "
                f"vocabulary {info.size}{skipped})")

    def describe(self, ds, options, output):
        self.refuse(options, self.data_options, self.noun)
        if output:
            raise UserError("-o writes a grid of images; a text corpus prints its example lines")
        for k, v in ds.describe().items():
            print(f"{k:8s} {v}")
        print("examples")
        for line in ds.train[:5]:
            print(f"  {line}")

    # ---- what a model writes and reads ----
    def draw(self, model, n, generator, **settings):
        """n lines: each token from the softmax at `temperature` (default 1), or the likeliest with `greedy`."""
        mine, theirs = self.split_settings(model, settings)
        if mine.get("greedy") and mine.get("temperature") is not None:
            raise UserError("--temperature and --greedy exclude each other: greedy decoding always takes the most "
                            "likely token")
        temperature = 1.0 if mine.get("temperature") is None else mine["temperature"]
        return model.sample_text(n, generator=generator, temperature=temperature, greedy=bool(mine.get("greedy")),
                                 **theirs)

    def write_samples(self, model, stem, n, generator):
        lines = self.draw(model, n, generator)
        path = stem.with_suffix(".txt")
        write_atomic(path, lambda p: p.write_text("".join(line + "\n" for line in lines), encoding="utf-8"))
        return path

    def sample(self, model, n, options, output, generator):
        emit(self.draw(model, n, generator, **options), output)

    def page_sample(self, model, n, generator, condition, settings):
        return {"lines": self.draw(model, n, generator, **settings)}

    def page_examples(self, model, ds, domain="a"):
        return ds.test

    @torch.no_grad()
    def between(self, model, a: str, b: str, steps: int) -> list[str]:
        """The lines decoded (greedily) on the way from the code of line a to that of line b."""
        for line in (a, b):
            check_line(model.info, line)
        mu, _ = model.encode_text([a, b])
        t = torch.linspace(0, 1, steps, device=model.device).unsqueeze(1)
        return model.decode_text(mu[0] + t * (mu[1] - mu[0]), greedy=True)

    def read_input(self, model, value):
        check_line(model.info, value)
        return model.info.encode(value)

    def explore(self, model, view, options):
        from ..explore.latent import slerp
        self.refuse_view(model, view)
        if options.get("label") is not None:
            raise UserError(f"--class is for conditional image models; {model.name} {self.verb}")
        if view == "interpolate":
            if options["steps"] < 2:
                raise UserError(f"--steps must be at least 2, not {options['steps']}")
            for line in (options["a"], options["b"]):
                check_line(model.info, line)
            mu, _ = model.encode_text([options["a"], options["b"]])
            t = torch.linspace(0, 1, options["steps"], device=model.device).unsqueeze(1)
            z = mu[0] + t * (mu[1] - mu[0]) if options["method"] == "linear" else slerp(mu[0], mu[1], t)
            emit(model.decode_text(z, greedy=True), options.get("output"))
            return
        if options["n"] < 0:
            raise UserError(f"-n must be 0 or more, not {options['n']}")
        check_line(model.info, options["line"])
        mu, logvar = model.encode_text([options["line"]])
        g = torch.Generator(device=model.device).manual_seed(options["seed"])
        drawn = mu + torch.exp(0.5 * logvar) * torch.randn(options["n"], mu.shape[1], generator=g, device=model.device)
        emit(model.decode_text(torch.cat([mu, drawn]), greedy=True), None)

    # ---- figures ----
    @torch.no_grad()
    def likelihood(self, model, run, ds, *, iwae_k, live):
        """Test figures per line and per token (evaluation/likelihood.py's, as the trainer logs them, with
        their standard errors), the perplexity, the unigram baseline and the active code units."""
        from ..evaluation.likelihood import per_example_terms, summarise
        from ..progress import Progress

        info = model.info
        seqs, left_out = encode_lines(info, ds.test)
        test = TextBatches(seqs, batch_size=EVAL_BATCH, shuffle=False, device=model.device)
        bar = Progress(len(test), f"eval {run.path}", unit="line", live=live)
        terms = per_example_terms(model, test, iwae_k=iwae_k, progress=bar)
        bar.close()
        figures = summarise(model, terms)
        # Active units (Burda et al. 2016): code dimensions whose posterior mean varies across lines.
        means = torch.cat([model.encode(batch.x, batch.lengths)[0] for batch in test.epoch(0)])
        active = int((means.var(0) > 0.01).sum())
        tokens = float(terms["tokens"].sum())
        per_token = figures["iwae_nats_per_token" if iwae_k > 0 else "nelbo_nats_per_token"]
        unigram = unigram_nll(info, ds.train, test)
        out = {"tokens": f"{info.unit}s, and one end token per line", "vocab": info.size, "test_lines": len(seqs),
               "test_tokens": int(tokens), "left_out": f"{left_out} test lines longer than {info.max_len} tokens",
               **{k: v for k, v in figures.items() if k != "standard_error"}}
        if iwae_k > 0:
            out["iwae_k"] = iwae_k
        out.update(perplexity=math.exp(per_token),
                   perplexity_from=f"the {'IWAE bound (k=' + str(iwae_k) + ')' if iwae_k > 0 else 'ELBO'}, "
                                   f"per token, end tokens counted: an upper bound on the true perplexity",
                   unigram_nats_per_token=unigram, unigram_perplexity=math.exp(unigram),
                   active_units=f"{active} of {model.config.latent_dim}")
        if "standard_error" in figures:
            out["standard_error"] = figures["standard_error"]
        return out

    def describe_run(self, model, run, ds) -> dict:
        return {}

    def format_table(self, results):
        rows = []
        for r in results:
            r = {**r, "name": Path(r["run"]).name, "tokens_by": r["tokens"].split("s,")[0],
                 "per_token": r.get("iwae_nats_per_token", r["nelbo_nats_per_token"]),
                 "per_token_se": r.get("iwae_nats_per_token_se", r.get("nelbo_nats_per_token_se"))}
            rows.append([_cell(r.get(k), r.get(k + "_se")) for k, _ in COLUMNS])
        widths = [max(len(h), *(len(row[i]) for row in rows)) for i, (_, h) in enumerate(COLUMNS)]

        def line(cells):
            return "  ".join(c.rjust(w) if i > 2 else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths)))
        out = [line([h for _, h in COLUMNS]), line(["-" * w for w in widths])] + [line(r) for r in rows]
        out.append("nats on the test split; per token and perplexity from the IWAE bound (the ELBO with --iwae-k 0), "
                   "one end token per line counted, ± their standard error over test lines; unigram: each token on its "
                   "own, from training frequencies.")
        return "\n".join(out)


def _cell(value, se=None) -> str:
    """A figure with its standard error, when it has one."""
    if not isinstance(value, float):
        return "—" if value is None else str(value)
    digits = 3 if abs(value) < 10 else 2
    return f"{value:.{digits}f}" + (f"±{se:.{digits}f}" if isinstance(se, float) else "")


COLUMNS = [("name", "run"), ("data", "data"), ("tokens_by", "tokens"), ("nelbo_nats_per_line", "−ELBO/line"),
           ("kl_nats_per_line", "KL/line"), ("per_token", "nats/token"),
           ("perplexity", "perplexity"), ("unigram_perplexity", "unigram ppl"), ("active_units", "active z")]


def unigram_nll(info, train_lines: list[str], test: TextBatches) -> float:
    """Nats per test token of the unigram baseline: each token (end token included) drawn on its own from
    the training split's frequencies, add-one smoothed over the vocabulary."""
    counts = torch.ones(info.size, dtype=torch.float64)
    counts[PAD] = counts[BOS] = 0                        # never predicted
    for ids in encode_lines(info, train_lines)[0]:
        counts += torch.bincount(torch.tensor(ids), minlength=info.size).double()
    logp = torch.log(counts / counts.sum())
    x = test.x[test.x != PAD].cpu()
    return float(-logp[x].mean())


def emit(lines: list[str], output: str | None) -> None:
    """Lines to stdout, and to a .txt file when one is named."""
    if output is not None and not output.endswith(".txt"):
        raise UserError(f"a text run writes lines: give -o a .txt file, not {output!r} (or leave -o out to "
                        f"print them only)")
    if output is not None and not Path(output).parent.is_dir():
        raise UserError(f"cannot write {output}: folder {Path(output).parent} does not exist")
    for line in lines:
        print(line)
    if output is not None:
        write_atomic(Path(output), lambda p: p.write_text("".join(s + "\n" for s in lines), encoding="utf-8"))
        print(f"wrote {output}", file=sys.stderr)


def check_line(info, line: str) -> None:
    """A line a user typed: refused when empty or wholly unknown; unknown tokens named on stderr."""
    tokens = info.tokens(line)
    if not tokens:
        raise UserError("the line is empty: give some text")
    unknown = info.unknown(line)
    if len(unknown) == len(tokens):
        raise UserError(f"every token of {line!r} is unknown to this model (its vocabulary comes from its "
                        f"training lines; tokens by {info.unit})")
    if unknown:
        shown = ", ".join(repr(t) for t in dict.fromkeys(unknown))
        print(f"genlab: warning: {len(unknown)} token{'s' if len(unknown) > 1 else ''} unknown to this model, "
              f"read as <unk>: {shown}", file=sys.stderr)
