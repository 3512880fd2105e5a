"""Images: built-in data sets and folders of the user's files, as binarised, 8-bit or palette pixels."""
from __future__ import annotations

import sys

import torch

from ..data import Batches, availability, dataset_names, fetch_dataset, load_dataset, make_info
from ..data.images import read_image, save_grid
from ..data.loader import transform
from ..data.palette import in_palette, snap
from ..errors import UserError
from .base import Modality

EVAL_BATCH = 256
FOLDER = "folder:"


class ImageModality(Modality):
    name = "image"
    noun = "images"
    verb = "draws images"
    unit = "img"
    data_hint = "digits, mnist, fashion-mnist or folder:PATH"
    data_options = ("size", "binarize")
    sample_options = ("label", "nrow", "steps")
    sample_metrics = True               # FID, precision/recall, modes, memorisation: evaluation/quality.py
    train_sizes = {"digits": 1438, "mnist": 8000, "fashion-mnist": 60000, "pokemon": 665, "pokemon-20": 665,
                   "pokemon-shiny": 665}
    views = ("grid", "interpolate", "style")

    # ---- data ----
    def owns(self, spec: str) -> bool:
        return spec.startswith(FOLDER) or spec in dataset_names()

    def availability(self):
        rows = [(name, ok, why) for name, (ok, why) in availability().items()]
        return rows + [("folder:PATH", None, "any folder of PNG/JPEG/GIF (sub-folders are classes)")]

    def load(self, spec, options):
        self.refuse(options, self.data_options, self.noun)
        return load_dataset(spec, size=options.get("size"))

    def fetch(self, name):
        return fetch_dataset(name)

    def prepare(self, ds, model_cls, config, options):
        binarize = options.get("binarize") or model_cls.default_binarize
        if binarize.startswith("palette") and not model_cls.palette_pixels:
            raise UserError(f"{model_cls.name} cannot model palette pixels: use --binarize dynamic, threshold or "
                            f"none, or an autoregressive model (pixelcnn, gated-pixelcnn, pixelrnn-row, "
                            f"pixelrnn-diag, pixel-lstm)")
        info = make_info(ds, binarize)
        spec = self.absolute(options["spec"], FOLDER)
        record = {"spec": spec, "name": ds.name, "hash": ds.content_hash(), "train": len(ds.train_x),
                  "test": len(ds.test_x), "size": options.get("size"), "binarize": binarize}
        return info, record

    def reload(self, run, warn=True):
        d = run.config["data"]
        ds = load_dataset(d["spec"], size=d.get("size"), channels=d.get("channels"))
        if warn:
            self.warn_changed(run, ds.content_hash(), "data")
        return in_palette(ds, run.info)

    def batches(self, ds, info, record, *, batch_size, seed, device):
        ds = in_palette(ds, info)        # a palette run sees every image in its palette's colours
        train = Batches(ds.train_x, ds.train_y, binarize=record["binarize"], batch_size=batch_size, shuffle=True,
                        seed=seed, device=device)
        return train, self.test_batches(ds, record["binarize"], device)

    @staticmethod
    def test_batches(ds, binarize: str, device) -> Batches:
        # Seed 0 for every run: all runs of one data set are scored on the very same binarised test images.
        return Batches(ds.test_x, ds.test_y, binarize=binarize, batch_size=EVAL_BATCH, shuffle=False, seed=0,
                       device=device)

    def announce(self, model, ds, train, record) -> str:
        return f"{ds.name} ({len(ds.train_x)} images, {record['binarize']} pixels)"

    def describe(self, ds, options, output):
        for k, v in ds.describe().items():
            if k == "classes":
                v = ", ".join(v) if v else "none (unlabelled)"
            print(f"{k:8s} {v}")
        images = ds.train_x[:64]
        if options.get("binarize"):              # the examples as a model with these pixels sees them
            info = make_info(ds, options["binarize"])
            if info.palette:
                print(f"{'palette':8s} {len(info.palette)} colours: "
                      + " ".join("#" + "".join(f"{v:02x}" for v in colour) for colour in info.palette))
            images = transform(snap(images, info), options["binarize"], torch.Generator().manual_seed(0))
        if output:
            write_grid(images, output)

    # ---- what a model writes and reads ----
    def draw(self, model, n, generator, condition=None, steps=None):
        """n images in [0, 1]; `steps` (a diffusion's sampling steps) only for a model whose
        `sample_settings` name it, refused with one line for any other."""
        settings = {k: v for k, v in {"steps": steps}.items() if v is not None}
        for key in settings:
            if key not in model.sample_settings:
                raise UserError(f"--{key} does not apply to {model.name}: only models that sample in steps "
                                f"(ddpm) take it")
        return model.sample(n, condition=condition, generator=generator, **settings)

    def write_samples(self, model, stem, n, generator):
        return save_grid(self.draw(model, n, generator), stem.with_suffix(".png"))

    def sample(self, model, n, options, output, generator):
        self.refuse(options, self.sample_options, f"{model.name}, which {self.verb}")
        condition = model.class_condition(options.get("label"), n)
        write_grid(self.draw(model, n, generator, condition, options.get("steps")), output or "samples.png",
                   options.get("nrow"))

    def read_input(self, model, value):
        """A user's image file as the model sees data: 1×C×H×W, binarised at 0.5, scaled to [0, 1], or in the
        nearest palette colours."""
        c, h, w = model.info.shape
        x = read_image(value, c, (h, w)).unsqueeze(0).float().to(model.device)
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

    def likelihood(self, model, run, ds, *, iwae_k, live):
        """The test figures of evaluation/likelihood.py (the trainer's, with the IWAE bound added), the
        independent-pixel baselines and, for a small dynamically binarised test split, the spread of the
        headline figure over a few fixed binarisations (the figures themselves on seed 0's, as always)."""
        from ..evaluation import likelihood as lik
        from ..evaluation.baselines import independent_gaussian_nll, independent_pixel_nll
        from ..training.progress import Progress

        binarize = run.config["data"]["binarize"]
        test = self.test_batches(ds, binarize, model.device)
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

    def describe_run(self, model, run, ds) -> dict:
        binarize = run.config["data"]["binarize"]
        return {"pixels": f"{binarize} ({model.info.pixels})", "test_images": len(ds.test_x),
                "conditional": model.condition_kind != "none"}

    def format_table(self, results):
        from ..evaluation.table import format_table
        return format_table(results)


def write_grid(images: torch.Tensor, output: str, nrow=None) -> None:
    print(f"wrote {save_grid(images, output, nrow=nrow)}", file=sys.stdout)
