"""Settings declared once: a dataclass of fields made with `option(...)`, each with its meaning, type,
choices and bounds. A model's Config is one (`genlab train MODEL --help`); so are the sampling settings a
model or a modality declares (`genlab sample RUN --help`, `genlab.sample(run, n, **settings)` and the
explorer's controls). Every value, typed on a command line, sent by the page or passed in Python, is
checked here, and a bad one is one line."""
from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any

from .errors import UserError

MAX_SETTING = 10**8     # no size, step count or weight of any model is near this: a larger one is a damaged file


def option(default: Any, help: str, choices: tuple | None = None, low: float | None = None,
           high: float | None = None, flag: str | None = None):
    """A field with its meaning (shown by --help) and its valid values: one of `choices`, or from `low` to
    `high`. `flag`: its command-line spelling where that is not --NAME (a class label's --class)."""
    return dataclasses.field(default=default, metadata={"help": help, "choices": choices, "low": low,
                                                        "high": high, "flag": flag})


def field_type(settings_cls: type, f: dataclasses.Field):
    """A field's type, with Optional[...] (a default of None: "the run's own") unwrapped."""
    t = typing.get_type_hints(settings_cls).get(f.name, str)
    if typing.get_origin(t) in (typing.Union, types.UnionType):
        t = next(a for a in typing.get_args(t) if a is not type(None))
    return t


def flag_of(f: dataclasses.Field) -> str:
    return f.metadata.get("flag") or "--" + f.name.replace("_", "-")


def _bounds_text(low, high) -> str:
    return f"from {low:g} to {high:,g}" if low is not None else f"at most {high:,g}"


def parse_value(settings_cls: type, key: str, text: str, name: str | None = None) -> Any:
    """One field's value from text, checked against its type, choices and bounds. `name` is what the
    message calls it (a flag such as --steps; default the key)."""
    fields = {f.name: f for f in dataclasses.fields(settings_cls)}
    if key not in fields:
        raise UserError(f"unknown setting {key!r}; this model has: {', '.join(fields)}")
    f = fields[key]
    name = name or key
    t = field_type(settings_cls, f)
    try:
        if t is bool:
            low = text.strip().lower()
            if low not in ("1", "0", "true", "false", "yes", "no"):
                raise ValueError
            value = low in ("1", "true", "yes")
        elif t in (int, float):
            value = t(text)
        elif typing.get_origin(t) is tuple:
            inner = typing.get_args(t)[0]
            value = tuple(inner(v) for v in text.replace(",", " ").split())
        else:
            value = text
    except ValueError:
        raise UserError(f"{name} must be of type {getattr(t, '__name__', t)}, not {text!r}") from None
    choices, low, high = f.metadata.get("choices"), f.metadata.get("low"), f.metadata.get("high")
    if choices and value not in choices:
        raise UserError(f"{name} must be one of {', '.join(map(str, choices))}, not {text!r}")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if value != value or (high is not None and value > high) or (low is not None and value < low):
            if high is not None:
                raise UserError(f"{name} must be {_bounds_text(low, high)}, not {text!r}")
            raise UserError(f"{name} must be at least {low}, not {text!r}")
    return value


def make_config(config_cls: type, overrides: dict[str, str] | None = None, base: Any = None):
    cfg = base if base is not None else config_cls()
    values = {k: parse_value(config_cls, k, v) for k, v in (overrides or {}).items()}
    return dataclasses.replace(cfg, **values)


def config_from_json(config_cls: type, d: dict, where: str = "config.json"):
    """A Config from its saved fields, each checked against its type, choices and bounds: a damaged or
    hand-edited file is named with the field, never a TypeError later."""
    fields = {f.name: f for f in dataclasses.fields(config_cls)}
    kwargs = {}
    for k, v in d.items():
        if k not in fields:
            continue                              # a setting of an older genlab: ignored
        t = field_type(config_cls, fields[k])
        ok = (isinstance(v, bool) if t is bool else isinstance(v, int) and not isinstance(v, bool) if t is int
              else isinstance(v, (int, float)) and not isinstance(v, bool) if t is float
              else isinstance(v, list) if typing.get_origin(t) is tuple else isinstance(v, str))
        if not ok:
            raise UserError(f"{where}: the setting {k!r} must be {getattr(t, '__name__', 'a list')}, not {v!r:.40}")
        if isinstance(v, (int, float)) and not isinstance(v, bool) and abs(v) > MAX_SETTING:
            raise UserError(f"{where}: the setting {k!r} is absurdly large ({v!r:.40})")
        kwargs[k] = tuple(v) if isinstance(v, list) else v
        parse_value(config_cls, k, str(v) if not isinstance(v, list) else " ".join(map(str, v)))  # choices, bounds
    return config_cls(**kwargs)


# ---- sampling settings: a modality's and a model's, side by side ----------------------------------------

@dataclasses.dataclass
class NoSettings:
    """What a model or modality declares when its sampling takes nothing beyond the contract."""


def describe_fields(settings_cls: type) -> list[dict]:
    """Each declared field as the explorer draws its control and --help prints it: name, flag, type, help,
    default, choices and bounds."""
    out = []
    for f in dataclasses.fields(settings_cls):
        t = field_type(settings_cls, f)
        out.append({"name": f.name, "flag": flag_of(f), "help": f.metadata.get("help", ""),
                    "type": getattr(t, "__name__", "str"), "default": f.default,
                    "choices": list(f.metadata.get("choices") or []) or None,
                    "low": f.metadata.get("low"), "high": f.metadata.get("high")})
    return out


def check_settings(settings_cls: type, given: dict[str, Any]) -> dict[str, Any]:
    """The values of `given` that `settings_cls` declares, each checked (text, or a value of its type, as
    Python and the page pass them); None means "not given" and is left out."""
    names = {f.name: f for f in dataclasses.fields(settings_cls)}
    out = {}
    for key, value in given.items():
        if value is None or key not in names:
            continue
        if isinstance(value, bool) and field_type(settings_cls, names[key]) is not bool:
            raise UserError(f"{flag_of(names[key])} must be {field_type(settings_cls, names[key]).__name__}, "
                            f"not {value!r}")
        text = value if isinstance(value, str) else str(value)
        out[key] = parse_value(settings_cls, key, text, flag_of(names[key]))
    return out


def parse_pairs(pairs: list[str], flag: str = "--set") -> dict[str, str]:
    """KEY=VALUE strings (the command line's --set) as {key: value}, each part stripped; anything else is one
    line naming the flag."""
    out = {}
    for item in pairs:
        if "=" not in item:
            raise UserError(f"{flag} takes KEY=VALUE, not {item!r}")
        k, v = (part.strip() for part in item.split("=", 1))
        out[k] = v
    return out
