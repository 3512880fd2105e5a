"""Sound data: μ-law against its formula, WAV files read and written (and bad ones refused with one line),
folders of the user's clips, the Info saved in config.json, batches, the two baselines checked by brute
force, and the built-in data sets' builders on a few clips (when espeak-ng and fluidsynth are here)."""
import math
import shutil
import wave

import numpy as np
import pytest
import torch

from genlab.cli import main
from genlab.data.containers import audio
from genlab.data.containers.audio import AudioInfo, mulaw_decode, mulaw_encode
from genlab.data.containers.audio_files import load_folder, read_wav, write_wav
from genlab.data.containers.info import info_from_json
from genlab.data.sources import notes, spoken_digits
from genlab.errors import UserError
from genlab.modalities.audio import cover_samples, histogram_nll, linear_prediction_nll

pytestmark = pytest.mark.usefixtures("one_thread")


def tone(hz, n, rate=8000, amp=0.5, phase=0.0):
    return amp * np.sin(2 * np.pi * hz * np.arange(n) / rate + phase)


def write_raw(path, data: bytes, channels=1, width=2, rate=8000):
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(data)


# ---- μ-law ------------------------------------------------------------------------------------------

def test_mulaw_follows_its_formula_and_round_trips_every_code():
    x = torch.linspace(-1, 1, 10001, dtype=torch.float64)
    y = np.sign(x.numpy()) * np.log1p(255 * np.abs(x.numpy())) / np.log(256)      # G.711's F(x), μ = 255
    expected = np.floor((y + 1) / 2 * 255 + 0.5)
    assert np.array_equal(mulaw_encode(x).numpy(), expected)
    codes = torch.arange(256)
    values = mulaw_decode(codes, torch.float64)
    assert torch.equal(mulaw_encode(values), codes)
    assert bool((values.diff() > 0).all()) and abs(values[0] + 1) < 1e-12 and abs(values[-1] - 1) < 1e-12
    assert int(mulaw_encode(torch.zeros(1))) == 128
    # finer steps near silence than near full scale
    assert float(values[129] - values[128]) < float(values[255] - values[254]) / 100


# ---- WAV files ----------------------------------------------------------------------------------------

def test_a_wav_file_round_trips_to_16_bits(tmp_path):
    x = tone(440, 800)
    write_wav(tmp_path / "a.wav", x)
    back, rate = read_wav(tmp_path / "a.wav")
    assert rate == 8000 and back.shape == (800,)
    assert np.abs(back - x).max() <= 1 / 32768 + 1e-7


@pytest.mark.parametrize("width", [1, 3, 4])
def test_8_24_and_32_bit_and_stereo_files_are_read(tmp_path, width):
    x = tone(300, 400)
    if width == 1:
        raw = np.rint(x * 127 + 128).astype(np.uint8).tobytes()
    elif width == 3:
        v = np.rint(x * (2**23 - 1)).astype(np.int64) & 0xFFFFFF
        raw = np.stack([v & 0xFF, (v >> 8) & 0xFF, v >> 16], 1).astype(np.uint8).tobytes()
    else:
        raw = np.rint(x * (2**31 - 1)).astype("<i4").tobytes()
    write_raw(tmp_path / "m.wav", raw, width=width)
    back, _ = read_wav(tmp_path / "m.wav")
    assert np.abs(back - x).max() < 1.5 / 2 ** (8 * width - 1) + 1e-6
    # stereo: the channels averaged
    left, right = tone(300, 400), tone(300, 400, phase=1.0)
    write_raw(tmp_path / "s.wav", np.rint(np.stack([left, right], 1) * 32767).astype("<i2").tobytes(), channels=2)
    mono, _ = read_wav(tmp_path / "s.wav")
    assert np.abs(mono - (left + right) / 2).max() < 1e-4


def test_a_folder_resamples_cuts_and_pads(tmp_path):
    write_wav(tmp_path / "a.wav", tone(440, 16000, rate=16000), rate=16000)        # 1 s at 16 kHz
    write_wav(tmp_path / "b.wav", tone(440, 2000), rate=8000)                      # 0.25 s
    write_wav(tmp_path / "c.wav", tone(220, 12000), rate=8000)                     # 1.5 s
    ds = load_folder(str(tmp_path), length=4000)
    x = torch.cat([ds.train_x, ds.test_x]).float() / 32768
    assert x.shape == (3, 4000) and len(ds.test_x) == 1 and ds.labels == {}
    assert ds.notes == {"clips cut to length": 2}
    peaks = {int(np.argmax(np.abs(np.fft.rfft(c[:2000].numpy())))) * 8000 / 2000 for c in x}
    assert peaks == {440.0, 220.0}                      # the 16 kHz file kept its pitch at 8 kHz
    padded = [c for c in x if float(c[2100:].abs().max()) == 0]
    assert len(padded) == 1                             # the short one, padded with silence


def test_sub_folders_are_classes(tmp_path):
    for k in range(10):
        (tmp_path / ("low" if k % 2 else "high")).mkdir(exist_ok=True)
        write_wav(tmp_path / ("low" if k % 2 else "high") / f"{k}.wav", tone(200 if k % 2 else 900, 300))
    ds = load_folder(str(tmp_path), length=256)
    lab = ds.labels["folder"]
    assert lab.names == ("high", "low") and len(ds.train_x) == 9 and len(ds.test_x) == 1
    ys = torch.cat([lab.train, lab.test])
    assert sorted(ys.tolist()) == [0] * 5 + [1] * 5
    assert ds.content_hash() == load_folder(str(tmp_path), length=256).content_hash()


@pytest.mark.parametrize("bad, match", [
    (b"this is not a wave file at all, just text", "not a PCM WAV"),
    (b"RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x03\x00\x01\x00\x40\x1f\x00\x00\x00\x7d\x00\x00\x04\x00"
     b"\x20\x00data\x00\x00\x00\x00", "PCM"),                                             # 32-bit float
    (b"RIFF", "damaged or truncated|not a PCM WAV"),
])
def test_a_bad_wav_file_is_one_line_naming_it(tmp_path, bad, match):
    (tmp_path / "bad.wav").write_bytes(bad)
    with pytest.raises(UserError, match=match) as e:
        read_wav(tmp_path / "bad.wav")
    assert "bad.wav" in str(e.value) and "\n" not in str(e.value)


def test_a_truncated_or_empty_wav_is_refused(tmp_path):
    write_wav(tmp_path / "t.wav", tone(440, 1000))
    data = (tmp_path / "t.wav").read_bytes()
    (tmp_path / "t.wav").write_bytes(data[:-500])
    with pytest.raises(UserError, match="truncated"):
        read_wav(tmp_path / "t.wav")
    write_raw(tmp_path / "e.wav", b"")
    with pytest.raises(UserError, match="no samples"):
        read_wav(tmp_path / "e.wav")


def test_folder_problems_are_one_line(tmp_path, capsys):
    write_wav(tmp_path / "a.wav", tone(440, 100))
    with pytest.raises(UserError, match="at least 2"):
        load_folder(str(tmp_path))
    write_wav(tmp_path / "b.wav", tone(440, 100))
    (tmp_path / "song.mp3").write_bytes(b"ID3")
    with pytest.raises(UserError, match="song.mp3 is not a WAV file"):
        load_folder(str(tmp_path))
    (tmp_path / "song.mp3").unlink()
    (tmp_path / "c").mkdir()
    write_wav(tmp_path / "c" / "x.wav", tone(440, 100))
    with pytest.raises(UserError, match="both in sub-folders and at its top level"):
        load_folder(str(tmp_path))
    (tmp_path / "bad.wav").write_text("no")
    assert main(["data", f"audio:{tmp_path / 'c'}"]) == 2
    assert main(["data", f"audio:{tmp_path}", "--size", "3"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("genlab: error: ") for line in err)


def test_genlab_data_describes_a_folder_and_writes_its_examples(tmp_path, capsys):
    for k in range(4):
        write_wav(tmp_path / f"{k}.wav", tone(300 + 100 * k, 500))
    out = tmp_path / "ex.wav"
    assert main(["data", f"audio:{tmp_path}", "--size", "400", "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "400 samples at 8000 Hz" in text and "3 train / 1 test" in text
    x, rate = read_wav(out)
    assert rate == 8000 and len(x) == 3 * 400 + 2 * 4000            # three clips, half a second apart
    assert out.with_suffix(".png").read_bytes()[:4] == b"\x89PNG"


# ---- the Info, the batches -----------------------------------------------------------------------------

def test_audio_info_round_trips_and_a_damaged_one_is_one_line():
    info = AudioInfo(length=4000, num_classes=2, class_names=("a", "b"), label="word")
    assert info_from_json(info.to_json()) == info
    assert info.likelihood_dims == 4000 and info.seconds == 0.5
    for bad in ({"length": -3}, {"num_classes": 3}, {"levels": 16}, {"rate": "fast"}):
        with pytest.raises(UserError, match="damaged"):
            info_from_json({**info.to_json(), **bad})


def test_batches_cover_the_split_once_in_a_new_order_each_epoch():
    codes = torch.arange(50, dtype=torch.uint8)[:, None].repeat(1, 8)
    labels = torch.arange(50) % 3
    b = audio.AudioBatches(codes, labels, batch_size=16, shuffle=True, seed=1)
    orders = [torch.cat([batch.x[:, 0] for batch in b.epoch(e)]) for e in (0, 1, 0)]
    assert sorted(orders[0].tolist()) == list(range(50)) and len(b) == 4 and b.num_images() == 50
    assert not torch.equal(orders[0], orders[1]) and torch.equal(orders[0], orders[2])
    batch = next(iter(b.epoch(0)))
    assert batch.x.dtype == torch.long and torch.equal(batch.condition, batch.x[:, 0] % 3)


# ---- baselines ------------------------------------------------------------------------------------------

def test_histogram_baseline_is_the_brute_force_one():
    train = torch.randint(100, 140, (5, 30), dtype=torch.uint8)
    test = torch.randint(90, 150, (3, 30), dtype=torch.uint8)
    counts = [1 + int((train == k).sum()) for k in range(256)]
    total = sum(counts)
    expected = [-sum(math.log(counts[int(v)] / total) for v in row) for row in test]
    assert torch.allclose(histogram_nll(train, test), torch.tensor(expected, dtype=torch.float64))


def test_linear_prediction_normalises_and_predicts_a_tone():
    rng = np.random.RandomState(0)
    clips = [mulaw_encode(torch.from_numpy(tone(hz, 400, phase=rng.rand() * 6))) for hz in (200, 330, 500, 700)] * 3
    train = torch.stack(clips).to(torch.uint8)
    # every code at the second position after a given first one: probabilities sum to one
    first = torch.full((256, 1), 140, dtype=torch.uint8)
    every = torch.cat([first, torch.arange(256, dtype=torch.uint8)[:, None]], 1)
    lp_first = -float(linear_prediction_nll(train, first)[0])
    total = torch.logsumexp(-linear_prediction_nll(train, every) - lp_first, 0)
    assert abs(float(total)) < 1e-9
    # and on tones it is far better than each sample on its own
    test = torch.stack([mulaw_encode(torch.from_numpy(tone(400, 400, phase=1.0)))]).to(torch.uint8)
    assert float(linear_prediction_nll(train, test)[0]) < 0.6 * float(histogram_nll(train, test)[0])


def test_cover_specs():
    assert cover_samples("bottom-half", 101) == 51 and cover_samples("25%", 400) == 100
    assert cover_samples("0.5s", 8000) == 4000 and cover_samples("9s", 8000) == 8000
    for bad in ("0%", "half", "-1s", "101%"):
        with pytest.raises(UserError, match="--cover"):
            cover_samples(bad, 100)


# ---- the built-in data sets' builders ---------------------------------------------------------------------

@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
def test_spoken_digits_voices_and_one_spoken_word():
    voices = spoken_digits.voices()
    assert len(voices) == len(set(voices)) == 48
    assert {v.split("+")[0] for v in voices[-10:]} <= set(spoken_digits.ACCENTS)
    x = spoken_digits.speak(voices[0], "seven", 175, 50)
    assert 0.2 < len(x) / 8000 < 1.0 and abs(np.abs(x).max() - spoken_digits.PEAK) < 1e-6
    assert np.abs(x[:40]).max() < 0.1                  # leading silence trimmed to ~10 ms, no more


@pytest.mark.skipif(shutil.which("fluidsynth") is None or not notes.SOUNDFONT.is_file(),
                    reason="fluidsynth and fluid-soundfont-gm are not installed")
def test_notes_sound_at_their_pitch(tmp_path):
    clips = notes.render([(73, 60), (73, 72), (40, 69)], tmp_path)        # flute C4 and C5, violin A4
    assert all(c.shape == (8000,) for c in clips)
    for clip, hz in zip(clips, (261.63, 523.25, 440.0)):
        spectrum = np.abs(np.fft.rfft(clip[400:4400] * np.hanning(4000)))
        low = int(0.8 * hz / 2)                        # below the fundamental (in bins of 2 Hz)
        peak = (low + int(np.argmax(spectrum[low:]))) * 2
        assert abs(peak - hz) / hz < 0.03 or abs(peak / 2 - hz) / hz < 0.03, (peak, hz)


def test_split_by_group_keeps_groups_apart():
    groups = ["a", "b", "c", "a", "b", "c", "d"]
    train, test = audio.split_by_group(groups, {"b", "d"})
    assert test.tolist() == [1, 4, 6] and train.tolist() == [0, 2, 3, 5]
    assert {groups[i] for i in train}.isdisjoint(groups[i] for i in test)
