"""An image data set held in memory: uint8 tensors with a fixed train/test split."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import ClassVar

import torch


@dataclass(frozen=True)
class DataInfo:
    """What a model needs to know about its data to build itself; saved in config.json."""

    shape: tuple[int, int, int]          # C, H, W
    num_classes: int = 0                 # 0: unlabelled
    pixels: str = "binary"               # "binary" (0/1 floats), "continuous" (dequantised 8-bit in [0, 1])
                                         # or "palette" (each pixel one of `palette`'s colours, k/255)
    class_names: tuple[str, ...] = ()
    palette: tuple[tuple[int, ...], ...] = ()   # K colours of C 8-bit values (pixels="palette" only)
    vocab: tuple[str, ...] = ()          # caption-conditioned models (text2img): id -> word, specials first
    captions: tuple[str, ...] = ()       # ... and the example captions they draw when given none
    kind: ClassVar[str] = "image"
    # How its likelihood figures read: per image; a density over dequantised 8-bit values is shifted by D·log 256.
    scored: ClassVar[tuple[str, str]] = ("image", "images")
    dequantised: ClassVar[bool] = True
    per_line: ClassVar[bool] = False

    @property
    def dims(self) -> int:
        c, h, w = self.shape
        return c * h * w

    @property
    def likelihood_dims(self) -> int:
        """What bits per dimension divides by: every channel of every pixel, or for palette pixels the
        pixels (one index each)."""
        return self.dims // self.shape[0] if self.pixels == "palette" else self.dims

    def to_json(self) -> dict:
        return {"kind": self.kind, "shape": list(self.shape), "num_classes": self.num_classes,
                "pixels": self.pixels, "class_names": list(self.class_names),
                **({"palette": [list(c) for c in self.palette]} if self.palette else {}),
                **({"vocab": list(self.vocab), "captions": list(self.captions)} if self.vocab else {})}

    @classmethod
    def from_json(cls, d: dict) -> "DataInfo":
        shape = tuple(d["shape"])
        if len(shape) != 3 or not all(isinstance(v, int) and 1 <= v <= 4096 for v in shape):
            raise ValueError(f"shape must be three sizes from 1 to 4096, not {d['shape']!r}")
        if d["pixels"] not in ("binary", "continuous", "palette") or not isinstance(d["num_classes"], int):
            raise ValueError(f"pixels {d['pixels']!r} / num_classes {d['num_classes']!r}")
        return cls(shape=shape, num_classes=d["num_classes"], pixels=d["pixels"],
                   class_names=tuple(d.get("class_names", ())),
                   palette=tuple(tuple(c) for c in d.get("palette", ())),
                   vocab=tuple(map(str, d.get("vocab", ()))), captions=tuple(map(str, d.get("captions", ()))))


@dataclass
class ImageDataset:
    """Images as uint8 N×C×H×W (0..255), labels as int64 N (or None), split once and for all."""

    name: str
    train_x: torch.Tensor
    test_x: torch.Tensor
    train_y: torch.Tensor | None = None
    test_y: torch.Tensor | None = None
    class_names: tuple[str, ...] = ()
    source: str = ""
    licence: str = ""
    split: str = ""
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        for t in (self.train_x, self.test_x):
            assert t.dtype == torch.uint8 and t.dim() == 4, "images must be uint8 N×C×H×W"

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.train_x.shape[1:])

    @property
    def num_classes(self) -> int:
        return len(self.class_names) if self.train_y is not None else 0

    def content_hash(self) -> str:
        """A short hash of every image and label, so numbers from different data never mix silently."""
        h = hashlib.sha256()
        for t in (self.train_x, self.train_y, self.test_x, self.test_y):
            if t is not None:
                h.update(t.contiguous().numpy().tobytes())
        return h.hexdigest()[:16]

    def describe(self) -> dict:
        return {"name": self.name, "train": len(self.train_x), "test": len(self.test_x),
                "shape": list(self.shape), "classes": list(self.class_names),
                "split": self.split, "source": self.source, "licence": self.licence}
