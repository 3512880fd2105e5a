"""`genlab eval --metrics`: one protocol for every family, one table, figures saved in each run."""
import json
import os
import warnings

import pytest
import torch

from conftest import genlab
from genlab.evaluation.classifier import cache_folder


def test_eval_all_metrics_compares_models_with_the_data_itself(runs, capsys, tmp_path):
    capsys.readouterr()
    assert genlab("eval", runs["vae"], runs["ae"], runs["gmm"], "--metrics", "all", "--iwae-k", "5",
                  "--threads", "2", "--plot", tmp_path / "quality.png") == 0
    table = capsys.readouterr().out
    from PIL import Image
    assert Image.open(tmp_path / "quality.png").size[0] > 1000         # three panels side by side
    assert "FID" in table and "(test images)" in table and "genlab classifier v" in table
    assert "(training images)" in table and "floor" in table
    vae = json.loads((runs["vae"] / "eval.json").read_text())
    ae = json.loads((runs["ae"] / "eval.json").read_text())
    gmm = json.loads((runs["gmm"] / "eval.json").read_text())
    for r in (vae, ae, gmm):
        for key in ("fid", "kid", "kid_std", "precision", "recall", "density", "coverage", "modes_covered",
                    "modes_kl", "inception_score", "memorisation_ratio", "copy_excess", "data_copying_ct", "feature_network",
                    "fid_std", "precision_std", "recall_std", "density_std", "coverage_std", "modes_covered_std",
                    "modes_kl_std", "inception_score_std", "memorisation_ratio_std", "copy_excess_std",
                    "data_floor", "within_floor"):
            assert key in r, key
        assert r["fid_std"] > 0 and r["precision_std"] > 0
        # Default: half the training split, so that the floor is as many training images again.
        assert r["samples"] == 1438 // 2 == r["data_floor"]["samples"]
        assert (runs["vae"].parent / os.path.basename(r["run"]) / "memorisation.png").is_file()
    assert "nelbo_nats" in vae and "nll_bpd" in gmm                       # likelihood in the same figures
    # The held-out test images are the ceiling every model is measured against.
    ref, floor = vae["data_reference"], vae["data_floor"]
    assert ref["fid"] < vae["fid"] and ref["modes_covered"] == 10 and ref["precision"] > 0.8
    # At this n the floor's noise is well below the gap: neither tiny model passes for real data by FID.
    assert floor["fid"] + 2 * floor["fid_std"] < vae["fid"] and "fid" not in vae["within_floor"] + ae["within_floor"]
    # The lecture's point: decoding N(0, I) codes through a plain autoencoder gives poor images; the VAE,
    # trained for exactly that, gives better ones.
    assert vae["fid"] < ae["fid"]
    assert vae["modes_covered"] >= 8
    # gmm models 8-bit pixels: it is judged against 8-bit images, its own data row.
    assert gmm["pixels"].startswith("none") and gmm["data_reference"]["fid"] != ref["fid"]


def test_the_feature_network_is_trained_once_then_cached(runs, capsys):
    assert genlab("eval", runs["cvae"], "--metrics", "fid", "--samples", "100", "--threads", "2") == 0
    cached = sorted(cache_folder().glob("classifier-*digits*.safetensors"))
    assert len(cached) == 1
    meta = json.loads(cached[0].with_suffix(".json").read_text())
    assert meta["test_accuracy"] > 0.9                     # a real classifier of digits, not a random net
    stamp = cached[0].stat().st_mtime_ns
    first = json.loads((runs["cvae"] / "eval.json").read_text())["fid"]
    assert genlab("eval", runs["cvae"], "--metrics", "fid", "--samples", "100", "--threads", "2") == 0
    assert cached[0].stat().st_mtime_ns == stamp           # loaded, not retrained
    r = json.loads((runs["cvae"] / "eval.json").read_text())
    assert r["fid"] == pytest.approx(first, rel=1e-6)      # the same samples and features every time
    assert "nelbo_nats" not in r and r["samples"] == 100   # only what was asked


class Features(torch.nn.Module):
    """A fixed random projection with a class head: any TorchScript network of this shape is accepted."""

    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.proj = torch.nn.Parameter(torch.randn(64, 16, generator=g), requires_grad=False)
        self.head = torch.nn.Parameter(torch.randn(16, 10, generator=g), requires_grad=False)

    def forward(self, x):
        f = x.flatten(1) @ self.proj
        return f, f @ self.head


def test_a_feature_network_of_the_users_own(runs, tmp_path, capsys):
    path = tmp_path / "features.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.script(Features()).save(str(path))
    capsys.readouterr()
    assert genlab("eval", runs["vae"], "--metrics", "fid,prdc,modes,is", "--features", path, "--samples", "200") == 0
    out = capsys.readouterr().out
    assert "TorchScript features.pt" in out and "16-d" in out
    r = json.loads((runs["vae"] / "eval.json").read_text())
    assert r["feature_network"].startswith("TorchScript features.pt") and r["fid"] > 0 and "modes_covered" in r


class Payload:
    """Unpickling this touches a marker file: the proof that a loader ran code from the file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _payload_files(tmp_path, marker):
    """Every format a feature file could come in, each carrying a pickle payload."""
    files = {}
    files["torch.save pickle"] = tmp_path / "pickled.pt"
    torch.save({"net": Payload(marker)}, files["torch.save pickle"])
    files["plain pickle"] = tmp_path / "plain.pkl"
    import pickle
    files["plain pickle"].write_bytes(pickle.dumps(Payload(marker)))
    # A torch.export archive whose pickled parts are replaced by the payload.
    batch = torch.export.Dim("batch")
    exported = tmp_path / "exported.pt2"
    torch.export.save(torch.export.export(Features(), (torch.rand(4, 1, 8, 8),), dynamic_shapes={"x": {0: batch}}),
                      str(exported))
    import zipfile
    evil = tmp_path / "evil.pt2"
    with zipfile.ZipFile(exported) as src, zipfile.ZipFile(evil, "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename.endswith((".pkl", "data.pkl")) or "constants" in item.filename or "weights" in item.filename:
                data = pickle.dumps(Payload(marker))
            dst.writestr(item, data)
    files["exported program with payload"] = evil
    files["exported program"] = exported
    # A TorchScript archive whose data.pkl is the payload.
    script = tmp_path / "script.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.script(Features()).save(str(script))
    evil_script = tmp_path / "evil-script.pt"
    with zipfile.ZipFile(script) as src, zipfile.ZipFile(evil_script, "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename.endswith("data.pkl"):
                data = pickle.dumps(Payload(marker), protocol=2)
            dst.writestr(item, data)
    files["TorchScript with payload"] = evil_script
    return files


def test_no_feature_file_runs_code(runs, tmp_path, capsys):
    marker = tmp_path / "pwned"
    for kind, path in _payload_files(tmp_path, marker).items():
        capsys.readouterr()
        code = genlab("eval", runs["vae"], "--metrics", "fid", "--features", path, "--samples", "50")
        err = capsys.readouterr().err
        assert code == 2, kind
        assert not marker.exists(), f"{kind}: loading the feature file ran its payload"
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, (kind, err)


@pytest.mark.parametrize("argv, words", [
    (["--metrics", "fid,sharpness"], ["--metrics", "sharpness"]),
    (["--metrics", "fid", "--features", "NOFILE"], ["--features", "no such file"]),
    (["--metrics", "fid", "--features", "GARBAGE"], ["not a TorchScript network"]),
    (["--metrics", "fid", "--samples", "0"], ["--samples", "positive"]),
    (["--metrics", "fid", "--plot", "quality.txt"], ["quality.txt", ".png"]),
    (["--plot", "quality.png"], ["--plot needs sample metrics"]),
])
def test_bad_metric_options_are_one_line(runs, tmp_path, capsys, argv, words):
    (tmp_path / "garbage.pt").write_bytes(b"not a network at all")
    argv = [a.replace("NOFILE", str(tmp_path / "none.pt")).replace("GARBAGE", str(tmp_path / "garbage.pt"))
            for a in argv]
    before = (runs["ae"] / "eval.json").read_bytes() if (runs["ae"] / "eval.json").exists() else None
    capsys.readouterr()
    try:
        code = genlab("eval", runs["ae"], *argv)
    except SystemExit as e:      # a usage error, caught by argparse
        code = e.code
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert all(w in err for w in words), err
    after = (runs["ae"] / "eval.json").read_bytes() if (runs["ae"] / "eval.json").exists() else None
    assert before == after


def test_unlabelled_images_need_a_feature_network(tmp_path, capsys):
    from PIL import Image
    import numpy as np
    folder = tmp_path / "imgs"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(40):
        Image.fromarray((rng.random((8, 8)) * 255).astype("uint8")).save(folder / f"{i}.png")
    assert genlab("train", "gmm", "--data", f"folder:{folder}", "--epochs", "2", "--components", "2",
                  "--out", tmp_path / "run", "--samples", "0") == 0
    capsys.readouterr()
    assert genlab("eval", tmp_path / "run", "--metrics", "fid") == 2
    assert "--features" in capsys.readouterr().err
    # Memorisation needs no features: pixels are compared directly.
    assert genlab("eval", tmp_path / "run", "--metrics", "memorisation", "--json") == 0
    r = json.loads(capsys.readouterr().out)
    assert r["memorisation_ratio"] > 0 and "fid" not in r
