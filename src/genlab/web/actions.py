"""What each request of the explorer does: its values read and bounded (guard.py), the model asked through
views.py, the answer as JSON. ACTIONS maps a request's name to its action; the server runs them off the
event loop, one model at a time."""
from __future__ import annotations

import torch

from .. import modalities
from . import views
from .guard import Refused, choice, number, text, whole

LIMITS = views.LIMITS


def label_of(entry, body: dict) -> int | None:
    k = entry.model.num_conditions
    if not k:
        if body.get("label") is not None:
            raise Refused(400, f"{entry.model.name} is not conditional: it takes no class")
        return None
    return whole(body, "label", 0, k - 1)


def seed_of(body: dict) -> int:
    return whole(body, "seed", 0, LIMITS["seed"], 0)


def steps_of(body: dict) -> int:
    return whole(body, "steps", 2, LIMITS["steps"], 8)


def input_of(entry, value, what: str):
    """An input the page names: {"test": i} (a test example; a translator's of {"domain": "a"} or "b") or
    {"image": data URL} or {"file": data URL} (an upload)."""
    model = entry.model
    if isinstance(value, dict) and "test" in value:
        domain = choice(value, "domain", views.DOMAINS, "a")
        count = len(views.test_examples(model, entry.data(), domain))
        return views.test_input(model, entry.data(), whole(value, "test", 0, count - 1), domain)
    if isinstance(value, dict) and ("image" in value or "file" in value):
        return views.read_upload(model, views.decode_upload(value.get("file", value.get("image"))))
    raise Refused(400, f"{what} must be {{\"test\": N}} or {{\"file\": a data URL}}")


def cover_of(body: dict) -> str:
    """How much of a clip's end to cover, {"fraction": f} (0 < f ≤ 1) or {"seconds": s}, in the words of
    `genlab complete --cover` (75%, 0.5s), which the modality reads."""
    cover = body.get("cover", {"fraction": 0.5})
    if not isinstance(cover, dict) or len(cover) != 1 or not {"fraction", "seconds"} & cover.keys():
        raise Refused(400, 'cover must be {"fraction": a number from 0 to 1} or {"seconds": a number}')
    if "fraction" in cover:
        f = number(cover, "fraction", 0, 1)
        if f <= 0:
            raise Refused(400, "fraction must be more than 0: cover some of the clip's end")
        return f"{100 * f:.6f}%"
    s = number(cover, "seconds", 0, LIMITS["sound_seconds"])
    if s <= 0:
        raise Refused(400, "seconds must be more than 0: cover some of the clip's end")
    return f"{s:.6f}s"


def code_of(entry, value, label, what: str):
    """A code the page names: {"z": [...]} itself, or an image to encode ({"test": i} or {"image": ...})."""
    model = entry.model
    if isinstance(value, dict) and "z" in value:
        return views.code_tensor(model, value["z"])
    if "encode" not in model.abilities:
        raise Refused(400, f"{model.name} cannot encode an image: give {what} as a code {{\"z\": [...]}}")
    x = input_of(entry, value, what)
    return torch.tensor([views.encode(model, x, label)], device=model.device)


# ---- what each request does (run on a worker, under the run's lock) ----

def settings_of(entry, body: dict) -> dict:
    """The declared sampling settings the page sent (views.setting_fields), as plain JSON values within the
    page's caps; their types and bounds are the modality's to check, as for the command line."""
    out = {}
    for f in views.setting_fields(entry.model):
        v = body.get(f["name"])
        if v is None:
            continue
        if not isinstance(v, (str, int, float, bool)):
            raise Refused(400, f"{f['name']} must be a {f['type']}")
        if isinstance(v, str) and len(v) > LIMITS["line_chars"]:
            raise Refused(400, f"{f['name']} is longer than {LIMITS['line_chars']} characters")
        cap = LIMITS["setting_caps"].get(f["name"])
        if cap is not None and isinstance(v, (int, float)) and not isinstance(v, bool) and v > cap:
            raise Refused(400, f"{f['name']} must be at most {cap} in the explorer (genlab sample takes more)")
        out[f["name"]] = v
    return out


def act_sample(entry, body):
    entry.needs("sample")
    n = whole(body, "n", 1, LIMITS[modalities.get(entry.model.modality).page_limit], 16)
    return views.sample(entry.model, n, seed_of(body), label_of(entry, body), settings_of(entry, body))


def act_decode(entry, body):
    entry.needs("code")
    return {"image": views.decode(entry.model, views.code_tensor(entry.model, body.get("z")), label_of(entry, body))}


def act_encode(entry, body):
    entry.needs("interpolate")
    if "encode" not in entry.model.abilities:
        raise Refused(400, f"{entry.model.name} cannot encode an image")
    label = label_of(entry, body)
    return {"z": views.encode(entry.model, input_of(entry, body.get("input"), "input"), label)}


def act_interpolate(entry, body):
    entry.needs("interpolate")
    label = label_of(entry, body)
    za, zb = code_of(entry, body.get("a"), label, "a"), code_of(entry, body.get("b"), label, "b")
    method = choice(body, "method", ("linear", "slerp"), "linear")
    return {"image": views.between_codes(entry.model, za, zb, steps_of(body), label, method)}


def act_sentences(entry, body):
    entry.needs("sentences")
    a, b = text(body, "a", LIMITS["line_chars"]), text(body, "b", LIMITS["line_chars"])
    return {"lines": views.between_lines(entry.model, a, b, steps_of(body))}


def act_input(entry, body):
    """An input as the model sees it ({"test": i} or an upload), and how many test examples there are (of its
    domain, for a translator's)."""
    value = input_of(entry, body.get("input"), "input")
    shown = {"line": value} if isinstance(value, str) else {"image": views.image_url(value)}
    domain = body["input"].get("domain", "a") if "test" in body["input"] else "a"
    return {"count": len(views.test_examples(entry.model, entry.data(), domain)), **shown}


def act_translate(entry, body):
    """A test image of domain A or B, or an upload, translated in the direction asked and back."""
    entry.needs("translate")
    direction = choice(body, "direction", tuple(views.BACK), "a2b")
    value = body.get("input")
    x = input_of(entry, value, "input")
    domain = value.get("domain", "a") if "test" in value else None
    count = len(views.test_examples(entry.model, entry.data(), domain or direction[0]))
    return {**views.translation(entry.model, x, direction), "count": count}


def act_continue(entry, body):
    """Held-out clip {"test": i}: its first `context` frames given, `frames` drawn by the model."""
    entry.needs("continue")
    info = entry.model.info
    count = views.clip_count(entry.model, entry.data())
    clip = whole(body, "test", 0, count - 1, 0)
    context = whole(body, "context", 1, info.frames - 1, info.context)
    frames = whole(body, "frames", 1, LIMITS["clip_frames"], min(info.frames - context, LIMITS["clip_frames"]))
    return views.continuation(entry.model, entry.data(), clip, context, frames, seed_of(body))


def act_complete_sound(entry, body):
    """A held-out clip {"test": i} or an upload {"file": data URL} with its end covered (cover_of) and drawn
    `n` times, in the class picked."""
    entry.needs("complete_sound")
    n = whole(body, "n", 1, LIMITS["clips"], 2)
    cover, seed, label = cover_of(body), seed_of(body), label_of(entry, body)
    x = input_of(entry, body.get("input", {"test": 0}), "input")
    count = len(views.test_examples(entry.model, entry.data()))
    return {**views.completion(entry.model, x, cover, n, seed, label), "count": count}


def act_trajectory(entry, body):
    """n samples on their way from noise, `frames` states each, with the run's declared sampling settings."""
    entry.needs("trajectory")
    n = whole(body, "n", 1, LIMITS["trajectories"], 4)
    frames = whole(body, "frames", 2, LIMITS["trajectory_frames"], 8)
    steps = settings_of(entry, body).get("steps")
    return {"image": views.trajectory(entry.model, n, frames, seed_of(body), steps)}


ACTIONS = {"sample": act_sample, "trajectory": act_trajectory, "decode": act_decode, "encode": act_encode, "interpolate": act_interpolate,
           "sentences": act_sentences, "input": act_input, "translate": act_translate, "continue": act_continue,
           "complete_sound": act_complete_sound}
