"""`genlab serve`: the explorer's server, started as a user starts it (its own process, port 0) on tiny runs
trained here (images, text, two domains of images, sound, video), asked over HTTP on 127.0.0.1: what each
model offers comes from its declarations, answers agree with the model computed here (a translation there
and back, a clip continued as `genlab sample` continues it, sound as playable WAV), every bound holds, no
path leads outside the runs, the page stays responsive while a model works, and a short load leaves no
failure and flat memory."""
import base64
import http.client
import io
import json
import os
import socket
import sys
import threading
import time
import wave
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import genlab
from genlab import modalities
from genlab.cli import main
from genlab.data.sources.corpora import corpus_availability
from genlab.explore.completion import completions
from genlab.runs import Run
from genlab.web import views
from genlab.web.guard import Refused, run_file

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from serve_load import events, launch, request, run_load, tiny_runs  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return {p.name: p for p in tiny_runs(tmp_path_factory.mktemp("served"))}


@pytest.fixture(scope="module")
def server(runs):
    with launch(list(runs.values())) as (url, proc):
        listing = json.loads(request(url, "GET", "/api/runs")[1])
        keys = {r["model"]: r["key"] for r in listing["runs"]}
        yield {"url": url, "proc": proc, "keys": keys, "listing": listing}


def post(server, model, action, body, **kw):
    status, payload, _ = request(server["url"], "POST", f"/api/run/{server['keys'][model]}/{action}", body, **kw)
    return status, (json.loads(payload) if payload[:1] == b"{" else payload)


def png_array(url: str) -> np.ndarray:
    assert url.startswith("data:image/png;base64,")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))))


def png_url(array: np.ndarray) -> str:
    out = io.BytesIO()
    Image.fromarray(array).save(out, format="PNG")
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode()


def raw_get(url: str, path: str, host: str | None = None):
    """A GET with the path sent exactly as written (no client normalises it)."""
    h, port = url[len("http://"):].rstrip("/").rsplit(":", 1)
    conn = http.client.HTTPConnection(h, int(port), timeout=30)
    try:
        conn.putrequest("GET", path, skip_host=host is not None)
        if host is not None:
            conn.putheader("Host", host)
        conn.endheaders()
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def test_it_listens_on_loopback_and_says_so(server):
    banner = server["proc"].banner
    assert server["url"].startswith("http://127.0.0.1:") and "listening on 127.0.0.1" in banner
    assert "this machine only" in banner
    # A page elsewhere that renames itself to reach the loopback server is refused.
    status, _ = raw_get(server["url"], "/api/runs", host="attacker.example")
    assert status == 400
    assert raw_get(server["url"], "/api/runs", host="localhost")[0] == 200


def test_the_page_is_one_static_file_that_fetches_nothing_from_outside(server):
    status, page, _ = request(server["url"], "GET", "/")
    text = page.decode()
    assert status == 200 and "<script>" in text
    assert "http://" not in text and "https://" not in text and "src=" not in text.split("<script>")[0]


def test_each_model_gets_the_panels_its_declarations_give(server):
    panels = {r["model"]: r["panels"] for r in server["listing"]["runs"]}
    assert panels["vae"] == ["sample", "code", "interpolate"]
    assert panels["cvae"] == ["class", "sample", "code", "interpolate"]
    assert panels["gan"] == ["sample", "code", "interpolate"]
    assert panels["pixelcnn"] == ["sample", "complete"]
    assert panels["cyclegan"] == ["translate"]          # it draws nothing without an image: no sample panel
    assert panels["vpn"] == ["sample", "continue"]
    assert panels["wavenet"] == ["class", "sample", "complete_sound"]
    assert panels["ddpm"] == ["sample", "trajectory"]
    if "sentence-vae" in panels:
        assert panels["sentence-vae"] == ["sample", "sentences"]
    runs = {r["model"]: r for r in server["listing"]["runs"]}
    assert runs["vpn"]["clip"] == {"frames": 6, "context": 3, "draw": 6}
    assert runs["cyclegan"]["domains"] == ["digits", "digits"]
    assert runs["wavenet"]["files"] == ["samples/epoch-0001.png", "samples/epoch-0001.wav", "curves.png"]


def test_panels_follow_declarations_not_names():
    class Declared:          # any model with these declarations, whatever it is called
        name, modality, abilities, condition_kind = "new-kind", "image", ("complete", "decode"), "class"
    assert views.panels(Declared()) == ["class", "sample", "code", "interpolate", "complete"]
    Declared.modality, Declared.abilities, Declared.condition_kind = "text", ("encode", "decode"), "none"
    assert views.panels(Declared()) == ["sample", "sentences"]
    Declared.modality, Declared.abilities, Declared.condition_kind = "image", ("translate",), "image"
    assert views.panels(Declared()) == ["translate"]
    Declared.abilities = ("translate", "decode")        # conditioned on an image: still no sample of its own
    assert views.panels(Declared()) == ["code", "interpolate", "translate"]
    Declared.modality, Declared.abilities, Declared.condition_kind = "video", (), "none"
    assert views.panels(Declared()) == ["sample", "continue"]
    Declared.modality, Declared.abilities = "audio", ("complete",)
    assert views.panels(Declared()) == ["sample", "complete_sound"]


def test_a_decoded_code_is_the_models_own_decoding(server, runs):
    model = genlab.load(runs["vae"])
    z = [0.5, -1.25, 2.0, 0.0]
    status, body = post(server, "vae", "decode", {"z": z})
    assert status == 200
    expected = (model.decode(torch.tensor([z])).clamp(0, 1) * 255).round().to(torch.uint8)[0, 0].numpy()
    assert np.array_equal(png_array(body["image"]), expected)
    other = post(server, "vae", "decode", {"z": [3.0, -1.25, 2.0, 0.0]})[1]
    assert not np.array_equal(png_array(other["image"]), expected)        # the slider moved, the picture too


def test_a_class_changes_what_a_conditional_model_draws(server):
    a = png_array(post(server, "cvae", "sample", {"n": 8, "seed": 3, "label": 1})[1]["image"])
    b = png_array(post(server, "cvae", "sample", {"n": 8, "seed": 3, "label": 1})[1]["image"])
    c = png_array(post(server, "cvae", "sample", {"n": 8, "seed": 3, "label": 7})[1]["image"])
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_interpolation_between_codes_and_between_images(server):
    status, body = post(server, "gan", "interpolate", {"a": {"z": [0] * 8}, "b": {"z": [1] * 8}, "steps": 5})
    assert status == 200 and png_array(body["image"]).shape[1] == 5 * (8 + 1) + 1
    status, body = post(server, "vae", "interpolate", {"a": {"test": 0}, "b": {"test": 1}, "steps": 4})
    assert status == 200
    upload = png_url((np.arange(64).reshape(8, 8) * 4).astype(np.uint8))
    status, body = post(server, "vae", "interpolate", {"a": {"image": upload}, "b": {"test": 1}, "steps": 3})
    assert status == 200
    # A GAN has no encoder: an image as an end is refused with a reason, not tried.
    status, body = post(server, "gan", "interpolate", {"a": {"test": 0}, "b": {"z": [0] * 8}})
    assert status == 400 and "cannot encode" in body["error"]


def test_every_bound_is_checked(server):
    bad = [("vae", "decode", {"z": [0, 0, 0]}), ("vae", "decode", {"z": [0, 0, 0, 4.5]}),
           ("vae", "decode", {"z": [0, 0, 0, float("nan")]}), ("vae", "decode", {"z": "0,0,0,0"}),
           ("vae", "sample", {"n": 0}), ("vae", "sample", {"n": 10**9}), ("vae", "sample", {"n": 2.5}),
           ("vae", "sample", {"seed": -1}), ("vae", "sample", {"label": 1}), ("cvae", "sample", {"label": 10}),
           ("cvae", "sample", {"label": True}), ("vae", "interpolate", {"a": {"test": 0}, "b": {"test": 1}, "steps": 1}),
           ("vae", "interpolate", {"a": {"test": 0}, "b": {"test": 10**6}}),
           ("vae", "interpolate", {"a": {"test": 0}, "b": {"test": 1}, "steps": 1000}),
           ("vae", "interpolate", {"a": {"path": "/etc/passwd"}, "b": {"test": 1}}),
           ("pixelcnn", "decode", {"z": [0]}), ("vae", "complete", {"input": {"test": 0}, "mask": "bottom-half"}),
           ("pixelcnn", "complete", {"input": {"test": 0}, "mask": "01"}),
           ("pixelcnn", "complete", {"input": {"test": 0}, "mask": "0" * 64})]
    if "sentence-vae" in server["keys"]:
        bad += [("sentence-vae", "sample", {"temperature": 0}), ("sentence-vae", "sentences", {"a": "", "b": "x"}),
                ("sentence-vae", "sentences", {"a": "x" * 10_000, "b": "y"})]
    for model, action, body in bad:
        status, answer = post(server, model, action, body)
        assert status == 400 and isinstance(answer, dict) and answer["error"], (model, action, body, answer)
    assert request(server["url"], "POST", "/api/run/99/sample", {})[0] == 404
    assert request(server["url"], "POST", "/api/run/0/no-such-action", {})[0] == 404


def test_an_upload_that_is_not_an_image_or_too_large_is_refused_and_the_server_goes_on(server):
    status, body = post(server, "vae", "encode", {"input": {"image": "data:image/png;base64,"
                                                            + base64.b64encode(b"not an image at all").decode()}})
    assert status == 400 and "cannot be read as images" in body["error"]
    wav = b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(30)
    status, body = post(server, "vae", "encode", {"input": {"image": base64.b64encode(wav).decode()}})
    assert status == 400 and "cannot be read as images" in body["error"]
    # A PNG whose header claims 100,000 × 100,000 pixels: refused from its header, never decoded.
    bomb = io.BytesIO()
    Image.new("L", (1, 1)).save(bomb, format="PNG")
    data = bytearray(bomb.getvalue())
    data[16:24] = (100_000).to_bytes(4, "big") * 2
    status, body = post(server, "vae", "encode", {"input": {"image": base64.b64encode(bytes(data)).decode()}})
    assert status == 400 and "error" in body
    big = base64.b64encode(os.urandom(3 * 1024 * 1024)).decode()
    status, body = post(server, "vae", "encode", {"input": {"image": big}})
    assert status == 413 and "larger than" in body["error"]
    status, body = post(server, "vae", "encode", {"input": {"image": "data:image/png;base64,@@@"}})
    assert status == 400
    status, body = post(server, "vae", "encode", {"input": {"image": png_url(np.zeros((20, 30, 3), np.uint8))}})
    assert status == 200 and len(body["z"]) == 4          # any size and colour is read as the model's input
    assert request(server["url"], "GET", "/api/runs")[0] == 200


def test_bodies_must_be_small_json_objects(server):
    url = server["url"]
    status, payload, _ = request(url, "POST", "/api/run/0/sample", None, headers={"Content-Type": "text/plain"})
    assert status == 415
    h, port = url[len("http://"):].rstrip("/").rsplit(":", 1)
    for body, headers, expected in [(b"[1, 2]", {}, 400), (b"{not json", {}, 400),
                                    (b"{}", {"Content-Length": str(10**8)}, 413)]:
        conn = http.client.HTTPConnection(h, int(port), timeout=30)
        conn.putrequest("POST", "/api/run/0/sample")
        conn.putheader("Content-Type", "application/json")
        conn.putheader("Content-Length", headers.get("Content-Length", str(len(body))))
        conn.endheaders()
        conn.send(body)
        r = conn.getresponse()
        assert r.status == expected, body
        conn.close()


def test_no_request_reaches_a_path_outside_the_runs(server, runs, tmp_path_factory):
    url, key = server["url"], server["keys"]["vae"]
    run = runs["vae"]
    secret = tmp_path_factory.mktemp("outside") / "secret.png"
    secret.write_bytes(b"\x89PNG secret outside the run")
    (run / "leak.png").symlink_to(secret)                  # a link inside the run to a file outside it
    (run / "linked").symlink_to(secret.parent, target_is_directory=True)
    before = {p: p.stat().st_mtime_ns for p in run.rglob("*") if p.is_file() and not p.is_symlink()}
    assert raw_get(url, f"/files/{key}/curves.png")[1][:4] == b"\x89PNG"
    attempts = ["/files/{k}/../../../../etc/passwd", "/files/{k}/..%2f..%2f..%2fetc%2fpasswd",
                "/files/{k}/%2e%2e/%2e%2e/%2e%2e/etc/passwd", "/files/{k}/%252e%252e/config.json",
                "/files/{k}//etc/passwd", "/files/{k}/%2Fetc%2Fpasswd", "/files/{k}/..\\..\\config.json",
                "/files/{k}/leak.png", "/files/{k}/linked/secret.png", "/files/{k}/model.safetensors",
                "/files/{k}/trainer.pt", "/files/{k}/.lock", "/files/{k}/samples/../../vae/curves.png",
                "/files/..%2f{k}/curves.png", "/files/%2e%2e/curves.png", "/files/{k}/curves.png%00.txt",
                "/files/{k}/C:%5cwindows%5cwin.ini"]
    for attempt in attempts:
        status, payload = raw_get(url, attempt.format(k=key))
        assert status in (400, 404), attempt
        assert b"root:" not in payload and b"secret" not in payload, attempt
    for relative in ["../config.json", "/etc/passwd", "leak.png", "linked/secret.png", "samples/../config.json",
                     "a\\b.png", "x\x00.png"]:
        with pytest.raises(Refused):
            run_file(run, relative)
    after = {p: p.stat().st_mtime_ns for p in run.rglob("*") if p.is_file() and not p.is_symlink()}
    assert after == before                                 # nothing in the run was written either
    (run / "leak.png").unlink()
    (run / "linked").unlink()


def test_completion_streams_frames_that_end_in_the_models_completion(server, runs):
    status, payload, _ = request(server["url"], "POST", f"/api/run/{server['keys']['pixelcnn']}/complete",
                                 {"input": {"test": 3}, "mask": "bottom-half", "seed": 5})
    assert status == 200
    evs = events(payload)
    frames = [e for e in evs if "image" in e]
    assert evs[-1] == {"end": True} and len(frames) > 4
    assert [e["done"] for e in frames] == sorted(e["done"] for e in frames) and frames[-1]["done"] == 32
    model = genlab.load(runs["pixelcnn"])
    run = Run.open(runs["pixelcnn"])
    x = views.test_input(model, modalities.of_run(run).reload(run, warn=False), 3)
    expected = (completions(model, x, "bottom-half", 1, seed=5)[2, 0] * 255).round().to(torch.uint8).numpy()
    final = png_array(frames[-1]["image"])
    assert np.array_equal(final, expected)
    # Every frame agrees with the last wherever it has drawn: the picture grows, it does not flicker.
    for e in frames:
        drawn = np.zeros(64, bool)
        drawn[:32 + e["done"]] = True
        assert np.array_equal(png_array(e["image"]).reshape(-1)[drawn], final.reshape(-1)[drawn])


def u8(images: torch.Tensor) -> np.ndarray:
    """One image (1×C×H×W in [0, 1]) as the 8-bit picture the page is sent (grey: H×W)."""
    a = (images[0].clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    return a[..., 0] if a.shape[2] == 1 else a


def test_a_translation_there_and_back_is_the_models_own(server, runs):
    model = genlab.load(runs["cyclegan"])
    run = Run.open(runs["cyclegan"])
    ds = modalities.of_run(run).reload(run, warn=False)
    image = modalities.get("image")
    cases = [({"test": 3}, "a2b", ds.a.test_x[3:4]),                  # (input, direction, its pixels)
             ({"test": 5, "domain": "b"}, "b2a", ds.b.test_x[5:6]),
             ({"test": 5, "domain": "b"}, "a2b", ds.b.test_x[5:6])]     # any direction from any domain
    for value, direction, pixels in cases:
        status, body = post(server, "cyclegan", "translate", {"input": value, "direction": direction})
        assert status == 200 and body["direction"] == direction and body["count"] == len(ds.a.test_x)
        x = image.as_input(model, pixels)                # the test image as the model sees data, computed here
        there = model.translate(x, direction)
        back = model.translate(there, "b2a" if direction == "a2b" else "a2b")
        assert np.array_equal(png_array(body["input"]), u8(x))
        assert np.array_equal(png_array(body["translation"]), u8(there))
        assert np.array_equal(png_array(body["reconstruction"]), u8(back))
    # An upload of any size is read as `genlab translate --image` reads a file: the same translation.
    picture = (np.arange(12 * 10 * 3).reshape(12, 10, 3) * 7 % 256).astype(np.uint8)
    status, body = post(server, "cyclegan", "translate", {"input": {"image": png_url(picture)}, "direction": "b2a"})
    assert status == 200
    x = image.read_input(model, io.BytesIO(base64.b64decode(png_url(picture).split(",", 1)[1])))
    assert np.array_equal(png_array(body["translation"]), u8(model.translate(x, "b2a")))
    assert np.array_equal(png_array(body["reconstruction"]), u8(model.translate(model.translate(x, "b2a"), "a2b")))


def test_a_translator_refuses_a_bad_direction_a_non_image_and_sampling_with_one_line(server):
    wav_bytes = b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(30)
    bad = [({"input": {"test": 0}, "direction": "a2c"}, "direction must be one of a2b, b2a"),
           ({"input": {"image": "data:image/png;base64," + base64.b64encode(b"not an image").decode()}},
            "cannot be read as images"),
           ({"input": {"image": base64.b64encode(wav_bytes).decode()}, "direction": "b2a"}, "cannot be read as images"),
           ({"input": {"test": 0, "domain": "c"}}, "domain must be one of a, b"),
           ({"input": {"test": 10**6, "domain": "b"}}, "test must be from 0 to"),
           ({"input": {"path": "/etc/passwd"}}, "input must be")]
    for body, why in bad:
        status, answer = post(server, "cyclegan", "translate", body)
        assert status == 400 and why in answer["error"] and "\n" not in answer["error"], (body, answer)
    status, answer = post(server, "cyclegan", "sample", {"n": 4})
    assert status == 400 and answer["error"] == "cyclegan has no sample panel (it has translate)"
    status, answer = post(server, "vae", "translate", {"input": {"test": 0}})
    assert status == 400 and "no translate panel" in answer["error"]
    status, answer = post(server, "vae", "input", {"input": {"test": 0, "domain": "b"}})
    assert status == 400 and "domain b is a translator's" in answer["error"]


def gif_frames(url: str) -> list[np.ndarray]:
    assert url.startswith("data:image/gif;base64,")
    with Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))) as im:
        out = []
        for i in range(im.n_frames):
            im.seek(i)
            out.append((np.asarray(im.convert("RGB")), im.info["duration"]))
        return out


def test_a_held_out_clip_continues_as_genlab_sample_continues_it(server, runs, tmp_path):
    status, body = post(server, "vpn", "continue", {"test": 0, "context": 2, "frames": 3, "seed": 7})
    assert status == 200 and body["frames"] == 5 and body["context"] == 2 and body["count"] == 1
    frames = gif_frames(body["gif"])
    assert len(frames) == 5 and sum(ms for _, ms in frames) == 5 * 200          # 2 given + 3 drawn, 5 a second
    assert png_array(body["image"]).ndim == 2                                    # the strip: one palette picture
    # The very clip `genlab sample` writes for the first test clip, the same frames and seed.
    out = tmp_path / "clip.gif"
    assert main(["sample", str(runs["vpn"]), "-n", "1", "--context", "2", "--frames", "3", "--seed", "7",
                 "-o", str(out), "--threads", "1"]) == 0
    written = gif_frames("data:image/gif;base64," + base64.b64encode(out.read_bytes()).decode())
    assert all(np.array_equal(a, b) for (a, _), (b, _) in zip(frames, written)) and len(written) == 5
    assert np.array_equal(png_array(body["image"]), np.asarray(Image.open(out.with_suffix(".png"))))
    # Defaults: the data's context, the rest of the clip.
    status, body = post(server, "vpn", "continue", {})
    assert status == 200 and body["context"] == 3 and len(gif_frames(body["gif"])) == 6
    # Clips drawn from nothing come the same way: frames of the length asked for.
    status, body = post(server, "vpn", "sample", {"n": 2, "frames": 4, "seed": 1})
    assert status == 200 and len(gif_frames(body["gif"])) == 4 and body["frames"] == 4
    for bad in ({"test": 1}, {"test": -1}, {"context": 0}, {"context": 6}, {"frames": 0},
                {"frames": views.LIMITS["clip_frames"] + 1}, {"frames": 2.5}, {"seed": -1}):
        status, answer = post(server, "vpn", "continue", bad)
        assert status == 400 and answer["error"], bad
    for bad in ({"n": views.LIMITS["clips"] + 1}, {"frames": 10**6}, {"label": 1}):
        assert post(server, "vpn", "sample", bad)[0] == 400, bad
    assert post(server, "vpn", "input", {"input": {"test": 0}})[0] == 400
    assert post(server, "vae", "continue", {})[0] == 400


def test_a_sound_models_samples_are_playable_wav(server, runs):
    model = genlab.load(runs["wavenet"])
    status, body = post(server, "wavenet", "sample", {"n": 3, "seed": 4, "label": 1})
    assert status == 200 and len(body["audio"]) == 3
    drawn = modalities.get("audio").draw(model, 3, torch.Generator().manual_seed(4), model.class_condition(1, 3))
    for url, clip in zip(body["audio"], drawn):
        assert url.startswith("data:audio/wav;base64,")
        data = base64.b64decode(url.split(",", 1)[1])
        assert data[:4] == b"RIFF" and data[8:16] == b"WAVEfmt "
        with wave.open(io.BytesIO(data)) as w:
            assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, model.info.rate) == (1, 2, 8000)
            pcm = np.frombuffer(w.readframes(w.getnframes()), "<i2")
        assert len(pcm) == model.info.length == 200
        assert np.abs(pcm - clip.numpy() * 32767).max() <= 0.5 + 1e-3       # the model's own clip, to the level
    assert post(server, "wavenet", "sample", {"n": views.LIMITS["clips"] + 1})[0] == 400
    assert post(server, "wavenet", "sample", {"label": 2})[0] == 400


def wav_pcm(url: str) -> np.ndarray:
    assert url.startswith("data:audio/wav;base64,")
    with wave.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))) as w:
        return np.frombuffer(w.readframes(w.getnframes()), "<i2")


def wav_url(seconds: float, rate: int = 8000) -> str:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((3000 * np.sin(np.arange(int(seconds * rate)) / 5)).astype("<i2").tobytes())
    return "data:audio/wav;base64," + base64.b64encode(out.getvalue()).decode()


def test_a_sound_clips_completion_is_the_models_own_and_every_bound_holds(server, runs):
    status, body = post(server, "wavenet", "complete_sound", {"input": {"test": 0}, "cover": {"fraction": 0.25},
                                                              "n": 2, "seed": 4, "label": 1})
    assert status == 200 and body["kept"] == 150 and body["count"] == 1 and len(body["completions"]) == 2
    assert body["picture"].startswith("data:image/png;base64,")
    model, audio = genlab.load(runs["wavenet"]), modalities.get("audio")
    x = audio.page_input(model, audio.reload(Run.open(runs["wavenet"]), warn=False), 0)
    start, clips = audio.completions(model, x, "25%", 2, torch.Generator().manual_seed(4), model.class_condition(1, 2))
    assert start == 150
    for url, clip in zip([body["original"], *body["completions"]], clips):
        assert np.abs(wav_pcm(url) - clip.numpy() * 32767).max() <= 0.5 + 1e-3       # the model's own, to the level
    # Seconds instead of a share, and an upload of the user's own, heard as the model hears it.
    status, body = post(server, "wavenet", "complete_sound", {"input": {"file": wav_url(0.1)}, "cover": {"seconds": 0.005},
                                                              "label": 0})
    assert status == 200 and body["kept"] == 160 and len(body["completions"]) == 2
    bad = [({"n": 0}, "n must be"), ({"n": views.LIMITS["clips"] + 1}, "n must be"), ({"cover": {"fraction": 0}}, "more than 0"),
           ({"cover": {"fraction": 1.5}}, "fraction must be"), ({"cover": {"seconds": 11}}, "seconds must be"),
           ({"cover": "50%"}, "cover must be"), ({"cover": {"fraction": 0.5, "seconds": 1}}, "cover must be"),
           ({"label": 2}, "label must be"), ({"input": {"test": 1}}, "test must be"),
           ({"input": {"file": "data:audio/wav;base64," + base64.b64encode(b"not sound " * 20).decode()}},
            "the upload cannot be read as sound (not a PCM WAV file"),
           ({"input": {"file": wav_url(10.5)}}, "the upload lasts 10.5 s: the explorer takes sound of at most 10 s")]
    for extra, words in bad:
        status, answer = post(server, "wavenet", "complete_sound", {"label": 0, **extra})
        assert status == 400 and words in answer["error"], (extra, answer)
    assert post(server, "pixelcnn", "complete_sound", {})[0] == 400          # an image model has no such panel


def test_a_requests_progress_is_asked_by_its_ticket(server):
    url = server["url"]
    assert json.loads(request(url, "GET", "/api/progress/no-such-ticket")[1]) == {"state": "none"}
    assert request(url, "GET", "/api/progress/bad")[0] == 404
    status, payload, _ = request(url, "POST", f"/api/run/{server['keys']['vae']}/sample", {"n": 2},
                                 headers={"X-Genlab-Ticket": "no good"})
    assert status == 400 and "x-genlab-ticket" in json.loads(payload)["error"]
    status, _, _ = request(url, "POST", f"/api/run/{server['keys']['vae']}/sample", {"n": 2},
                           headers={"X-Genlab-Ticket": "a-good-ticket"})
    assert status == 200 and json.loads(request(url, "GET", "/api/progress/a-good-ticket")[1]) == {"state": "none"}


def test_the_page_stays_responsive_while_a_model_works(server):
    url, key = server["url"], server["keys"]["pixelcnn"]
    h, port = url[len("http://"):].rstrip("/").rsplit(":", 1)
    conn = http.client.HTTPConnection(h, int(port), timeout=60)
    conn.request("POST", f"/api/run/{key}/complete", body=json.dumps({"input": {"test": 1}, "mask": "100%", "seed": 1}),
                 headers={"Content-Type": "application/json"})
    stream = conn.getresponse()
    assert stream.status == 200
    arrivals, started = [], threading.Event()

    def read():                                # each event of the stream, and when it came
        for line in stream:
            if line.startswith(b"data: "):
                arrivals.append((time.perf_counter(), json.loads(line[6:])))
                started.set()

    reader = threading.Thread(target=read)
    reader.start()
    assert started.wait(30)                    # the first frame is out: the model is at work on the next ones
    status, _, took = request(url, "GET", "/api/runs")
    answered_at = time.perf_counter()
    reader.join(60)
    conn.close()
    assert status == 200 and took < 1.0
    assert arrivals[-1][1] == {"end": True} and len(arrivals) > 8
    # Frames kept coming after the answer: it was given while the model was busy, not after it.
    assert sum(at > answered_at for at, e in arrivals if "image" in e) >= 1


@pytest.mark.skipif(not corpus_availability()["tang300"][0],
                    reason="the tang300 corpus (Debian's fortunes-zh) is not installed")
def test_lines_between_two_lines_match_the_command_line(server, runs, capsys):
    a = post(server, "sentence-vae", "input", {"input": {"test": 0}})[1]["line"]
    b = post(server, "sentence-vae", "input", {"input": {"test": 1}})[1]["line"]
    status, body = post(server, "sentence-vae", "sentences", {"a": a, "b": b, "steps": 5})
    assert status == 200 and len(body["lines"]) == 5
    model = genlab.load(runs["sentence-vae"])
    capsys.readouterr()
    modalities.get("text").explore(model, "interpolate", {"a": a, "b": b, "steps": 5, "method": "linear"})
    assert capsys.readouterr().out.splitlines() == body["lines"]


def test_a_short_load_of_every_kind_fails_nothing_and_keeps_memory_flat(server):
    out = run_load(server["url"], server["proc"].pid, clients=4, seconds=20, requests=60)
    assert out["failures"] == [] and out["requests"] >= 20
    assert out["rss_mib_end"] - out["rss_mib_after_warmup"] < 40, out
    print(f"{out['requests_per_s']:.1f} requests/s, p95 {out['p95_s'] * 1e3:.0f} ms")


def test_bad_command_lines_are_one_line(runs, tmp_path, capsys):
    assert main(["serve", str(tmp_path / "nothing")]) == 2
    assert "not a run directory" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        main(["serve", str(runs["vae"]), "--port", "70000"])
    assert exit_.value.code == 2 and "--port must be at most 65,535" in capsys.readouterr().err
    assert main(["serve", str(runs["vae"]), "--host", "no.such.host.invalid"]) == 2
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        assert main(["serve", str(runs["vae"]), "--port", str(taken.getsockname()[1])]) == 2
    assert "cannot listen" in capsys.readouterr().err


def test_a_stalled_body_is_dropped_within_seconds_and_others_are_served_meanwhile(server):
    from genlab.web.guard import BODY_SECONDS
    url, key = server["url"], server["keys"]["vae"]
    h, port = url[len("http://"):].rstrip("/").rsplit(":", 1)
    stalled = []
    for _ in range(3):                        # slow clients: 1,000 bytes announced, 10 sent, then nothing
        s = socket.create_connection((h, int(port)), timeout=BODY_SECONDS + 20)
        s.sendall(f"POST /api/run/{key}/sample HTTP/1.1\r\nHost: {h}:{port}\r\nContent-Type: application/json\r\n"
                  f"Content-Length: 1000\r\n\r\n{{\"n\": 1, \"".encode())
        stalled.append((s, time.perf_counter()))
    status, _, took = request(url, "GET", "/api/runs")           # the others are served meanwhile
    assert status == 200 and took < 2.0
    for s, sent in stalled:
        answer = b""
        while b"\r\n\r\n" not in answer:
            part = s.recv(4096)
            if not part:
                break
            answer += part
        waited = time.perf_counter() - sent
        s.close()
        assert answer.startswith(b"HTTP/1.1 408"), answer[:80]
        assert waited < BODY_SECONDS + 10, waited


def test_a_denoising_trajectory_ends_in_the_sample_the_model_draws(server, runs):
    status, body = post(server, "ddpm", "trajectory", {"n": 2, "seed": 1, "steps": 5, "frames": 4})
    assert status == 200, body
    grid = png_array(body["image"])
    model = genlab.load(runs["ddpm"])
    drawn = model.sample(2, generator=torch.Generator().manual_seed(1), steps=5)
    cell = model.info.shape[-1]
    # two rows of four states, one pixel between cells: the last of each row is the sample itself
    assert grid.shape[:2] == (2 * cell + 3, 4 * cell + 5)
    for r in range(2):
        last = grid[1 + r * (cell + 1):1 + r * (cell + 1) + cell, 1 + 3 * (cell + 1):1 + 3 * (cell + 1) + cell]
        want = (drawn[r, 0] * 255).round().to(torch.uint8).numpy()
        assert np.abs(last.astype(int) - want.astype(int)).max() <= 1
    status, body = post(server, "ddpm", "trajectory", {"n": 2, "steps": 5000})
    assert status == 400 and "steps" in body["error"]
    status, body = post(server, "vae", "trajectory", {"n": 2})
    assert status == 400 and "trajectory" in body["error"]
