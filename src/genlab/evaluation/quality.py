"""Sample metrics for a list of runs: one judge (feature network, reference images and the data's own rows:
the test images and the real-versus-real floor) per data set and pixel kind, built on first use and shared
by every run of that data."""
from __future__ import annotations

import time
from pathlib import Path

from ..progress import Progress
from .features import builtin_network, selfsup_network, torchscript_network
from .sample_quality import (FEATURE_METRICS, SAMPLE_BATCH, SampleJudge, _subset, bootstrap_indices, default_samples,
                             draw_samples, within_floor)


SELFSUP = "selfsup"      # --features selfsup: genlab's self-supervised network, on labelled data too


class SampleQuality:
    def __init__(self, metrics, samples: int | None, features: str | None, device):
        self.metrics, self.samples, self.features, self.device = metrics, samples, features, device
        self.judges = {}

    def judge(self, data_hash: str, ds, binarize: str, live) -> SampleJudge:
        key = (data_hash, binarize)
        if key not in self.judges:
            metrics = [m for m in self.metrics if m != "likelihood"]
            network = None
            bar = lambda total, label: Progress(total, label, unit="img", live=live)  # noqa: E731
            if self.features and self.features != SELFSUP:
                network = torchscript_network(self.features, ds.shape, self.device)
            elif FEATURE_METRICS & set(metrics):
                # Data without labels (or --features selfsup): features learnt from the images alone.
                # Learnt from the images as they are (not a palette run's snapped copy): one network for every
                # run of the data, whatever its pixels.
                source = ds.extra.get("original", ds)
                network = (selfsup_network(source, self.device, bar) if self.features == SELFSUP or ds.num_classes < 2
                           else builtin_network(source, self.device, bar))
            n = self.samples or default_samples(ds)
            self.judges[key] = SampleJudge(ds, binarize, n, metrics, network, self.device)
        return self.judges[key]

    def report(self, model, run_path: Path, data_hash: str, ds, binarize: str, live) -> dict:
        judge = self.judge(data_hash, ds, binarize, live)
        bar = Progress(-(-judge.n // SAMPLE_BATCH), f"sample {run_path}", live=live)
        t = time.perf_counter()
        images = draw_samples(model, judge.n, binary=model.info.pixels == "binary", progress=bar)
        bar.close()
        sampling = time.perf_counter() - t
        out = judge.judge(images, memorise_picture=Path(run_path) / "memorisation.png")
        if "mixing" in self.metrics:        # a chain's own figures: how it moves between the data's modes
            if "chain" in model.abilities:
                from .mixing import chain_mixing
                out.update(chain_mixing(model, judge.network, binary=model.info.pixels == "binary"))
            else:
                out.setdefault("skipped", {})["mixing"] = f"{model.name} draws independent samples, not a chain"
        if "classes" in self.metrics and model.condition_kind != "none":   # (all asks every run; none has it)
            self._classes(model, ds, judge, out)
        out["seconds"]["sampling"] = round(sampling, 2)
        floor = judge.floor_row()
        return {**out, "feature_network": judge.network.name if judge.network else None,
                "data_reference": judge.data_row(), "data_floor": floor, "within_floor": within_floor(out, floor)}

    @staticmethod
    def _classes(model, ds, judge: SampleJudge, out: dict) -> None:
        """The class agreement into `out` (or why not, into its skipped), and the classifier's reading of the
        held-out images (the figure's ceiling) into the data's own row."""
        from .class_agreement import MAX_SAMPLES, class_figures, real_agreement
        if judge.ref_probs is None or ds.test_y is None:
            figures = {"skipped": {"classes": "the feature network gives no class probabilities"
                                   if ds.test_y is not None else "the data have no class labels"}}
        else:
            figures = class_figures(model, ds, judge.network, bootstrap_indices, min(judge.n, MAX_SAMPLES),
                                    binary=model.info.pixels == "binary")
        if "skipped" in figures:
            out.setdefault("skipped", {}).update(figures.pop("skipped"))
        out.update(figures)
        ref = judge.data_row()
        if "class_agreement" in figures and "class_agreement" not in ref:
            idx = _subset(len(ds.test_x), judge.n, 1)
            ref["class_agreement"] = real_agreement(judge.network, judge.test,
                                                    ds.test_y if idx is None else ds.test_y[idx])
