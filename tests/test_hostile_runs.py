"""Hostile input against a run directory and the image reader, each on real files and real processes:
torn metrics lines, two writers at once, NaN weights, writes that fail (a file-size limit, a path below a
file, a read-only or full file system), 16-bit and odd-mode images, oversized image headers, tiny folders and
file names that are not UTF-8. Every refusal: exit status 2, one line, no traceback, nothing lost."""
import json
import math
import os
import resource
import shutil
import struct
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

import genlab
from conftest import genlab as run_cli
from genlab.data.containers.folder import load_folder
from genlab.data.containers.images import MAX_PIXELS, read_image
from genlab.errors import UserError
from genlab.runs import Run, write_atomic, write_json

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = ["vae", "--hidden", "32", "--latent-dim", "2", "--batch-size", "128", "--samples", "4", "--data", "digits"]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(genlab.__file__).parents[1]),
                                                    os.environ.get("PYTHONPATH", "")])}


# ---- helpers ----------------------------------------------------------------------------------------

def snapshot(root, skip=()):
    """Every file and folder under root (hidden ones too): a file's bytes, None for a folder."""
    return {p.relative_to(root).as_posix(): p.read_bytes() if p.is_file() else None
            for p in sorted(Path(root).rglob("*")) if p.relative_to(root).as_posix() not in skip}


def temporaries(root):
    return sorted(p.name for p in Path(root).rglob(".*.tmp"))


def error_line(code, out, err, *names):
    """The refusal's shape: status 2, no traceback, exactly one `genlab: error:` line (the last one)."""
    assert "Traceback" not in out + err, err
    assert code == 2, err
    errors = [line for line in err.splitlines() if line.startswith("genlab: error:")]
    assert len(errors) == 1 and err.splitlines()[-1] == errors[0], err
    for name in names:
        assert str(name) in errors[0], f"{name!r} not named in: {errors[0]}"
    return errors[0]


def refused(capsys, argv, *names):
    code = run_cli(*argv)
    out, err = capsys.readouterr()
    return error_line(code, out, err, *names)


def cli(*argv, cwd=None, limit_file_size=None, timeout=300):
    """The real `genlab` command in a process of its own, optionally under `ulimit -f`."""
    def limit():
        if limit_file_size is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit_file_size, resource.RLIM_INFINITY))
    return subprocess.run([sys.executable, "-m", "genlab.cli", *map(str, argv)], capture_output=True, text=True,
                          cwd=cwd, env=ENV, timeout=timeout, preexec_fn=limit)


def rows(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny VAE run of 2 epochs, trained once through the command line."""
    out = tmp_path_factory.mktemp("hostile") / "run"
    assert run_cli("train", *TINY, "--epochs", "2", "--out", out) == 0
    return out


@pytest.fixture
def run_copy(trained, tmp_path):
    return Path(shutil.copytree(trained, tmp_path / "run"))


# ---- 1. torn and damaged lines in metrics.jsonl / steps.jsonl ---------------------------------------------

TORN = {"cut mid-row": b'{"epoch": 3, "step": 30, "lo', "zeros after a crash": b"\0" * 37}


@pytest.mark.parametrize("tail", TORN.values(), ids=TORN.keys())
def test_a_torn_last_line_is_dropped_with_one_warning(capsys, run_copy, tail):
    with open(run_copy / "metrics.jsonl", "ab") as f:
        f.write(tail)
    with open(run_copy / "steps.jsonl", "ab") as f:
        f.write(tail.replace(b"epoch", b"step"))
    assert run_cli("eval", run_copy, "--iwae-k", "0", "--json") == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["epochs"] == 2
    warnings = [line for line in err.splitlines() if "cut short" in line]
    assert len(warnings) == 1 and "metrics.jsonl" in warnings[0] and "line 3" in warnings[0], err
    assert "Traceback" not in err

    assert run_cli("train", "--resume", run_copy, "--epochs", "3") == 0
    assert "Traceback" not in capsys.readouterr().err
    for name in ("metrics.jsonl", "steps.jsonl"):          # repaired: whole lines only, none twice
        assert (run_copy / name).read_bytes().endswith(b"\n")
    assert [r["epoch"] for r in rows(run_copy / "metrics.jsonl")] == [1, 2, 3]
    assert [r["step"] for r in rows(run_copy / "steps.jsonl")] == list(range(1, 3 * 12 + 1))


@pytest.mark.parametrize("name, key", [("metrics.jsonl", "epoch"), ("steps.jsonl", "step")])
def test_a_damaged_line_in_the_middle_is_refused(capsys, run_copy, tmp_path, name, key):
    lines = (run_copy / name).read_bytes().split(b"\n")
    lines[0] = b'{"' + key.encode() + b'": 1, "loss": 4' + b"\xff garbage"      # the first of several lines
    (run_copy / name).write_bytes(b"\n".join(lines))
    before = snapshot(tmp_path)
    refused(capsys, ["train", "--resume", run_copy, "--epochs", "3"], run_copy / name, "line 1", "damaged")
    if name == "metrics.jsonl":
        refused(capsys, ["eval", run_copy, "--iwae-k", "0"], run_copy / name, "line 1")
    assert snapshot(tmp_path) == before


def test_appending_after_a_torn_line_never_glues_rows_together(capsys, tmp_path):
    run = Run(tmp_path, {})
    (tmp_path / "metrics.jsonl").write_bytes(b'{"epoch": 1, "loss": 2.0}\n{"epoch": 2, "lo')
    run.append_metrics({"epoch": 2, "loss": 1.5}, [{"step": 1, "epoch": 2}])
    assert rows(tmp_path / "metrics.jsonl") == [{"epoch": 1, "loss": 2.0}, {"epoch": 2, "loss": 1.5}]
    assert rows(tmp_path / "steps.jsonl") == [{"step": 1, "epoch": 2}]
    assert capsys.readouterr().err.count("cut short") == 1


# ---- 2. one writer per run --------------------------------------------------------------------------------

HOLD_LOCK = textwrap.dedent("""
    import sys
    from genlab.runs import Run
    lock = Run(sys.argv[1], {}).lock()
    print("locked", flush=True)
    sys.stdin.read()                       # held until the test closes our stdin or kills us
""")


def hold_lock(path):
    proc = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(path)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, env=ENV, text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_a_run_in_use_by_another_process_is_refused(capsys, run_copy, tmp_path):
    holder = hold_lock(run_copy)
    try:
        before = snapshot(tmp_path)
        line = refused(capsys, ["train", "--resume", run_copy, "--epochs", "3"],
                       str(run_copy), "in use", f"process {holder.pid}")
        assert "config.json" not in line
        assert snapshot(tmp_path) == before
        with pytest.raises(UserError, match=f"process {holder.pid}"):
            Run(run_copy, {}).append_metrics({"epoch": 9})
        assert snapshot(tmp_path) == before
    finally:
        holder.kill()                      # the kernel drops the lock however its holder dies
        holder.wait()
    assert (run_copy / ".lock").read_text().strip() == str(holder.pid)   # a stale file is no stale lock
    assert run_cli("train", "--resume", run_copy, "--epochs", "3") == 0
    assert [r["epoch"] for r in rows(run_copy / "metrics.jsonl")] == [1, 2, 3]


def test_two_resumes_at_once_leave_one_clean_history(run_copy):
    """The second writer is refused at its first write, whichever it is; the history stays whole."""
    procs = [subprocess.Popen([sys.executable, "-m", "genlab.cli", "train", "--resume", str(run_copy), "--epochs", "4"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV) for _ in range(2)]
    results = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
    for code, err in results:
        assert "Traceback" not in err and code in (0, 2), err
        if code == 2:
            assert "in use" in err.splitlines()[-1]
    epochs = [r["epoch"] for r in rows(run_copy / "metrics.jsonl")]
    assert epochs == sorted(set(epochs)) and epochs[-1] == 4, epochs
    steps = [r["step"] for r in rows(run_copy / "steps.jsonl")]
    assert steps == list(range(1, len(steps) + 1))
    assert genlab.load(run_copy).sample(2).shape == (2, 1, 8, 8)


def test_the_lock_api(tmp_path):
    run = Run(tmp_path, {})
    with run.lock() as lock:
        assert lock.held and (tmp_path / ".lock").read_text().strip() == str(os.getpid())
        os.symlink(tmp_path, tmp_path / "alias")
        with Run(tmp_path / "alias", {}).lock():            # re-entrant, by any path to the run
            pass
        assert lock.held
        proc = subprocess.run([sys.executable, "-c", HOLD_LOCK, str(tmp_path)], capture_output=True, text=True,
                              env=ENV, timeout=60)
        assert proc.returncode == 1 and f"process {os.getpid()}" in proc.stderr
    assert not lock.held
    holder = hold_lock(tmp_path)           # released: another process may take it now
    holder.kill()
    holder.wait()
    held = run.lock()                      # no `with`: held until release() or the process ends
    assert held.held
    held.release()
    assert not held.held


def test_a_lock_file_that_is_a_link_is_refused(tmp_path):
    target = tmp_path / "elsewhere.txt"
    target.write_text("precious\n")
    (tmp_path / "run").mkdir()
    os.symlink(target, tmp_path / "run" / ".lock")
    with pytest.raises(UserError, match="symbolic link"):
        Run(tmp_path / "run", {}).lock()
    assert target.read_text() == "precious\n"


# ---- 3. non-finite weights --------------------------------------------------------------------------------

def test_nan_weights_are_never_saved(run_copy):
    before = snapshot(run_copy)
    run = Run.open(run_copy)
    model = run.build_model()
    epoch = run.load_weights(model)
    with torch.no_grad():
        next(iter(model.parameters())).view(-1)[0] = math.nan
    with pytest.raises(UserError, match="NaN or infinite") as e:
        run.save_checkpoint(model, {**run.load_trainer_state(epoch), "epoch": epoch + 1})
    assert "\n" not in str(e.value) and "last good checkpoint is kept" in str(e.value)
    assert snapshot(run_copy) == before


@pytest.mark.parametrize("command", [["sample", "{}", "-o", "s.png"], ["eval", "{}", "--iwae-k", "0"],
                                     ["train", "--resume", "{}", "--epochs", "3"]], ids=lambda c: c[0])
def test_a_checkpoint_holding_inf_is_refused_on_load(capsys, run_copy, tmp_path, monkeypatch, command):
    monkeypatch.chdir(tmp_path)
    weights = run_copy / "model.safetensors"
    state = load_file(str(weights))
    name = sorted(k for k in state if state[k].is_floating_point())[0]
    state[name].view(-1)[0] = math.inf
    from safetensors import safe_open
    with safe_open(str(weights), "pt") as f:
        meta = f.metadata()
    save_file(state, str(weights), metadata=meta)
    before = snapshot(tmp_path)
    refused(capsys, [a.format(run_copy) for a in command], weights, "NaN or infinite", name)
    assert snapshot(tmp_path) == before


def test_a_checkpoint_with_a_hostile_epoch(capsys, run_copy, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    weights = run_copy / "model.safetensors"
    save_file(load_file(str(weights)), str(weights), metadata={"model": "vae", "epoch": "2; rm -rf /"})
    before = snapshot(tmp_path)
    refused(capsys, ["train", "--resume", run_copy, "--epochs", "3"], weights, "epoch", "not a whole number")
    assert snapshot(tmp_path) == before


# ---- 4. writes that fail ----------------------------------------------------------------------------------

CHECKPOINT = ("model.safetensors", "trainer.pt", ".trainer-previous.pt")


def checkpoint(run):
    return {name: (run / name).read_bytes() for name in CHECKPOINT if (run / name).exists()}


def resumes_cleanly(run, epochs=3):
    """A later resume (disk space back) trains on from the kept checkpoint, with a clean history."""
    assert run_cli("train", "--resume", run, "--epochs", epochs) == 0
    assert [r["epoch"] for r in rows(run / "metrics.jsonl")] == list(range(1, epochs + 1))
    assert [r["step"] for r in rows(run / "steps.jsonl")] == list(range(1, epochs * 12 + 1))


def test_a_file_size_limit_while_checkpointing_keeps_the_last_checkpoint(run_copy):
    """`ulimit -f 16` (16 KiB): the history fits, the checkpoint of epoch 3 does not."""
    before = checkpoint(run_copy)
    proc = cli("train", "--resume", run_copy, "--epochs", "3", limit_file_size=16 * 1024)
    error_line(proc.returncode, proc.stdout, proc.stderr, "cannot write", run_copy / "trainer.pt")
    assert checkpoint(run_copy) == before and temporaries(run_copy) == []
    json.loads((run_copy / "config.json").read_text())
    resumes_cleanly(run_copy)


def test_a_file_size_limit_while_rewriting_the_history(run_copy):
    before = snapshot(run_copy, skip={".lock"})
    proc = cli("train", "--resume", run_copy, "--epochs", "3", limit_file_size=1024)
    error_line(proc.returncode, proc.stdout, proc.stderr, "cannot write", "steps.jsonl")
    assert snapshot(run_copy, skip={".lock"}) == before and temporaries(run_copy) == []
    resumes_cleanly(run_copy)


SAVE_UNDER_LIMIT = textwrap.dedent("""
    import resource, sys
    from genlab.errors import UserError
    from genlab.runs import Run
    run = Run.open(sys.argv[1])
    model = run.build_model()
    epoch = run.load_weights(model)
    resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[2]), resource.RLIM_INFINITY))
    try:
        run.save_checkpoint(model, {"epoch": epoch + 1, "step": 0, "optimizers": {}})   # a small trainer state
    except UserError as e:
        print(e)
        sys.exit(2)
""")


def test_a_checkpoint_whose_weights_do_not_fit_changes_nothing(run_copy):
    weights = (run_copy / "model.safetensors").stat().st_size
    before = snapshot(run_copy, skip={".lock"})
    proc = subprocess.run([sys.executable, "-c", SAVE_UNDER_LIMIT, str(run_copy), str(weights // 2)],
                          capture_output=True, text=True, env=ENV, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert "cannot write" in proc.stdout and "model.safetensors" in proc.stdout
    assert snapshot(run_copy, skip={".lock"}) == before and temporaries(run_copy) == []
    assert genlab.load(run_copy).sample(2).shape == (2, 1, 8, 8)


def test_an_append_that_does_not_fit_leaves_both_files_as_they_were(run_copy):
    before = snapshot(run_copy, skip={".lock"})
    script = textwrap.dedent("""
        import resource, sys
        from genlab.errors import UserError
        from genlab.runs import Run
        run = Run.open(sys.argv[1])
        resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[2]), resource.RLIM_INFINITY))
        try:   # the steps fit; the metrics row (padded past the limit) does not
            run.append_metrics({"epoch": 3, "note": "x" * 9000}, [{"step": 25, "epoch": 3}])
        except UserError as e:
            print(e)
            sys.exit(2)
    """)
    limit = max((run_copy / "steps.jsonl").stat().st_size + 200, (run_copy / "metrics.jsonl").stat().st_size + 200)
    proc = subprocess.run([sys.executable, "-c", script, str(run_copy), str(limit)], capture_output=True, text=True,
                          env=ENV, timeout=120)
    assert proc.returncode == 2 and "cannot append to" in proc.stdout and "metrics.jsonl" in proc.stdout, proc
    assert snapshot(run_copy, skip={".lock"}) == before


def test_an_output_below_a_file(capsys, run_copy, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.txt").write_text("a file, not a folder\n")
    before = snapshot(tmp_path)
    refused(capsys, ["sample", run_copy, "-o", tmp_path / "notes.txt" / "s.png"], "notes.txt", "cannot")
    assert snapshot(tmp_path) == before
    with pytest.raises(UserError, match="cannot write .*notes.txt/x.json: Not a directory"):
        write_json(tmp_path / "notes.txt" / "x.json", {"a": 1})
    assert snapshot(tmp_path) == before


def test_write_atomic_removes_its_temporary_file_and_keeps_the_old_one(tmp_path):
    target = tmp_path / "eval.json"
    target.write_text("old\n")

    def half_then_full_disk(p):
        p.write_text("half a fi")
        raise OSError(28, "No space left on device")

    with pytest.raises(UserError, match="cannot write .*eval.json: No space left on device"):
        write_atomic(target, half_then_full_disk)
    assert target.read_text() == "old\n" and temporaries(tmp_path) == []
    with pytest.raises(ZeroDivisionError):             # a bug stays a bug, but leaves no temporary file
        write_atomic(target, lambda p: (p.write_text("x"), 1 / 0))
    assert target.read_text() == "old\n" and temporaries(tmp_path) == []


def test_write_json_never_writes_nan(tmp_path):
    write_json(tmp_path / "x.json", {"fid": math.nan, "kid": [math.inf, 1.5, -math.inf], "n": 3})

    def refuse(name):
        raise ValueError(f"{name} is not JSON")
    assert json.loads((tmp_path / "x.json").read_text(), parse_constant=refuse) == \
        {"fid": None, "kid": [None, 1.5, None], "n": 3}


@pytest.fixture
def tmpfs(tmp_path):
    """A tiny file system of our own (root and a kernel that lets us mount, or the test is skipped)."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)],
                                           capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_a_read_only_file_system(capsys, trained, tmpfs):
    run = Path(shutil.copytree(trained, tmpfs / "run"))
    assert subprocess.run(["mount", "-o", "remount,ro", str(tmpfs)], capture_output=True).returncode == 0
    before = snapshot(tmpfs)
    refused(capsys, ["train", "--resume", run, "--epochs", "3"], run, "Read-only file system")
    assert snapshot(tmpfs) == before
    assert run_cli("sample", run, "-o", tmpfs / "s.png") == 2
    error_line(2, *capsys.readouterr(), "s.png", "Read-only file system")


def test_a_read_only_run_is_evaluated_and_a_read_only_cache_is_one_line(capsys, trained, tmpfs, monkeypatch):
    run = Path(shutil.copytree(trained, tmpfs / "run"))
    (tmpfs / "cache").mkdir()
    assert subprocess.run(["mount", "-o", "remount,ro", str(tmpfs)], capture_output=True).returncode == 0
    before = snapshot(tmpfs)
    # The figures printed, a line saying none is kept; nothing written.
    assert run_cli("eval", run, "--iwae-k", "0") == 0
    out, err = capsys.readouterr()
    assert "nelbo" in out.lower() or "ELBO" in out
    assert "read-only: its figures are printed, not kept" in err and "Traceback" not in err
    # A cache that cannot be written is named before any data set is built into it.
    monkeypatch.setenv("GENLAB_CACHE", str(tmpfs / "cache"))
    refused(capsys, ["data", "fetch", "moving-mnist-32"], "cannot write into the cache", "GENLAB_CACHE")
    assert snapshot(tmpfs) == before


def test_a_full_disk_keeps_the_last_checkpoint(trained, tmpfs):
    run = Path(shutil.copytree(trained, tmpfs / "run"))
    # Fill the file system but for 48 KiB: the history fits, a checkpoint (over 100 KiB) does not.
    st = os.statvfs(tmpfs)
    (tmpfs / "filler").write_bytes(b"\0" * (st.f_bavail * st.f_frsize - 48 * 1024))
    before = checkpoint(run)
    proc = cli("train", "--resume", run, "--epochs", "3")
    error_line(proc.returncode, proc.stdout, proc.stderr, "cannot write", "trainer.pt")
    assert checkpoint(run) == before and temporaries(tmpfs) == []
    (tmpfs / "filler").unlink()
    resumes_cleanly(run)


# ---- 5. images --------------------------------------------------------------------------------------------

def png_header_only(path, width, height, bit_depth=8, colour_type=0):
    """A real PNG whose IHDR claims width×height, with a tiny compressed stream behind it."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n"
                     + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(b"\0" * 4096)) + chunk(b"IEND", b""))
    return path


def test_a_16_bit_png_keeps_its_grey_levels(tmp_path):
    a = np.array([[0, 128 * 257, 65535, 1000]], dtype=np.uint16)
    Image.fromarray(a).save(tmp_path / "g.png")
    assert Image.open(tmp_path / "g.png").mode == "I;16"
    assert read_image(tmp_path / "g.png", 1, (1, 4)).tolist() == [[[0, 128, 255, 4]]]
    assert read_image(tmp_path / "g.png", 3, (1, 4))[:, 0].tolist() == [[0, 128, 255, 4]] * 3
    # a folder of them trains on every grey level, not on 0 and 255
    ramp = (np.arange(64, dtype=np.uint16).reshape(8, 8) * 1040)
    (tmp_path / "f").mkdir()
    for i in range(4):
        Image.fromarray(ramp + i).save(tmp_path / "f" / f"{i}.png")
    ds = load_folder(str(tmp_path / "f"))
    assert ds.shape == (1, 8, 8) and len(torch.cat([ds.train_x, ds.test_x]).unique()) > 32


def _palette_image(transparent):
    im = Image.new("P", (2, 1))
    im.putpalette([10, 20, 30, 200, 100, 50] + [0] * 762)
    im.putpixel((1, 0), 1)
    if transparent:
        im.info["transparency"] = 0
    return im


MODES = {   # mode: (image, suffix, channels, expected C×1×2, tolerance)
    "1": (lambda: Image.frombytes("1", (2, 1), bytes([0b01000000])), ".png", 1, [[[0, 255]]], 0),
    "L": (lambda: Image.frombytes("L", (2, 1), bytes([7, 200])), ".png", 1, [[[7, 200]]], 0),
    "I;16": (lambda: Image.fromarray(np.array([[257, 65535]], dtype=np.uint16)), ".png", 1, [[[1, 255]]], 0),
    "I": (lambda: Image.fromarray(np.array([[257 * 100, 65535]], dtype=np.int32)), ".tif", 1, [[[100, 255]]], 0),
    "P": (lambda: _palette_image(False), ".png", 3, [[[10, 200]], [[20, 100]], [[30, 50]]], 0),
    "P+transparency": (lambda: _palette_image(True), ".png", 3, [[[255, 200]], [[255, 100]], [[255, 50]]], 0),
    "LA": (lambda: Image.frombytes("LA", (2, 1), bytes([0, 0, 100, 255])), ".png", 1, [[[255, 100]]], 0),
    "RGBA": (lambda: Image.frombytes("RGBA", (2, 1), bytes([255, 0, 0, 128, 0, 0, 255, 255])), ".png", 3,
             [[[255, 0]], [[127, 0]], [[127, 255]]], 1),
    "CMYK": (lambda: Image.new("CMYK", (2, 1), (0, 255, 0, 0)), ".jpg", 3, [[[255, 255]], [[0, 0]], [[255, 255]]], 3),
}


@pytest.mark.parametrize("mode", MODES)
def test_every_image_mode_reads_at_the_right_scale(tmp_path, mode):
    make, suffix, channels, expected, tolerance = MODES[mode]
    im = make()
    path = tmp_path / f"x{suffix}"
    im.save(path, **({"transparency": im.info["transparency"]} if "transparency" in im.info else {}))
    got = read_image(path, channels, (1, 2)).int()
    assert (got - torch.tensor(expected)).abs().max() <= tolerance, (mode, got.tolist())


@pytest.mark.parametrize("width, height", [(100_000, 100_000), (5000, 4000)], ids=["bomb", "over 2^24"])
def test_an_oversized_image_is_refused_from_its_header(capsys, tmp_path, width, height):
    assert width * height > MAX_PIXELS
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(3):
        Image.new("L", (8, 8), i * 50).save(folder / f"good{i}.png")
    huge = png_header_only(folder / "huge.png", width, height)
    for size in ([], ["--size", "8"]):        # found by the size check, or when reading
        refused(capsys, ["train", "vae", "--data", f"folder:{folder}", "--out", tmp_path / "out", *size],
                huge, "pixels")
        assert not (tmp_path / "out").exists()
    with pytest.raises(UserError, match="huge.png"):
        read_image(huge, 1, (8, 8))


def test_a_folder_of_one_image_is_refused(capsys, tmp_path):
    folder = tmp_path / "one"
    folder.mkdir()
    Image.new("L", (8, 8), 9).save(folder / "only.png")
    refused(capsys, ["train", "gmm", "--data", f"folder:{folder}", "--out", tmp_path / "out"],
            folder, "only 1 image", "at least 2", "test split")
    assert not (tmp_path / "out").exists()


def test_a_folder_of_two_images_trains_and_evaluates(capsys, tmp_path):
    folder = tmp_path / "two"
    folder.mkdir()
    for i in range(2):
        Image.fromarray(np.random.RandomState(i).randint(0, 256, (8, 8), dtype=np.uint8)).save(folder / f"{i}.png")
    assert run_cli("train", "gmm", "--data", f"folder:{folder}", "--epochs", "1", "--components", "1",
                   "--out", tmp_path / "run", "--samples", "0") == 0
    capsys.readouterr()
    assert run_cli("eval", tmp_path / "run", "--json") == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["test_images"] == 1 and "Traceback" not in err


def test_file_names_that_are_not_utf8(tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(3):
        Image.new("L", (8, 8), 40 * i).save(folder / f"ok{i}.png")
    bad = os.path.join(os.fsencode(folder), b"caf\xe9.png")
    with open(bad, "wb") as f:
        f.write(os.urandom(300))
    proc = cli("train", "vae", "--data", f"folder:{folder}", "--out", tmp_path / "out")
    line = error_line(proc.returncode, proc.stdout, proc.stderr, "cannot read image", "caf\\xe9.png")
    assert "\udce9" not in line
    os.unlink(bad)
    # labelled by sub-folders whose names are not UTF-8: the labels print
    for name in (b"chat\xe9", b"dogs"):
        sub = os.path.join(os.fsencode(folder), name)
        os.mkdir(sub)
        for i in range(2):
            Image.new("L", (8, 8), 100 + i).save(os.fsdecode(os.path.join(sub, f"{i}.png".encode())))
    for f in folder.glob("ok*.png"):
        f.unlink()
    ds = load_folder(str(folder))
    assert ds.class_names == ("chat\\xe9", "dogs")
    " ".join(ds.class_names).encode("utf-8")            # printable anywhere


def test_the_demo_never_empties_a_folder_it_did_not_make(tmp_path, capsys):
    """`genlab demo --out DIR` once deleted DIR/runs with whatever the user had there."""
    out = tmp_path / "mine"
    (out / "runs").mkdir(parents=True)
    (out / "runs" / "precious.txt").write_text("the user's own")
    (out / "notes.md").write_text("also theirs")
    code = run_cli("demo", "--out", out, "--epochs", "1")
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "already exists and is not empty" in err
    assert (out / "runs" / "precious.txt").read_text() == "the user's own"
    assert sorted(p.name for p in out.rglob("*")) == ["notes.md", "precious.txt", "runs"]


# ---- a --config file and config.json's training record checked as a run's own config.json is ------------

def hostile_config(run_copy, tmp_path, change) -> Path:
    cfg = json.loads((run_copy / "config.json").read_text())
    change(cfg)
    out = tmp_path / "c.json"
    out.write_text(json.dumps(cfg))
    return out


def test_a_config_files_absurd_setting_is_refused_before_anything_is_built(capsys, run_copy, tmp_path):
    c = hostile_config(run_copy, tmp_path, lambda cfg: cfg["config"].update(hidden=10**12))
    refused(capsys, ["train", "--config", c, "--out", tmp_path / "new"], "hidden", "--config")
    assert not (tmp_path / "new").exists()


def test_a_config_file_nested_too_deep_is_one_line(capsys, run_copy, tmp_path):
    c = tmp_path / "deep.json"
    c.write_text('{"model": "vae", "x": ' + "[" * 100_000 + "]" * 100_000 + "}")
    refused(capsys, ["train", "--config", c, "--out", tmp_path / "new"], "nested too deep")
    assert not (tmp_path / "new").exists()


def test_an_unknown_training_option_in_config_json_is_refused_and_the_run_unchanged(capsys, run_copy, tmp_path):
    cfg = json.loads((run_copy / "config.json").read_text())
    cfg["train"]["bogus"] = 1
    (run_copy / "config.json").write_text(json.dumps(cfg))
    before = snapshot(run_copy)
    refused(capsys, ["train", "--resume", run_copy, "--epochs", "3"], "'bogus'", "config.json")
    assert snapshot(run_copy) == before
    c = hostile_config(run_copy, tmp_path, lambda cfg: None)
    refused(capsys, ["train", "--config", c, "--out", tmp_path / "new"], "'bogus'", "--config")


# ---- interruptions: Ctrl-C and SIGTERM at any moment end with one line of what was kept --------------------

def interrupted(argv, signum, when, tmp_path):
    """The real command in a process of its own, sent `signum` once `when(out)` holds (or after 0.3 s)."""
    import signal as _signal  # noqa: F401  (the numbers come from the caller)
    import time
    proc = subprocess.Popen([sys.executable, "-m", "genlab.cli", *map(str, argv)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=ENV)
    deadline = time.time() + 120
    while not when() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.01)
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=120)
    return proc.returncode, out, err


@pytest.mark.parametrize("signum", ["SIGINT", "SIGTERM"])
def test_an_interruption_during_start_up_is_one_line(tmp_path, signum):
    import signal
    import time
    start = time.time()
    code, out, err = interrupted(["train", *TINY, "--epochs", "1", "--out", tmp_path / "run"],
                                 getattr(signal, signum), lambda: time.time() - start > 0.3, tmp_path)
    assert "Traceback" not in err and code == 130, err
    assert err.strip().splitlines()[-1] == "genlab: interrupted" or "interrupted:" in err, err


@pytest.mark.parametrize("signum", ["SIGINT", "SIGTERM"])
def test_an_interruption_before_any_checkpoint_says_there_is_none(tmp_path, signum):
    import signal
    out_dir = tmp_path / "run"
    steps = out_dir / "steps.jsonl"
    code, out, err = interrupted(["train", "pixelcnn", "--data", "digits", "--batch-size", "2", "--epochs", "1",
                                  "--samples", "0", "--out", out_dir], getattr(signal, signum),
                                 lambda: steps.is_file() and steps.stat().st_size > 0, tmp_path)
    assert "Traceback" not in err and code == 130, err
    said = [line for line in err.splitlines() if line.startswith("interrupted:")]
    assert len(said) == 1 and "there is no checkpoint" in said[0] and "starts again from the beginning" in said[0], err
    assert "epoch 0 is kept" not in err


def test_a_cache_that_is_a_file_is_one_line(tmp_path):
    (tmp_path / "afile").write_text("not a folder")
    env = {**ENV, "GENLAB_CACHE": str(tmp_path / "afile")}
    for argv in (["data", "fetch", "mnist"], ["train", "vae", "--data", "mnist", "--out", tmp_path / "run"]):
        p = subprocess.run([sys.executable, "-m", "genlab.cli", *map(str, argv)], capture_output=True, text=True,
                           env=env, timeout=300)
        error_line(p.returncode, p.stdout, p.stderr, "GENLAB_CACHE", "is a file")
    assert not (tmp_path / "run").exists() and (tmp_path / "afile").read_text() == "not a folder"


def test_a_resume_that_cannot_write_its_folders_changes_nothing(capsys, run_copy):
    shutil.rmtree(run_copy / "samples")
    (run_copy / "samples").write_text("a file where the samples go")
    before = snapshot(run_copy)
    refused(capsys, ["train", "--resume", run_copy, "--epochs", "3"], "samples", "is a file")
    assert snapshot(run_copy) == before and not temporaries(run_copy)     # config.json's epochs not raised


def test_the_curves_picture_is_written_whole_or_is_one_line(trained, tmp_path):
    from genlab.training.curves import draw_curves
    (tmp_path / "plain").write_text("")
    with pytest.raises(UserError, match="cannot write"):
        draw_curves(trained, tmp_path / "plain" / "curves.png")
    out = draw_curves(trained, tmp_path / "curves.png")
    assert Image.open(out).format == "PNG" and not temporaries(tmp_path)
