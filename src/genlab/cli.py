"""The `genlab` command: train, sample, eval, explore, complete, data, demo, report, serve.

Bad input of any kind ends in one line on stderr and exit status 2 (UserError); nothing else is caught.
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import signal
import sys
import threading
import textwrap

from .defaults_help import train_defaults
from .errors import UserError
from .settings import describe_fields


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit status 2."""

    def error(self, message):
        sys.stderr.write(f"genlab: error: {message} (see {self.prog} --help)\n")
        sys.exit(2)


def _positive(kind, name, high=None):
    def parse(text):
        try:
            v = kind(text)
        except ValueError:
            what = "a whole number" if kind is int else "a number"
            raise argparse.ArgumentTypeError(f"{name} must be {what}, not {text!r}") from None
        if not v > 0 or (kind is float and not math.isfinite(v)):
            raise argparse.ArgumentTypeError(f"{name} must be positive, not {text!r}")
        if high is not None and v > high:
            raise argparse.ArgumentTypeError(f"{name} must be at most {high:,}, not {text!r}")
        return v
    return parse


# Sizes past these would ask for tens of GB or days: refused with one line, not tried.
MAX_SAMPLES, MAX_STEPS, MAX_IWAE_K = 100_000, 200, 10_000


def _seed(text):
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--seed must be a whole number, not {text!r}") from None
    if not 0 <= v < 2**63:
        raise argparse.ArgumentTypeError(f"--seed must be from 0 to 2**63 - 1, not {text!r}")
    return v


def _at_least_zero(name, high=None):
    def parse(text):
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a whole number, not {text!r}") from None
        if v < 0:
            raise argparse.ArgumentTypeError(f"{name} must be 0 or more, not {text!r}")
        if high is not None and v > high:
            raise argparse.ArgumentTypeError(f"{name} must be at most {high:,}, not {text!r}")
        return v
    return parse


def _pixels(text):
    from .data.containers.loader import palette_size
    palette_size(text)          # a bad mode is a UserError: one line, exit status 2
    return text


def _common_run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="auto", help="auto (a GPU when there is one), cpu or cuda")
    p.add_argument("--threads", type=_positive(int, "--threads"), help="CPU threads for torch")


def _option_in(argv: list[str], flag: str) -> str | None:
    """The value of `--flag V` or `--flag=V` in argv (the last one given), or None: read before parsing, for
    the help of `genlab train MODEL`."""
    value = None
    for i, a in enumerate(argv):
        if a == flag and i + 1 < len(argv):
            value = argv[i + 1]
        elif a.startswith(flag + "="):
            value = a[len(flag) + 1:]
    return value


def _add_train(sub, model_cls, data: str | None = None, batch_size: int | None = None) -> None:
    description = "genlab train MODEL --data NAME --out DIR   |   genlab train --resume DIR"
    epochs_help = "epochs (EM iterations for gmm); default: the model's own (genlab train MODEL --help)"
    batch_help, lr_help = "default: the model's own", "learning rate (default: the model's own; the paper's for GANs)"
    if model_cls is not None:
        epochs_help, line = train_defaults(model_cls, data, batch_size)
        description += "\n\n" + textwrap.fill(line + ".", 78, break_on_hyphens=False)
        batch_help = f"default {model_cls.default_batch_size}"
        lr_help = f"learning rate (default {model_cls.default_lr:g})"
    p = sub.add_parser("train", help="train a model; writes a run directory", description=description,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", nargs="?", help="model name (see `genlab train --list`)")
    p.add_argument("--resume", metavar="RUN", help="continue a run directory where it stopped")
    p.add_argument("--config", metavar="FILE", help="start a new run with the settings of a run's config.json "
                                                    "(options given beside it change them)")
    p.add_argument("--list", action="store_true", help="list the models and exit")
    p.add_argument("--data", default="digits", help="digits, mnist, fashion-mnist or folder:PATH (default digits); "
                                                    "text: tang300, song100, fortunes, songs-poems or text:PATH; "
                                                    "sound: spoken-digits, notes or audio:PATH; "
                                                    "video: moving-mnist, moving-mnist-32 or video:PATH")
    p.add_argument("--data-a", metavar="SPEC", help="translators (cyclegan, discogan): domain A, an image data set "
                                                    "or folder:PATH (instead of --data)")
    p.add_argument("--data-b", metavar="SPEC", help="translators: domain B, drawn independently of A (no pairing is "
                                                    "used), resized to A's size and channels")
    p.add_argument("--size", type=_positive(int, "--size"), help="resize folder images to SIZE×SIZE; sound: cut or "
                                                                 "pad clips to SIZE samples")
    p.add_argument("--binarize", type=_pixels, metavar="MODE",
                   help="binarise pixels: resampled every epoch (dynamic), at 0.5 (threshold), keep 8-bit "
                        "(none), or palette:N (each pixel one of N colours fitted to the training images; "
                        "autoregressive models); default: the model's own")
    p.add_argument("--out", help="run directory to write (default runs/MODEL-DATA-N)")
    p.add_argument("--epochs", type=_positive(int, "--epochs"), help=epochs_help)
    p.add_argument("--batch-size", type=_positive(int, "--batch-size"), help=batch_help)
    p.add_argument("--lr", type=_positive(float, "--lr"), help=lr_help)
    p.add_argument("--seed", type=_seed, default=None if model_cls is None else 0)
    p.add_argument("--samples", type=_at_least_zero("--samples"), default=64, help="images in each epoch's sample grid (text: lines in a .txt; 0: none)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="any model setting")
    _common_run_options(p)
    from .training.options import add_trainer_options       # torch: imported once main() guards Ctrl-C
    add_trainer_options(p)
    if model_cls is not None:
        g = p.add_argument_group(f"{model_cls.name} settings (also as --set KEY=VALUE)")
        for f in dataclasses.fields(model_cls.Config):
            g.add_argument(f"--{f.name.replace('_', '-')}", dest=f"cfg__{f.name}", metavar="V",
                           help=f"{f.metadata.get('help', '')} (default {f.default!r})")


def _add_sample_settings(p: argparse.ArgumentParser, modality, model_cls) -> None:
    """A flag per sampling setting the run's modality and model declare, with its meaning and bounds; the
    value stays text, checked by the modality (settings.check_settings) with the same one-line errors the
    library and the explorer give."""
    for owner, title in zip(modality.setting_classes(model_cls), (f"{modality.noun}", model_cls.name)):
        fields = describe_fields(owner)
        if not fields:
            continue
        g = p.add_argument_group(f"sampling settings of {title}")
        for f in fields:
            bounds = ("" if f["low"] is None and f["high"] is None else
                      f"; {f['low']:g} to {f['high']:,g}" if f["low"] is not None and f["high"] is not None else
                      f"; at least {f['low']:g}" if f["low"] is not None else f"; at most {f['high']:,g}")
            choices = f"; one of {', '.join(map(str, f['choices']))}" if f["choices"] else ""
            if f["type"] == "bool":
                g.add_argument(f["flag"], dest=f"set__{f['name']}", action="store_const", const="true",
                               help=f["help"])
            else:
                g.add_argument(f["flag"], dest=f"set__{f['name']}", metavar=f["type"].upper(),
                               help=f"{f['help']}{bounds}{choices}")


def build_parser(model_cls=None, data: str | None = None, batch_size: int | None = None,
                 sample_run: tuple | None = None) -> Parser:
    from .version import __version__

    parser = Parser(prog="genlab", description="Deep generative models of every family: one workflow.")
    parser.add_argument("--version", action="version", version=f"genlab {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    _add_train(sub, model_cls, data, batch_size)

    p = sub.add_parser("sample", help="draw samples from a trained run as one grid")
    p.add_argument("run")
    p.add_argument("-n", type=_positive(int, "-n", MAX_SAMPLES),
                   help="how many: a number that fits the kind of data unless told (64 images, 10 lines of "
                        "text, 8 sound clips, 4 video clips)")
    p.add_argument("-o", "--output", help="image grid to write (default samples.png); text runs print their "
                                          "lines and also write them to a .txt file named here; sound runs: a "
                                          ".wav of the clips half a second apart (default samples.wav), or "
                                          "FOLDER/ for a .wav each, a waveform and spectrogram .png beside; "
                                          "video runs: NAME.gif, held-out clips continued (default clips.gif), "
                                          "and NAME.png, their frames in rows")
    p.add_argument("--seed", type=_seed, default=0)
    _common_run_options(p)
    if sample_run is not None:                  # the settings this run's modality and model declare
        _add_sample_settings(p, *sample_run)

    p = sub.add_parser("eval", help="test-set figures of one or more runs")
    p.add_argument("runs", nargs="+")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--iwae-k", type=_at_least_zero("--iwae-k", MAX_IWAE_K), default=100,
                   help="importance samples for the IWAE bound (0: skip)")
    p.add_argument("--metrics", default="likelihood",
                   help="comma-separated: likelihood, fid, kid, prdc (precision, recall, density, coverage), "
                        "modes, is, memorisation, classes (a conditional run's class agreement); video: continuation "
                        "(held-out clips continued, against copying the last frame) and fid (of single frames); "
                        "sound: fid, kid, prdc, memorisation, classes; or all (default likelihood)")
    p.add_argument("--samples", type=_positive(int, "--samples", MAX_SAMPLES),
                   help="samples drawn per run for sample metrics, and real images they are compared with "
                        "(default: half the training split, at most 10,000; video: held-out clips continued, "
                        "default 100; sound: 100)")
    p.add_argument("--features", metavar="PATH|selfsup",
                   help="feature network saved as TorchScript (images N×C×H×W in [0, 1] → features N×D, or "
                        "(features, logits)), or selfsup: genlab's self-supervised network (SimCLR) of the run's "
                        "data (a file named selfsup: ./selfsup); default: genlab's classifier of labelled data, the "
                        "self-supervised network of unlabelled data, each trained once and cached")
    p.add_argument("--plot", metavar="PNG", help="also draw precision/recall, density/coverage and FID of the runs")
    _common_run_options(p)

    p = sub.add_parser("explore", help="look inside a model: grid, interpolate, style, reconstruct (text)")
    p.add_argument("run")
    views = p.add_subparsers(dest="view", required=True, parser_class=Parser)
    v = views.add_parser("grid", help="sweep two code dimensions, the others fixed")
    v.add_argument("--dims", type=int, nargs=2, default=[0, 1])
    v.add_argument("--steps", type=_positive(int, "--steps", MAX_STEPS), default=15)
    v.add_argument("--span", type=_positive(float, "--span"), default=3.0, help="sweep from -SPAN to SPAN")
    v.add_argument("--class", dest="label", type=int)
    v.add_argument("-o", "--output", default="grid.png")
    v = views.add_parser("interpolate", help="walk in code space from one image (or line of text) to another")
    v.add_argument("a")
    v.add_argument("b")
    v.add_argument("--steps", type=_positive(int, "--steps", MAX_STEPS), default=10)
    v.add_argument("--method", choices=("linear", "slerp"), default="linear")
    v.add_argument("--class", dest="label", type=int)
    v.add_argument("-o", "--output", help="image to write (default interpolation.png); text runs print one line "
                                          "a step and also write them to a .txt file named here")
    v = views.add_parser("reconstruct", help="encode a line of text and decode it back (text models)")
    v.add_argument("line")
    v.add_argument("-n", type=_at_least_zero("-n", MAX_STEPS), default=0, help="also decode N codes drawn from q(z | line) (default 0)")
    v.add_argument("--seed", type=_seed, default=0)
    v = views.add_parser("style", help="one example's style drawn as every class (conditional models)")
    v.add_argument("image")
    v.add_argument("--label", type=int, help="the example's class (default: the model's own guess)")
    v.add_argument("-o", "--output", default="style.png")
    for v in views.choices.values():
        _common_run_options(v)

    p = sub.add_parser("complete", help="draw the covered part of an image or a sound clip (autoregressive models)")
    p.add_argument("run")
    p.add_argument("--image", "--clip", dest="image", required=True,
                   help="the image (PNG, JPEG or GIF) or sound clip (WAV) to complete")
    p.add_argument("--cover", default="bottom-half",
                   help="what the model draws: bottom-half, right-half or a percentage such as 75%% "
                        "(the last pixels in raster order; of a clip, its last half or share), or of a clip "
                        "its last seconds such as 0.5s; default bottom-half")
    p.add_argument("-n", type=_positive(int, "-n", MAX_STEPS), default=8, help="completions side by side (default 8)")
    p.add_argument("-o", "--output", default="completion.png")
    p.add_argument("--seed", type=_seed, default=0)
    p.add_argument("--class", dest="label", type=int, help="class to draw (conditional models)")
    _common_run_options(p)

    p = sub.add_parser("translate", help="an image of one domain as the other (translators: cyclegan, discogan)")
    p.add_argument("run")
    p.add_argument("--image", required=True, help="the image to translate (PNG, JPEG or GIF), resized to the run's size")
    p.add_argument("--direction", choices=("a2b", "b2a"), default="a2b",
                   help="a2b: from domain A (--data-a) into B (default); b2a: from B into A")
    p.add_argument("-o", "--output", default="translation.png", help="the translation, at the run's image size")
    _common_run_options(p)

    p = sub.add_parser("data", help="list data sets, describe one, or fetch one")
    p.add_argument("name", nargs="?", help="a data set name, or `fetch`")
    p.add_argument("target", nargs="?", help="with fetch: the data set to fetch")
    p.add_argument("--size", type=_positive(int, "--size"), help="images: resize to SIZE×SIZE; sound: clips of SIZE samples")
    p.add_argument("-o", "--output", help="write a grid of examples")
    p.add_argument("--binarize", type=_pixels, metavar="MODE",
                   help="show the examples as a model trained with --binarize MODE sees them (palette:N: and "
                        "list the palette)")

    p = sub.add_parser("demo", help="train ae, vae, cvae and gmm on digits (or the lecture's line-up on the Pokémon "
                                    "sprites) and compare them")
    p.add_argument("which", nargs="?", choices=("digits", "pokemon"), default="digits",
                   help="digits (default): ae, vae, cvae and gmm on the built-in digits; pokemon: a palette gated "
                        "PixelCNN, a 2-d VAE and a DCGAN on the 20×20 sprites (`genlab data fetch pokemon` first)")
    p.add_argument("--out", help="a new or empty folder (default demo-out, or demo-out-2, -3, ... beside it "
                                 "when that one holds files already)")
    p.add_argument("--epochs", type=_positive(int, "--epochs"), default=None)
    _common_run_options(p)

    p = sub.add_parser("zoo", help="trained runs shipped with genlab: list them, show one's card, or copy one",
                       description="genlab zoo | genlab zoo NAME | genlab zoo copy NAME DEST. Every command that "
                                   "takes a run takes zoo:NAME too (genlab serve zoo: serves them all).")
    p.add_argument("name", nargs="?", help="an entry, to show its card; or `copy`")
    p.add_argument("target", nargs="*", help="with copy: NAME DEST")

    p = sub.add_parser("report", help="one self-contained HTML page of runs: curves, samples, figures, a table")
    p.add_argument("runs", nargs="+", metavar="RUN")
    p.add_argument("-o", "--output", default="report.html", help="the page to write (default report.html)")
    _common_run_options(p)

    p = sub.add_parser("serve", help="a local page to play with trained models (sliders, classes, completion)")
    p.add_argument("runs", nargs="+", metavar="RUN")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only; 0.0.0.0: the network)")
    p.add_argument("--port", type=_at_least_zero("--port", 65535), default=8000,
                   help="port to listen on (default 8000; 0: any free one, printed when it starts)")
    p.add_argument("--workers", type=_positive(int, "--workers", 16), default=2,
                   help="threads that run the models, so the page stays responsive (default 2)")
    _common_run_options(p)
    return parser


def _model_class_from_argv(argv: list[str]):
    if len(argv) >= 2 and argv[0] == "train" and not argv[1].startswith("-"):
        from .models.registry import get_model_class
        return get_model_class(argv[1])
    return None


def _sample_run_from_argv(argv: list[str]):
    """(modality, model class) of `genlab sample RUN`'s run, whose declarations give the command its
    settings; None before a run is named, or for --help of a run that cannot be read."""
    if len(argv) < 2 or argv[0] != "sample" or argv[1].startswith("-"):
        return None
    from . import modalities
    from .runs import Run
    try:
        run = Run.open(argv[1])
        return modalities.of_run(run), run.model_class
    except UserError:
        if "-h" in argv or "--help" in argv:
            return None
        raise


_signalled: list[int] = []


def _interrupted(signum, frame):
    # SIGTERM ends a command as Ctrl-C does: what was kept, and how to go on. Remembered, because a signal
    # that lands inside an extension's import comes back as that import's error, not as KeyboardInterrupt.
    _signalled.append(signum)
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    main_thread = threading.current_thread() is threading.main_thread()
    before = ({sig: signal.signal(sig, _interrupted) for sig in (signal.SIGTERM, signal.SIGINT)} if main_thread
              else None)
    _signalled.clear()
    try:
        model_cls = _model_class_from_argv(argv)
        batch = _option_in(argv, "--batch-size") if model_cls is not None else None
        sample_run = _sample_run_from_argv(argv)
        parser = build_parser(model_cls, _option_in(argv, "--data") if model_cls is not None else None,
                              int(batch) if batch and batch.isdigit() and int(batch) > 0 else None, sample_run)
        args, extra = parser.parse_known_args(argv)
        if extra:
            flag = next((a for a in extra if a.startswith("--")), None)
            if sample_run is not None and flag is not None:    # another run's setting: say whose it is
                modality, model_cls = sample_run
                modality.refuse_setting(model_cls, flag)
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        from . import commands, progress
        with progress.shown():                  # a model's long loops (DDIM steps, pixel rows) show a bar
            return getattr(commands, f"cmd_{args.command}")(args) or 0
    except UserError as e:
        sys.stderr.write(f"genlab: error: {e}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("genlab: interrupted\n")
        return 130
    except BrokenPipeError:
        return 0
    except Exception:
        if _signalled:                          # the interruption, worn as another error on its way out
            sys.stderr.write("genlab: interrupted\n")
            return 130
        raise
    finally:
        if before is not None:                  # a caller's own handlers come back (main() as a library)
            for sig, handler in before.items():
                if handler is not None:
                    signal.signal(sig, handler)


if __name__ == "__main__":
    sys.exit(main())
