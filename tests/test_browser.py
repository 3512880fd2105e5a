"""The explorer and the report in a real browser: headless Chromium (Debian's) driven by Playwright against
a `genlab serve` this module starts, and the report opened from disk. A person's moves: a slider moved, a
class picked, two lines submitted, an image uploaded, painted over and completed pixel by pixel, an image
uploaded and translated there and back, generated sound ready to play, a held-out clip continued, a sound
clip's end covered and completed (and bad uploads refused), a slow request's progress shown while it runs.

Set GENLAB_SCREENSHOTS=DIR to keep a screenshot of each page there."""
import base64
import io
import os
import shutil
import sys
import wave
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from serve_load import launch, tiny_runs  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
try:
    from playwright.sync_api import sync_playwright
except ImportError:                      # the test extra brings it
    sync_playwright = None

pytestmark = [pytest.mark.skipif(CHROMIUM is None, reason="no chromium on this machine (apt-get install chromium)"),
              pytest.mark.skipif(sync_playwright is None, reason="playwright is not installed (pip install -e '.[test]')"),
              pytest.mark.usefixtures("one_thread")]
# Debian's Chromium, headless, with nothing of its own reaching out (no updates, sync or background traffic).
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
SHOTS = os.environ.get("GENLAB_SCREENSHOTS")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    import genlab
    root = tmp_path_factory.mktemp("browsed")
    out = {p.name: p for p in tiny_runs(root, ("vae", "cvae", "pixelcnn", "sentence-vae", "cyclegan", "vpn", "wavenet",
                                               "ddpm"))}
    # A diffusion of 1000 timesteps, so that sampling at 1000 DDIM steps takes seconds: a slow request.
    out["slow-ddpm"] = genlab.train("ddpm", "digits", root / "slow-ddpm", epochs=1, samples=8, threads=1, quiet=True,
                                    channels=8, mults=(1,), timesteps=1000, bound_timesteps=5, sample_steps=10,
                                    batch_size=256).path
    return out


@pytest.fixture(scope="module")
def server(runs):
    with launch(list(runs.values())) as (url, proc):
        yield url


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    p = context.new_page()
    errors = []
    p.on("pageerror", lambda e: errors.append(str(e)))
    yield p
    context.close()
    assert errors == []


def open_run(page, server, model):
    page.goto(server)
    page.click(f"aside button.run:has-text('{model}')")
    page.wait_for_selector("#run-name")
    assert page.inner_text("#run-name") == model


def shot(page, name):
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"{name}.png"), full_page=True)


def src(page, selector):
    return page.get_attribute(selector, "src")


def test_moving_a_slider_changes_the_picture(page, server):
    open_run(page, server, "vae")
    page.wait_for_function("() => document.querySelector('#code-image').src.startsWith('data:image/png')")
    before = src(page, "#code-image")
    slider = page.locator('input[data-dim="0"]')
    slider.focus()
    page.keyboard.press("End")                             # the slider to its far end, as a person would
    assert slider.input_value() == "4"
    page.wait_for_function(f"() => document.querySelector('#code-image').src !== {before!r}")
    page.click("#code-random")
    page.wait_for_selector("#interp-image[src^='data:image/png']")
    shot(page, "explorer-vae")


def test_picking_a_class_redraws_the_samples(page, server):
    open_run(page, server, "cvae")
    page.wait_for_function("() => document.querySelector('#sample-image') && document.querySelector('#sample-image').src")
    before = src(page, "#sample-image")
    page.select_option("#class-pick", "7")
    page.wait_for_function(f"() => document.querySelector('#sample-image').src !== {before!r}")
    shot(page, "explorer-cvae")


def test_a_diffusion_model_gets_a_steps_control_from_its_declaration(page, server):
    # No web code names ddpm or steps: the control comes from the model's declared sampling settings.
    open_run(page, server, "ddpm")
    page.wait_for_function("() => document.querySelector('#sample-image') && document.querySelector('#sample-image').src")
    steps = page.locator("#sample-steps")
    assert steps.get_attribute("type") == "number"
    assert (steps.get_attribute("min"), steps.get_attribute("max")) == ("1", "1000")
    assert "DDIM" in steps.get_attribute("title")
    before = src(page, "#sample-image")
    steps.fill("3")
    page.click("#sample-go")
    page.wait_for_function(f"() => document.querySelector('#sample-image').src !== {before!r}")
    steps.fill("5000")                                      # past the declared bound: one line from the server
    page.click("#sample-go")
    page.wait_for_function("() => document.querySelector('#sample-status').textContent.includes('steps')")
    assert "1000" in page.inner_text("#sample-status").replace(",", "")
    # Its trajectory panel comes from its declared ability: rows of states on their way from noise.
    page.wait_for_function("() => document.querySelector('#trajectory-image') && "
                           "document.querySelector('#trajectory-image').src")
    assert page.locator("#trajectory-steps").get_attribute("max") == "1000"
    shot(page, "explorer-ddpm")


def test_submitting_two_lines_shows_the_lines_between(page, server, runs):
    if "sentence-vae" not in runs:
        pytest.skip("the tang300 corpus (Debian's fortunes-zh) is not installed")
    open_run(page, server, "sentence-vae")
    page.wait_for_function("() => document.querySelector('#sentences-a').value.length > 0")
    page.fill("#sentences-steps", "5")
    page.press("#sentences-b", "Enter")                     # the form submitted from the keyboard
    page.wait_for_function("() => document.querySelectorAll('#sentences-lines li').length === 7")
    assert page.inner_text("#sentences-status") == ""
    shot(page, "explorer-sentence-vae")


def test_uploading_painting_and_completing_an_image(page, server, tmp_path):
    digit = np.zeros((8, 8), np.uint8)
    digit[1:7, 3:5] = 255                                    # a one, to upload
    Image.fromarray(digit).save(tmp_path / "one.png")
    (tmp_path / "not-an-image.png").write_bytes(b"plain text, not a picture")
    open_run(page, server, "pixelcnn")
    page.set_input_files("#complete-upload", str(tmp_path / "not-an-image.png"))
    page.wait_for_function("() => document.querySelector('#complete-status').textContent.includes('cannot be read')")
    page.set_input_files("#complete-upload", str(tmp_path / "one.png"))
    page.wait_for_function("() => document.querySelector('#complete-status').textContent === ''")
    box = page.locator("#complete-canvas").bounding_box()
    cell = box["height"] / 8
    page.mouse.move(box["x"] + 2, box["y"] + 5.5 * cell)     # paint the bottom rows with the mouse
    page.mouse.down()
    for row in (5.5, 6.5, 7.5):
        page.mouse.move(box["x"] + 2, box["y"] + row * cell)
        page.mouse.move(box["x"] + box["width"] - 2, box["y"] + row * cell, steps=12)
    page.mouse.up()
    page.click("#complete-go")
    page.wait_for_function("() => document.querySelector('#complete-image').dataset.done === 'true'", timeout=60_000)
    frames = int(page.get_attribute("#complete-image", "data-frames"))
    assert frames > 1                                        # it appeared step by step
    assert page.evaluate("document.querySelector('#complete-progress').value") == 24     # 3 rows of 8 pixels
    assert page.inner_text("#complete-count") == "24 / 24 pixels"
    shot(page, "explorer-pixelcnn")


def test_uploading_an_image_to_translate_shows_it_its_translation_and_its_reconstruction(page, server, tmp_path):
    picture = np.zeros((16, 16, 3), np.uint8)
    picture[2:14, 6:10] = 255                                # a one, larger than the model's images, in colour
    Image.fromarray(picture).save(tmp_path / "one.png")
    (tmp_path / "notes.png").write_bytes(b"plain text, not a picture")
    open_run(page, server, "cyclegan")
    assert page.locator("#panel-sample").count() == 0        # a translator draws nothing of its own
    ids = ("#translate-input", "#translate-output", "#translate-cycle")
    page.wait_for_function("() => document.querySelector('#translate-cycle').src.startsWith('data:image/png')")
    first = [src(page, i) for i in ids]
    page.set_input_files("#translate-upload", str(tmp_path / "notes.png"))
    page.wait_for_function("() => document.querySelector('#translate-status').textContent.includes('cannot be read')")
    page.select_option("#translate-direction", "b2a")
    page.set_input_files("#translate-upload", str(tmp_path / "one.png"))
    page.wait_for_function("() => document.querySelector('#translate-input-caption').textContent.startsWith('one.png')")
    page.wait_for_function("() => document.querySelector('#translate-status').textContent === ''")
    shown = [src(page, i) for i in ids]
    assert all(s.startswith("data:image/png") for s in shown) and shown[0] != first[0]
    assert page.evaluate("['#translate-input', '#translate-output', '#translate-cycle'].every("
                         "s => document.querySelector(s).naturalWidth === 8)")     # the model's 8×8, enlarged
    assert page.inner_text("#translate-output-caption") == "translation B → A"
    assert page.inner_text("#translate-cycle-caption") == "reconstruction B → A → B"
    shot(page, "explorer-cyclegan")


def test_a_sound_models_samples_are_ready_to_play(page, server):
    open_run(page, server, "wavenet")
    page.wait_for_selector("#sample-clips audio")
    sources = page.eval_on_selector_all("#sample-clips audio", "els => els.map(a => a.src)")
    assert len(sources) == 2 and all(s.startswith(("data:audio/wav;base64,", "blob:")) for s in sources)
    # The browser reads each as sound: 200 samples at 8 kHz.
    durations = page.evaluate("""() => Promise.all(Array.from(document.querySelectorAll('#sample-clips audio')).map(
        a => a.readyState >= 1 ? a.duration : new Promise((ok, fail) => {
          a.addEventListener('loadedmetadata', () => ok(a.duration));
          a.addEventListener('error', () => fail('unplayable'));
          a.load();
        })))""")
    assert durations == [pytest.approx(200 / 8000, abs=1e-3)] * 2
    shot(page, "explorer-wavenet")


def test_continuing_a_held_out_clip(page, server):
    open_run(page, server, "vpn")
    page.wait_for_function("() => document.querySelector('#continue-gif').dataset.frames === '6'")  # 3 given + 3
    slider = page.locator("#continue-context")
    slider.focus()
    page.keyboard.press("ArrowLeft")                         # one frame fewer given
    assert page.inner_text("#continue-context-shown") == "2" and page.input_value("#continue-frames") == "4"
    page.fill("#continue-frames", "2")
    page.click("#continue-go")
    page.wait_for_function("() => document.querySelector('#continue-gif').dataset.frames === '4'")
    assert src(page, "#continue-gif").startswith("data:image/gif")
    assert src(page, "#continue-strip").startswith("data:image/png")
    assert page.inner_text("#continue-status") == "2 frames given, 2 drawn"
    page.wait_for_function("() => document.querySelector('#sample-gif') && document.querySelector('#sample-gif').src")
    shot(page, "explorer-vpn")


def test_the_report_opens_from_disk_with_nothing_fetched(browser, runs, tmp_path):
    from genlab.web.report import write_report
    path = write_report(list(runs.values()), tmp_path / "report.html", threads=1, quiet=True)
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    asked = []
    page.on("request", lambda r: asked.append(r.url))
    page.goto(path.as_uri())
    assert all(u.startswith(("file:", "data:")) for u in asked), asked
    assert page.evaluate("Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)")
    shot(page, "report")
    # Sorting by a column: the run names in order, then reversed.
    names = lambda: page.eval_on_selector_all("#comparison-table tbody tr td:first-child", "tds => tds.map(t => t.textContent)")  # noqa: E731
    page.click("#comparison-table th:first-child")
    assert names() == sorted(names())
    page.click("#comparison-table th:first-child")
    assert names() == sorted(names(), reverse=True)
    # A run in the index opens its section.
    page.click(".index a >> nth=3")         # hashchange fires after the click returns: wait for it, briefly
    page.wait_for_function("document.getElementById('run-3').querySelector('details').open", timeout=10_000)
    context.close()


def wav_samples(url: str) -> np.ndarray:
    """The 16-bit samples of a WAV data URL, as the page received it."""
    assert url.startswith("data:audio/wav;base64,")
    with wave.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 8000)
        return np.frombuffer(w.readframes(w.getnframes()), "<i2")


def write_tone(path, seconds: float, rate: int = 8000):
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((8000 * np.sin(np.arange(int(seconds * rate)) * 2 * np.pi * 300 / rate)).astype("<i2").tobytes())


def test_completing_a_sound_clip_keeps_its_start_and_refuses_bad_uploads(page, server, tmp_path):
    open_run(page, server, "wavenet")
    assert page.locator("#panel-complete_sound").count() == 1        # from the modality's declared panel
    page.select_option("#class-pick", "1")                           # the class picker chooses the class drawn
    page.fill("#complete_sound-cover", "40")                         # the last 40% of test clip 0
    page.fill("#complete_sound-n", "3")
    page.click("#complete_sound-go")
    page.wait_for_selector("#complete_sound-completion-3[src^='data:audio/wav']", timeout=60_000)
    original = wav_samples(src(page, "#complete_sound-original"))
    drawn = [wav_samples(src(page, f"#complete_sound-completion-{i}")) for i in (1, 2, 3)]
    kept = int(page.get_attribute("#complete_sound-clips", "data-kept"))
    assert len(original) == 200 and kept == 120                      # 60% of the 200 samples kept
    for clip in drawn:
        assert len(clip) == 200 and np.array_equal(clip[:kept], original[:kept])     # the kept part, sample for sample
        assert not np.array_equal(clip[kept:], original[kept:])                      # the rest drawn by the model
    assert src(page, "#complete_sound-picture").startswith("data:image/png")
    assert page.inner_text("#complete_sound-status").startswith("the first 0.015 s kept, the last 0.01 s drawn")
    durations = page.evaluate("""() => Promise.all(Array.from(document.querySelectorAll('#complete_sound-clips audio')).map(
        a => a.readyState >= 1 ? a.duration : new Promise((ok, fail) => {
          a.addEventListener('loadedmetadata', () => ok(a.duration));
          a.addEventListener('error', () => fail('unplayable'));
          a.load();
        })))""")
    assert durations == [pytest.approx(200 / 8000, abs=1e-3)] * 4
    shot(page, "explorer-wavenet-completion")

    # Seconds instead of a share; then an upload of the user's own, heard as the model hears it.
    page.select_option("#complete_sound-unit", "seconds")
    assert page.input_value("#complete_sound-cover") == "0.01"       # the same 40% of the 0.025 s clip
    write_tone(tmp_path / "tone.wav", 0.5, rate=16000)
    page.set_input_files("#complete_sound-upload", str(tmp_path / "tone.wav"))
    page.wait_for_function("() => document.querySelector('#complete_sound-original').closest('figure')"
                           ".textContent.startsWith('tone.wav')", timeout=60_000)
    uploaded = wav_samples(src(page, "#complete_sound-original"))
    assert not np.array_equal(uploaded, original) and len(uploaded) == 200
    first = wav_samples(src(page, "#complete_sound-completion-1"))
    assert np.array_equal(first[:120], uploaded[:120])

    # Bad uploads: each one clear line in the page, and the panel goes on.
    (tmp_path / "notes.wav").write_text("plain text, not sound " * 20)
    write_tone(tmp_path / "long.wav", 11.0)                          # past the explorer's 10 s
    for name, words in (("notes.wav", "the upload cannot be read as sound (not a PCM WAV file"),
                        ("long.wav", "the upload lasts 11.0 s: the explorer takes sound of at most 10 s")):
        page.set_input_files("#complete_sound-upload", str(tmp_path / name))
        page.wait_for_function(f"() => document.querySelector('#complete_sound-status').textContent.startsWith({words!r})")
        status = page.locator("#complete_sound-status")
        assert "\n" not in status.inner_text() and "bad" in status.get_attribute("class")
    shot(page, "explorer-wavenet-bad-upload")
    page.click("#complete_sound-go")                                 # a refused upload is not kept: the last good one is
    page.wait_for_function("() => document.querySelector('#complete_sound-status').textContent.startsWith('the first')")
    assert page.inner_text("#complete_sound-clips figcaption >> nth=0") == "tone.wav, as the model hears it"


def test_a_slow_request_shows_its_progress_in_the_page_while_it_runs(page, server):
    # 1000 DDIM steps of a diffusion of 1000 timesteps: seconds on one thread, reported step by step.
    open_run(page, server, "slow-ddpm")
    page.wait_for_function("() => document.querySelector('#sample-image') && document.querySelector('#sample-image').src")
    before = src(page, "#sample-image")
    page.fill("#sample-steps", "1000")
    page.click("#sample-go")
    # Progress appears in the panel before the answer: a bar past its start, the loop named, and the old samples.
    page.wait_for_function(f"""() => {{
        const bar = document.querySelector('#sample-status progress');
        return bar && bar.value > 0 && bar.max === 1000 && document.querySelector('#sample-image').src === {before!r};
    }}""", timeout=60_000)
    said = page.inner_text("#sample-status")
    assert said.startswith("denoising (DDIM steps): ") and " / 1,000 (" in said
    shot(page, "explorer-ddpm-progress")
    page.wait_for_function(f"() => document.querySelector('#sample-image').src !== {before!r}", timeout=120_000)
    assert page.inner_text("#sample-status") == "" and page.locator("#sample-status progress").count() == 0
