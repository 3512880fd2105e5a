"""The `genlab` sub-commands for text runs (sentence-vae): train, sample, eval, explore and data.

commands.py hands a run, a model or a corpus here when it is text, and nowhere else: an image run given a
text-only option, or a text run given an image-only one, is refused with one line. Text goes to stdout, one
line each; `-o FILE.txt` also writes it to a file.
"""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import torch

from .data.text import corpus_availability, is_text_spec, load_corpus
from .data.text_batches import TextBatches, encode_lines
from .data.vocab import BOS, PAD, TextInfo, build_vocab
from .errors import UserError
from .runs import Run, config_dict, write_atomic, write_json

EVAL_BATCH = 64
TEXT_CORPORA_HINT = "tang300, song100, fortunes, songs-poems or text:PATH"


# ---- which way a command goes -------------------------------------------------------------------------

def _is_text_model(name: str) -> bool:
    from .models.base import get_model_class
    return getattr(get_model_class(name), "modality", "images") == "text"


def _run_is_text(run: Run) -> bool:
    return run.config["info"].get("kind") == "text"


def is_text_train(args) -> bool:
    """Whether `genlab train` is training a text model; a text model with image data, or the other way
    round, is refused here, before anything is read or written."""
    if args.resume:
        return _run_is_text(Run.open(args.resume))
    if args.list or not args.model:
        return False
    text_model, text_data = _is_text_model(args.model), is_text_spec(args.data)
    if text_model and not text_data:
        raise UserError(f"{args.model} reads text, not the image data set {args.data!r}: "
                        f"give --data {TEXT_CORPORA_HINT}")
    if text_data and not text_model:
        raise UserError(f"{args.data!r} is text and {args.model} models images: train sentence-vae on it")
    return text_model


def is_text_run(path: str, args=None) -> bool:
    """Whether a run directory holds a text model. An image run asked for a text-only option or view is
    refused."""
    run = Run.open(path)
    if _run_is_text(run):
        return True
    if args is not None:
        model = run.config["model"]
        if getattr(args, "temperature", None) is not None or getattr(args, "greedy", False):
            raise UserError(f"--temperature and --greedy are for text models; {model} draws images")
        if getattr(args, "view", None) == "reconstruct":
            raise UserError(f"reconstruct is for text models (sentence-vae); {model} models images")
    return False


def refuse_text_run(path: str, what: str) -> None:
    """For the commands that only images have."""
    if _run_is_text(Run.open(path)):
        raise UserError(f"{what}; a text run has sample, eval, explore interpolate and explore reconstruct")


def text_runs(paths: list[str]) -> bool:
    """True when every run is text, False when none is; a mixture is refused (their figures differ)."""
    kinds = {_run_is_text(Run.open(p)) for p in paths}
    if len(kinds) > 1:
        raise UserError("evaluate text runs and image runs separately: their figures are not alike")
    return kinds == {True}


def _refuse(args, options: dict[str, str], why: str) -> None:
    """Refuse any of `options` (flag -> its attribute in args) that was given."""
    for flag, attr in options.items():
        if getattr(args, attr, None) not in (None, False):
            raise UserError(f"{flag} {why}")


# ---- shared steps -------------------------------------------------------------------------------------

def corpus_of_run(run: Run):
    """The run's corpus, read again from its spec; warns when its lines changed since training."""
    d = run.config["data"]
    ds = load_corpus(d["spec"])
    if ds.content_hash() != d.get("hash"):
        print(f"genlab: warning: the text behind {d['spec']!r} changed since {run.path} was trained "
              f"(hash {ds.content_hash()} vs {d.get('hash')}): figures may not compare", file=sys.stderr)
    return ds


def _emit(lines: list[str], output: str | None) -> None:
    """Lines to stdout, and to a .txt file when one is named."""
    if output is not None and not output.endswith(".txt"):
        raise UserError(f"a text run writes lines: give -o a .txt file, not {output!r} (or leave -o out to "
                        f"print them only)")
    if output is not None:
        path = Path(output)
        if not path.parent.is_dir():
            raise UserError(f"cannot write {output}: folder {path.parent} does not exist")
    for line in lines:
        print(line)
    if output is not None:
        write_atomic(Path(output), lambda p: p.write_text("".join(s + "\n" for s in lines), encoding="utf-8"))
        print(f"wrote {output}", file=sys.stderr)


def _check_line(info: TextInfo, line: str) -> None:
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


def _model(path: str, device):
    from .runs import load
    return load(path, device=device)


# ---- train --------------------------------------------------------------------------------------------

def cmd_train(args) -> int:
    from .commands import _overrides, next_run_dir, resumed_run, run_training, setup_torch
    from .models.base import get_model_class, make_config
    from .training.trainer import Trainer, TrainOptions

    _refuse(args, {"--size": "size", "--binarize": "binarize"}, "is for images; it does not apply to text")
    device = setup_torch(args.device, args.threads)
    if args.resume:
        run, model, opts = resumed_run(args, device)
        ds = corpus_of_run(run)
        batches = _train_and_test(model.info, ds, opts, device)
    else:
        cls = get_model_class(args.model)
        config = make_config(cls.Config, _overrides(args))
        ds = load_corpus(args.data)
        info = build_vocab(ds.train, ds.unit if config.tokens == "auto" else config.tokens,
                           lowercase=config.lowercase, min_count=config.min_count, max_len=config.max_len)
        torch.manual_seed(args.seed)   # the initial weights are part of what the seed fixes
        model = cls(config, info).to(device)
        opts = TrainOptions(epochs=args.epochs or cls.default_epochs, batch_size=args.batch_size or cls.default_batch_size,
                            lr=args.lr or cls.default_lr, seed=args.seed, samples=args.samples)
        batches = _train_and_test(info, ds, opts, device)    # before the run exists: a bad corpus writes nothing
        stem = Path(args.data[len("text:"):]).stem if args.data.startswith("text:") else args.data
        run = Run.create(args.out or next_run_dir(cls.name, stem), {
            "model": cls.name, "config": config_dict(model.config), "info": info.to_json(),
            "data": {"spec": args.data, "name": ds.name, "hash": ds.content_hash(), "train": len(ds.train),
                     "test": len(ds.test), "unit": info.unit, "vocab": info.size},
            "seed": args.seed, "train": opts.to_json()})
    train, test, left_out = batches
    trainer = Trainer(model, run, train, test, opts)
    skipped = f", {left_out} longer than {model.info.max_len} tokens left out" if left_out else ""
    rows = run_training(trainer, run, opts, bool(args.resume),
                        f"training {model.name} on {ds.name} ({train.num_images()} lines, {train.num_tokens()} "
                        f"tokens by {model.info.unit}, vocabulary {model.info.size}{skipped}) on {device} → {run.path}")
    if isinstance(rows, int):
        return rows
    last = rows[-1] if rows else {}
    if last:
        per_token = last["test_nelbo"] / last["test_tokens"]
        print(f"done: {run.path} (epoch {trainer.epoch}; test −ELBO {last['test_nelbo']:.2f} nats per line, "
              f"{per_token:.3f} per token, KL {last['test_kl']:.2f}; `genlab eval {run.path}` for the IWAE bound "
              f"and perplexity)")
    return 0


def _train_and_test(info: TextInfo, ds, opts, device) -> tuple[TextBatches, TextBatches, int]:
    train_ids, left_train = encode_lines(info, ds.train)
    test_ids, left_test = encode_lines(info, ds.test)
    if not test_ids:
        raise UserError(f"every test line of {ds.name} is longer than max_len={info.max_len} tokens; raise --max-len")
    train = TextBatches(train_ids, batch_size=opts.batch_size, shuffle=True, seed=opts.seed, device=device)
    test = TextBatches(test_ids, batch_size=EVAL_BATCH, shuffle=False, device=device)
    return train, test, left_train + left_test


# ---- sample -------------------------------------------------------------------------------------------

def cmd_sample(args) -> int:
    from .commands import setup_torch

    _refuse(args, {"--class": "label", "--nrow": "nrow"}, "is for image models; a text run has neither classes nor grids")
    if args.greedy and args.temperature is not None:
        raise UserError("--temperature and --greedy exclude each other: greedy decoding always takes the most "
                        "likely token")
    device = setup_torch(args.device, args.threads)
    model = _model(args.run, device)
    g = torch.Generator(device=device).manual_seed(args.seed)
    lines = model.sample_text(args.n, generator=g, greedy=args.greedy,
                              temperature=1.0 if args.temperature is None else args.temperature)
    _emit(lines, args.output)
    return 0


# ---- explore ------------------------------------------------------------------------------------------

def cmd_explore(args) -> int:
    from .commands import setup_torch
    from .explore.latent import slerp

    if args.view not in ("interpolate", "reconstruct"):
        raise UserError(f"{args.view} is for image models; a text run has interpolate and reconstruct")
    _refuse(args, {"--class": "label"}, "is for conditional image models; it does not apply to text")
    device = setup_torch(args.device, args.threads)
    model = _model(args.run, device)
    if args.view == "interpolate":
        if args.steps < 2:
            raise UserError(f"--steps must be at least 2, not {args.steps}")
        for line in (args.a, args.b):
            _check_line(model.info, line)
        mu, _ = model.encode_text([args.a, args.b])
        t = torch.linspace(0, 1, args.steps, device=device).unsqueeze(1)
        z = mu[0] + t * (mu[1] - mu[0]) if args.method == "linear" else slerp(mu[0], mu[1], t)
        _emit(model.decode_text(z, greedy=True), args.output)
        return 0
    if args.n < 0:
        raise UserError(f"-n must be 0 or more, not {args.n}")
    _check_line(model.info, args.line)
    mu, logvar = model.encode_text([args.line])
    g = torch.Generator(device=device).manual_seed(args.seed)
    drawn = mu + torch.exp(0.5 * logvar) * torch.randn(args.n, mu.shape[1], generator=g, device=device)
    _emit(model.decode_text(torch.cat([mu, drawn]), greedy=True), None)
    return 0


# ---- eval ---------------------------------------------------------------------------------------------

def unigram_nll(info: TextInfo, train_lines: list[str], test: TextBatches) -> float:
    """Nats per test token of the unigram baseline: each token (end token included) drawn on its own from
    the training split's frequencies, add-one smoothed over the vocabulary."""
    counts = torch.ones(info.size, dtype=torch.float64)
    counts[PAD] = counts[BOS] = 0                        # never predicted
    for ids in encode_lines(info, train_lines)[0]:
        counts += torch.bincount(torch.tensor(ids), minlength=info.size).double()
    logp = torch.log(counts / counts.sum())
    x = test.x[test.x != PAD].cpu()
    return float(-logp[x].mean())


@torch.no_grad()
def evaluate_text_run(path: str, device, iwae_k: int, live: bool | None = None) -> dict:
    """Test figures of a text run, per line and per token; written to RUN/eval.json."""
    from .training.progress import Progress

    run = Run.open(path)
    model = _model(path, device)
    ds = corpus_of_run(run)
    info: TextInfo = model.info
    seqs, left_out = encode_lines(info, ds.test)
    test = TextBatches(seqs, batch_size=EVAL_BATCH, shuffle=False, device=device)
    torch.manual_seed(0)   # the bounds' own sampling: the same figures every time
    bar = Progress(len(test), f"eval {path}", unit="line", live=live)
    sums: dict[str, float] = {}
    means = []
    for x, lengths in test.epoch(0):
        for k, v in model.eval_terms(x, lengths, iwae_k=iwae_k).items():
            sums[k] = sums.get(k, 0.0) + float(v.double().sum())
        means.append(model.encode(x, lengths)[0])
        bar.update(1, items=len(x))
    bar.close()
    lines, tokens = len(seqs), sums["tokens"]
    bound = "iwae" if iwae_k > 0 else "nelbo"
    per_token = sums[bound] / tokens
    unigram = unigram_nll(info, ds.train, test)
    # Active units (Burda et al. 2016): code dimensions whose posterior mean varies across lines.
    active = int((torch.cat(means).var(0) > 0.01).sum())
    result = {"run": str(path), "model": model.name, "data": run.config["data"]["spec"],
              "data_hash": run.config["data"]["hash"], "tokens": f"{info.unit}s, and one end token per line",
              "vocab": info.size, "test_lines": lines, "test_tokens": int(tokens),
              "left_out": f"{left_out} test lines longer than {info.max_len} tokens",
              "epochs": (run.metrics() or [{"epoch": 0}])[-1]["epoch"],
              "nelbo_nats_per_line": sums["nelbo"] / lines, "recon_nats_per_line": sums["recon"] / lines,
              "kl_nats_per_line": sums["kl"] / lines, "nelbo_nats_per_token": sums["nelbo"] / tokens}
    if iwae_k > 0:
        result.update(iwae_nats_per_line=sums["iwae"] / lines, iwae_nats_per_token=sums["iwae"] / tokens,
                      iwae_k=iwae_k)
    result.update(perplexity=math.exp(per_token),
                  perplexity_from=f"the {'IWAE bound (k=' + str(iwae_k) + ')' if iwae_k > 0 else 'ELBO'}, "
                                  f"per token, end tokens counted: an upper bound on the true perplexity",
                  unigram_nats_per_token=unigram, unigram_perplexity=math.exp(unigram),
                  active_units=f"{active} of {model.config.latent_dim}")
    write_json(Path(path) / "eval.json", result)
    return result


COLUMNS = [("name", "run"), ("data", "data"), ("tokens_by", "tokens"), ("nelbo_nats_per_line", "−ELBO/line"),
           ("kl_nats_per_line", "KL/line"), ("iwae_nats_per_line", "IWAE/line"), ("per_token", "nats/token"),
           ("perplexity", "perplexity"), ("unigram_perplexity", "unigram ppl"), ("active_units", "active z")]


def format_text_table(results: list[dict]) -> str:
    rows = []
    for r in results:
        r = {**r, "name": Path(r["run"]).name, "tokens_by": r["tokens"].split("s,")[0],
             "per_token": r.get("iwae_nats_per_token", r["nelbo_nats_per_token"])}
        rows.append([f"{r[k]:.3f}" if isinstance(r.get(k), float) and abs(r[k]) < 10 else
                     f"{r[k]:.2f}" if isinstance(r.get(k), float) else str(r.get(k, "—")) for k, _ in COLUMNS])
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, (_, h) in enumerate(COLUMNS)]
    line = lambda cells: "  ".join(c.rjust(w) if i > 2 else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths)))  # noqa: E731
    out = [line([h for _, h in COLUMNS]), line(["-" * w for w in widths])] + [line(r) for r in rows]
    out.append("nats on the test split; per token and perplexity from the IWAE bound (the ELBO with --iwae-k 0), "
               "one end token per line counted; unigram: each token on its own, from training frequencies.")
    return "\n".join(out)


def cmd_eval(args) -> int:
    from .commands import setup_torch

    if getattr(args, "metrics", "likelihood") != "likelihood":
        raise UserError(f"--metrics {args.metrics}: text runs have the likelihood figures only")
    if args.iwae_k < 0:
        raise UserError(f"--iwae-k must be 0 or more, not {args.iwae_k}")
    device = setup_torch(args.device, args.threads)
    results = [evaluate_text_run(r, device, args.iwae_k, live=None if not args.json else False) for r in args.runs]
    if args.json:
        print(json.dumps(results[0] if len(results) == 1 else {r["run"]: r for r in results}, indent=2,
                         ensure_ascii=False))
    else:
        print(format_text_table(results))
    return 0


# ---- data ---------------------------------------------------------------------------------------------

def list_corpora() -> None:
    for name, (ok, why) in corpus_availability().items():
        print(f"{name:15s} {'available' if ok else 'missing':10s} {why}")
    print(f"{'text:PATH':15s} {'':10s} any UTF-8 text file, one sentence, verse or short poem a line")


def cmd_data(args) -> int:
    _refuse(args, {"--size": "size", "--binarize": "binarize"}, "is for images; it does not apply to text")
    if args.output:
        raise UserError("-o writes a grid of images; a text corpus prints its example lines")
    ds = load_corpus(args.name)
    for k, v in ds.describe().items():
        print(f"{k:8s} {v}")
    print("examples")
    for line in ds.train[:5]:
        print(f"  {line}")
    return 0
