"""Sample metrics for a list of runs: one judge (feature network, reference images and the data's own rows:
the test images and the real-versus-real floor) per data set and pixel kind, built on first use and shared
by every run of that data."""
from __future__ import annotations

import time
from pathlib import Path

from ..progress import Progress
from .features import builtin_network, selfsup_network, torchscript_network
from .sample_quality import FEATURE_METRICS, SAMPLE_BATCH, SampleJudge, default_samples, draw_samples, within_floor


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
        out["seconds"]["sampling"] = round(sampling, 2)
        floor = judge.floor_row()
        return {**out, "feature_network": judge.network.name if judge.network else None,
                "data_reference": judge.data_row(), "data_floor": floor, "within_floor": within_floor(out, floor)}
