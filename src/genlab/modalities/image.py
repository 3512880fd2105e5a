"""Images: built-in data sets and folders of the user's files, as binarised, 8-bit or palette pixels; two
unpaired domains of them for the translators ("A+B", `--data-a A --data-b B`); and images with captions
for a text-to-image model (a batch's `condition` is then each image's caption as token ids: the user's
own from `captions:FILE`, else written from each image's class and measured attributes, data/captions/)."""
from __future__ import annotations

import dataclasses
import io
import sys
from pathlib import Path

import torch

from ..data import Batches, availability, dataset_names, fetch_dataset, load_dataset, make_info
from ..data.captions.batches import caption_batches, with_captions
from ..data.captions.file import PREFIX as CAPTIONS
from ..data.containers.images import read_image, save_grid, to_uint8
from ..data.containers.loader import transform
from ..data.containers.palette import in_palette, snap
from ..data.containers.two_domains import (FOLDER, TwoDomainBatches, TwoDomains, load_two_domains,  # noqa: F401
                                           split_domains, two_domains)
from ..errors import UserError
from ..evaluation.sample_quality import SAMPLE_METRICS
from ..settings import option
from .base import Modality
from .media import Media, png_bytes, write_image

EVAL_BATCH = 256
MIN_SIDE = 256          # pictures a person opens are enlarged to at least this many pixels across


@dataclasses.dataclass
class ImageSampling:
    label: int | None = option(None, "class to draw (class-conditional models; default: the classes in turn)",
                               low=0, flag="--class")
    nrow: int | None = option(None, "images in a row of the grid", low=1, high=100_000)
    scale: int | None = option(None, "enlarge every pixel this many times (default: images 64 px tall and the "
                                     "picture 256 px on its short side)", low=1, high=64)


class ImageModality(Modality):
    name = "image"
    noun = "images"
    verb = "draws images"
    unit = "img"
    data_hint = ("digits, mnist, fashion-mnist, printed-digits, pokemon, pokemon-20, pokemon-shiny, folder:PATH, "
                 "captions:FILE or A+B")
    data_options = ("size", "binarize")
    SampleSettings = ImageSampling
    sample_metrics = SAMPLE_METRICS     # FID, precision/recall, modes, memorisation: evaluation/quality.py
    train_sizes = {"digits": 1438, "printed-digits": 8000, "mnist": 8000, "fashion-mnist": 60000, "pokemon": 665,
                   "pokemon-20": 665, "pokemon-shiny": 665}
    views = ("grid", "interpolate", "style")
    panels = (("code", ("decode",)), ("interpolate", ("decode",)),      # a slider per code dimension; two codes
              ("complete", ("complete",)), ("translate", ("translate",)),   # a painted cover; there and back
              ("trajectory", ("trajectory",)))                               # samples on their way from noise
    report_views = (("Latent grid", "latent_grid", ("decode",)), ("Interpolation", "interpolation", ("decode",)),
                    ("By class", "by_class", ("class",)), ("Completions", "completions", ("complete",)),
                    ("Translations", "translations", ("translate",)),
                    ("Denoising", "trajectory", ("trajectory",)))

    # ---- data ----
    def owns(self, spec: str) -> bool:
        return (spec.startswith(FOLDER) or spec.startswith(CAPTIONS) or spec in dataset_names()
                or split_domains(spec) is not None)

    def availability(self):
        rows = [(name, ok, why) for name, (ok, why) in availability().items()]
        return rows + [("folder:PATH", None, "any folder of PNG/JPEG/GIF (sub-folders are classes)"),
                       ("captions:FILE", None, "lines of PATH<TAB>CAPTION: images and what they show (text2img)")]

    def load(self, spec, options):
        self.refuse(options, self.data_options, self.noun)
        if (pair := split_domains(spec)) is not None:
            return load_two_domains(*pair, size=options.get("size"))
        return load_dataset(spec, size=options.get("size"))

    def fetch(self, name):
        return fetch_dataset(name)

    def prepare(self, ds, model_cls, config, options):
        binarize = options.get("binarize") or model_cls.default_binarize
        if binarize.startswith("palette") and not model_cls.palette_pixels:
            raise UserError(f"{model_cls.name} cannot model palette pixels: use --binarize dynamic, threshold or "
                            f"none, or an autoregressive model (pixelcnn, gated-pixelcnn, pixelrnn-row, "
                            f"pixelrnn-diag, pixel-lstm)")
        two = isinstance(ds, TwoDomains)
        if two != (model_cls.conditioning == "image"):
            raise UserError(f"{model_cls.name} learns from two domains of images: give --data-a A --data-b B" if not two
                            else f"{model_cls.name} models one data set; two domains (--data-a, --data-b) are for "
                                 f"the translators (cyclegan, discogan)")
        info = make_info(ds, binarize)
        spec = self.absolute(self.absolute(options["spec"], FOLDER), CAPTIONS)
        if two:
            spec = two_domains(*(self.absolute(part, FOLDER) for part in split_domains(spec)))
        record = {"spec": spec, "name": ds.name, "hash": ds.content_hash(), "train": len(ds.train_x),
                  "test": len(ds.test_x), "size": options.get("size"), "binarize": binarize}
        if two:     # an epoch draws as many of each domain as the larger has
            record.update(train=len(ds), train_a=len(ds.a.train_x), train_b=len(ds.b.train_x),
                          test_b=len(ds.b.test_x))
        if model_cls.conditioning == "text":     # a caption for every image: its words are the model's
            info, said = with_captions(ds, info, model_cls.data_request(config).get("holdout", ""))
            record.update(said)
        return info, record

    def reload(self, run, warn=True):
        d = run.config["data"]
        pair = split_domains(d["spec"])
        ds = (load_two_domains(*pair, size=d.get("size")) if pair is not None
              else load_dataset(d["spec"], size=d.get("size"), channels=d.get("channels")))
        if warn:
            self.warn_changed(run, ds.content_hash(), "data")
        return in_palette(ds, run.info)

    def batches(self, ds, info, record, *, batch_size, seed, device):
        if isinstance(ds, TwoDomains):
            train = TwoDomainBatches(ds.a.train_x, ds.b.train_x, binarize=record["binarize"], batch_size=batch_size,
                                     shuffle=True, seed=seed, device=device)
            return train, self.test_batches(ds, record["binarize"], device)
        ds = in_palette(ds, info)        # a palette run sees every image in its palette's colours
        if info.vocab:                   # a caption-conditioned run: each image with its caption
            return caption_batches(ds, info, record, batch_size=batch_size, seed=seed, device=device,
                                   test_batch=EVAL_BATCH)
        train = Batches(ds.train_x, ds.train_y, binarize=record["binarize"], batch_size=batch_size, shuffle=True,
                        seed=seed, device=device)
        return train, self.test_batches(ds, record["binarize"], device)

    @staticmethod
    def test_batches(ds, binarize: str, device) -> Batches:
        # Seed 0 for every run: all runs of one data set are scored on the very same binarised test images.
        if isinstance(ds, TwoDomains):
            return TwoDomainBatches(ds.a.test_x, ds.b.test_x, binarize=binarize, batch_size=EVAL_BATCH,
                                    shuffle=False, seed=0, device=device)
        return Batches(ds.test_x, ds.test_y, binarize=binarize, batch_size=EVAL_BATCH, shuffle=False, seed=0,
                       device=device)

    def announce(self, model, ds, train, record) -> str:
        if isinstance(ds, TwoDomains):
            return (f"{ds.a.name} and {ds.b.name} ({len(ds.a.train_x)} and {len(ds.b.train_x)} images, unpaired, "
                    f"drawn independently; {pixels_said(record['binarize'])})")
        return f"{ds.name} ({len(ds.train_x)} images, {pixels_said(record['binarize'])})"

    def describe(self, ds, options, output):
        for k, v in ds.describe().items():
            if k == "classes":
                v = ", ".join(v) if v else "none (unlabelled)"
            print(f"{k:8s} {v}")
        images = ds.train_x[:64]
        if isinstance(ds, TwoDomains):          # a row of A's examples over a row of B's
            images = torch.cat([ds.a.train_x[:8], ds.b.train_x[:8]])
        if options.get("binarize"):              # the examples as a model with these pixels sees them
            info = make_info(ds, options["binarize"])
            if info.palette:
                print(f"{'palette':8s} {len(info.palette)} colours: "
                      + " ".join("#" + "".join(f"{v:02x}" for v in colour) for colour in info.palette))
            images = transform(snap(images, info), options["binarize"], torch.Generator().manual_seed(0))
        if output:
            write_grid(images, output)

    # ---- what a model writes and reads ----
    def draw(self, model, n, generator, condition=None, **settings):
        """n images in [0, 1]; `settings` are the model's declared sampling settings (a diffusion's steps, a
        flow's temperature, a caption's text), checked, and refused with one line where it has none such."""
        if "label" in settings:
            raise UserError("give a class as condition= (class labels), not label=")
        _, theirs = self.split_settings(model, settings)
        return model.sample(n, condition=condition, generator=generator, **theirs)

    def write_samples(self, model, stem, n, generator):
        if "translate" in model.abilities:      # held-out images of the run's data (its folder: stem's grandparent)
            from ..runs import Run
            images, nrow = self.translations(model, self.reload(Run.open(Path(stem).parent.parent), warn=False), n)
            return save_grid(images, stem.with_suffix(".png"), nrow=nrow)
        if model.info.captions:                 # a caption-conditioned model: a row per example caption, labelled
            images, nrow, labels = self.caption_rows(model, n, generator)
            return save_grid(images, stem.with_suffix(".png"), nrow=nrow, row_labels=labels)
        return save_grid(self.draw(model, n, generator), stem.with_suffix(".png"))

    def sample(self, model, n, options, output, generator):
        if "translate" in model.abilities:
            from ..runs import Run
            options = dict(options)
            run = Run.open(options.pop("run"))
            for key, value in options.items():
                if key not in ("nrow", "scale") and value not in (None, False):
                    self.refuse_setting(model, key)
            mine, _ = self.split_settings(model, {k: v for k, v in options.items() if k in ("nrow", "scale")})
            images, nrow = self.translations(model, self.reload(run), n)
            write_grid(images, output or "samples.png", nrow, mine.get("scale"))
            return
        options = {k: v for k, v in options.items() if k != "run"}
        mine, theirs = self.split_settings(model, options)
        if model.condition_kind == "text" and mine.get("label") is not None:
            raise UserError(f"--class does not apply to {model.name}: it draws what a caption says; give "
                            f"--text \"...\"")
        condition = model.class_condition(mine.get("label"), n)
        if model.condition_kind == "text" and theirs.get("text") is None and not mine.get("nrow"):
            images, nrow, labels = self.caption_rows(model, n, generator, **theirs)
            print(f"wrote {save_grid(images, output or 'samples.png', nrow, mine.get('scale'), labels)} "
                  f"({len(labels)} example captions, a row each)")
            return
        write_grid(model.sample(n, condition=condition, generator=generator, **theirs), output or "samples.png",
                   mine.get("nrow"), mine.get("scale"))

    @staticmethod
    def caption_rows(model, n: int, generator, **settings) -> tuple[torch.Tensor, int, list[str]]:
        """A text-conditioned model's samples of its example captions, a row per caption (about n in all,
        at least one each), with the captions to label the rows."""
        captions = list(model.info.captions)
        per = max(1, n // len(captions))
        drawn = model.sample(per * len(captions), generator=generator, **settings)    # captions in turn
        order = torch.arange(per * len(captions)).view(per, len(captions)).t().reshape(-1)
        return drawn[order.to(drawn.device)], per, captions

    def translations(self, model, ds, n: int) -> tuple[torch.Tensor, int]:
        """A translator's grid of held-out images: about n/6 test images of A, their translations into B and
        back (three rows), then as many of B the other way; and its row length."""
        k = max(1, min(round(n / 6), len(ds.a.test_x), len(ds.b.test_x)))
        rows = []
        for images, there, back in ((ds.a.test_x, "a2b", "b2a"), (ds.b.test_x, "b2a", "a2b")):
            x = self.as_input(model, images[:k])
            y = model.translate(x, there)
            rows += [x, y, model.translate(y, back)]
        return torch.cat(rows), k

    def translate(self, model, value, direction: str, *, output: str | None) -> None:
        """`genlab translate`: the user's image in the other domain, at the run's size, enlarged (nearest
        neighbour, an integer factor: pixels stay pixels) to at least MIN_SIDE pixels across for a viewer."""
        from PIL import Image
        c, h, w = model.info.shape
        try:
            with Image.open(value) as im:
                given = im.size
        except (OSError, ValueError):
            given = None                       # read_input says what is wrong with it, in one line
        image = to_uint8(model.translate(self.read_input(model, value), direction))[0]
        k = max(1, -(-MIN_SIDE // min(h, w)))
        path = write_image(image.repeat_interleave(k, 1).repeat_interleave(k, 2), output or "translation.png")
        resized = (f"; the input was resized from {given[0]}×{given[1]} to the run's {w}×{h}"
                   if given and given != (w, h) else "")
        print(f"wrote {path} ({w}×{h} drawn {k}× larger{resized})", file=sys.stdout)

    def read_input(self, model, value):
        """A user's image file as the model sees data: 1×C×H×W, binarised at 0.5, scaled to [0, 1], or in the
        nearest palette colours."""
        c, h, w = model.info.shape
        return self.as_input(model, read_image(value, c, (h, w)).unsqueeze(0))

    def page_sample(self, model, n, generator, condition, settings):
        """A text-conditioned model given no caption draws its example captions, a row each, and says which."""
        if model.condition_kind == "text" and settings.get("text") is None:
            images, per, captions = self.caption_rows(model, n, generator, **settings)
            return {"image": Media.png(images, nrow=per), "captions": captions}
        return super().page_sample(model, n, generator, condition, settings)

    def page_describe(self, model, limits):
        return {"shape": list(model.info.shape)}        # a cover is painted on it

    def page_examples(self, model, ds, domain="a"):
        """The test images (N×C×H×W uint8): a translator's of domain A or B."""
        if domain not in ("a", "b"):
            raise UserError(f"domain must be a or b, not {str(domain)[:20]!r}")
        if domain == "b" and "translate" not in model.abilities:
            raise UserError(f"{model.name} models one data set: domain b is a translator's second domain")
        return ds.b.test_x if domain == "b" else ds.test_x

    def page_input(self, model, ds, i, domain="a"):
        """Test image i through the very path an uploaded file takes."""
        image = super().page_input(model, ds, i, domain)
        return self.read_input(model, io.BytesIO(png_bytes(image.unsqueeze(0))))

    def as_input(self, model, images):
        """uint8 images N×C×H×W of the model's shape as the model sees data (read_input's conversion)."""
        x = images.float().to(model.device)
        if model.info.pixels == "palette":
            return model.pixels.image(model.pixels.values(x / 255))
        return (x >= 128).float() if model.info.pixels == "binary" else (x + 0.5) / 256

    def complete(self, model, value, cover, n, *, output, seed, label):
        """The image with its covered pixels drawn n times: the original, the covered input and the
        completions in a row."""
        from ..explore.completion import completions
        images = completions(model, self.read_input(model, value), cover, n, seed=seed, label=label)
        write_grid(images, output or "completion.png", nrow=len(images))

    def explore(self, model, view, options) -> None:
        from ..explore import latent
        self.refuse_view(model, view)
        if view == "grid":
            images = latent.grid(model, tuple(options["dims"]), options["steps"], options["span"], options.get("label"))
            write_grid(images, options["output"], nrow=options["steps"])
        elif view == "interpolate":
            xa, xb = self.read_input(model, options["a"]), self.read_input(model, options["b"])
            images = latent.interpolate(model, xa, xb, options["steps"], options["method"], options.get("label"))
            write_grid(torch.cat([xa, images, xb]), options.get("output") or "interpolation.png",
                       nrow=options["steps"] + 2)
        else:
            x = self.read_input(model, options["image"])
            images = latent.style(model, x, options.get("label"))
            write_grid(torch.cat([x, images]), options["output"], nrow=len(images) + 1)

    # ---- figures ----
    def baseline_nats(self, model, ds, test):
        """Each pixel on its own: a Bernoulli or N-way histogram per pixel, or for 8-bit densities a Gaussian
        per pixel (the baseline within continuous densities, in the same units as theirs)."""
        from ..evaluation.baselines import independent_gaussian_nll, independent_pixel_nll
        if model.likelihood_kind == "none":
            return None
        if model.info.pixels == "continuous":
            return independent_gaussian_nll(ds.train_x, test)
        return independent_pixel_nll(ds.train_x, test)

    def baseline_name(self, model):
        return ("a Gaussian per pixel (indep. Gauss in genlab eval)" if model.info.pixels == "continuous"
                else "each pixel on its own (indep. px in genlab eval)")

    def likelihood(self, model, run, ds, *, iwae_k, live):
        """The test figures of evaluation/likelihood.py (the trainer's, with the IWAE bound added), the
        independent-pixel baselines and, for a small dynamically binarised test split, the spread of the
        headline figure over a few fixed binarisations (the figures themselves on seed 0's, as always)."""
        from ..evaluation import likelihood as lik
        from ..evaluation.baselines import independent_gaussian_nll, independent_pixel_nll
        from ..progress import Progress

        binarize = run.config["data"]["binarize"]
        test = self.test_batches(ds, binarize, model.device)
        if "translate" in model.abilities:
            return {**lik.likelihood_report(model, test, model.info, iwae_k=0), **self.translation_figures(model, ds)}
        k = iwae_k if model.has_iwae else 0
        spread = binarize == "dynamic" and len(ds.test_x) < lik.SMALL_TEST and model.likelihood_kind != "none"
        passes = lik.BINARISATIONS if spread else 1
        bar = Progress(len(test) * passes, f"eval {run.path}", live=live)
        out = lik.likelihood_report(model, test, model.info, iwae_k=k, progress=bar)
        if spread and out:
            def batches_of_seed(seed):
                return Batches(ds.test_x, ds.test_y, binarize=binarize, batch_size=EVAL_BATCH, shuffle=False,
                               seed=seed, device=model.device)
            out.update(lik.binarisation_spread(model, batches_of_seed, out, iwae_k=k, progress=bar))
        bar.close()
        out["baseline_nll_nats"] = independent_pixel_nll(ds.train_x, test)
        if model.info.pixels == "continuous":
            out["baseline_gaussian_nll_nats"] = independent_gaussian_nll(ds.train_x, test)
        if k > 0:
            out["iwae_k"] = k
        return out

    def translation_figures(self, model, ds) -> dict:
        from ..evaluation.translation import translation_figures
        return translation_figures(model, ds, lambda u8: self.as_input(model, u8))

    def sample_quality(self, metrics, samples, features, device):
        from ..evaluation.quality import SampleQuality
        return SampleQuality(metrics, samples, features, device)

    def describe_run(self, model, run, ds) -> dict:
        binarize = run.config["data"]["binarize"]
        out = {"pixels": f"{binarize} ({model.info.pixels})", "test_images": len(ds.test_x),
               "conditional": model.condition_kind != "none"}
        if isinstance(ds, TwoDomains):
            out.update(test_images_b=len(ds.b.test_x), domains=[ds.a.name, ds.b.name])
        return out

    def format_table(self, results):
        if any("cycle_a_mae" in r for r in results):      # translators
            from ..evaluation.translation import format_table as translation_table
            return translation_table(results)
        from ..evaluation.table import format_table
        return format_table(results)


def pixels_said(binarize: str) -> str:
    """The pixels of a run in words: "8-bit pixels", "binarised pixels (redrawn each epoch)", ..."""
    return {"none": "8-bit pixels", "dynamic": "binarised pixels (redrawn each epoch)",
            "threshold": "pixels binarised at half grey"}.get(binarize, f"{binarize.replace(':', ' of ')} colours")


def write_grid(images: torch.Tensor, output: str, nrow=None, scale=None) -> None:
    print(f"wrote {save_grid(images, output, nrow=nrow, scale=scale)}", file=sys.stdout)
