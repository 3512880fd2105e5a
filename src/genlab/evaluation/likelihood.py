"""Likelihood on the test split, in the units papers use.

Binarised data: nats per image. 8-bit data, modelled as continuous after uniform dequantisation
(x + u) / 256: the density's NLL plus D·log 256 bounds the discrete NLL (Theis et al. 2016), reported
in nats per image and in bits per dimension. Palette data (one index per pixel into N colours, an exact
discrete likelihood): nats per image and bits per pixel, the dimension being the pixel."""
from __future__ import annotations

import math

from ..data.base import DataInfo
from ..models.base import GenerativeModel, average_eval_terms

# eval_terms keys that are negative log-likelihoods or bounds on one, with how we name them.
NLL_KEYS = {"nll": "exact NLL", "nelbo": "negative ELBO", "iwae": "IWAE bound"}
# Parts of a bound, in nats too (a reconstruction term and a KL divergence are unchanged by the shift).
NAT_KEYS = {"recon", "kl"}


def likelihood_report(model: GenerativeModel, test, info: DataInfo, *, iwae_k: int = 100,
                      progress=None) -> dict[str, float]:
    """Per-image test figures. Keys end in _nats or _bpd so that every number carries its unit."""
    terms = average_eval_terms(model, test, iwae_k=iwae_k, progress=progress)
    out: dict[str, float] = {}
    # A model of the discrete pixel values themselves (autoregressive softmax) needs no shift.
    dequantised = info.pixels != "binary" and not getattr(model, "discrete", False)
    shift = info.dims * math.log(256) if dequantised else 0.0
    for key, value in terms.items():
        if key in NLL_KEYS:
            nats = value + shift
            out[f"{key}_nats"] = nats
            if info.pixels != "binary":
                out[f"{key}_bpd"] = nats / (info.likelihood_dims * math.log(2))
        elif key in NAT_KEYS:
            out[f"{key}_nats"] = value
        else:
            out[key] = value
    return out


def bits_per_dim(nats_per_image: float, dims: int) -> float:
    return nats_per_image / (dims * math.log(2))
