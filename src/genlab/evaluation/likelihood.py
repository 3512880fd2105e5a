"""Likelihood on the test split, in the units papers use: the one conversion that every figure of a
likelihood goes through (the trainer's per-epoch test row, `genlab eval`, the tables).

Binarised data: nats per image. 8-bit data, modelled as continuous after uniform dequantisation
(x + u) / 256: the density's NLL plus D·log 256 bounds the discrete NLL (Theis et al. 2016), reported
in nats per image and in bits per dimension; a bound's reconstruction term is shifted by the same D·log 256
as the bound it is part of (the KL term is not), so its parts still add up to it. Palette data (one index
per pixel into N colours, an exact discrete likelihood): nats per image and bits per pixel, the dimension
being the pixel. Text: nats per line and per token (end tokens counted).

Every figure is a mean over the test examples and comes with its standard error over them (`…_se`): for a
Monte Carlo figure (a bound estimated with sampled codes) it holds the sampling noise of the estimate as
well as the spread of the test examples; for an exact one only the latter. The ELBO draws its codes from
a stream of its own (ELBO_SEED), so it does not change with the number of IWAE samples; the IWAE bound
draws from the global generator, seeded with IWAE_SEED for the evaluation and restored after it."""
from __future__ import annotations

import math

import torch

from ..models.base import GenerativeModel

# eval_terms keys that are negative log-likelihoods or bounds on one, with how we name them.
NLL_KEYS = {"nll": "exact NLL", "nelbo": "negative ELBO", "iwae": "IWAE bound"}   # and a model's `estimates`
# Terms named "shared_…" hold one value for the whole test split (repeated for each example), reported once
# under the rest of their name: the rbm's AIS estimate of log Z, which every image's "nll_ais" contains.
# That estimate's standard error adds in quadrature to the spread of the figure over the test examples.
SHARED = "shared_"
SHARED_SE = {"nll_ais": "ais_log_z_se"}
# Parts of a bound, in nats: the reconstruction term moves with the bound (D·log 256 for 8-bit data),
# the KL divergence does not.
SHIFTED_PARTS = {"recon"}
NAT_KEYS = {"recon", "kl"}
ELBO_SEED = 1          # the ELBO's own code samples (a stream apart from the IWAE bound's)
IWAE_SEED = 0          # the IWAE bound's samples: the global generator, as genlab always seeded it
# Dynamically binarised test splits smaller than this also get the spread of the headline figure over
# BINARISATIONS fixed binarisations (seeds 0, 1, ...); the figure itself stays on seed 0's.
SMALL_TEST = 5000
BINARISATIONS = 5


@torch.no_grad()
def per_example_terms(model: GenerativeModel, batches, *, iwae_k: int = 0, progress=None) -> dict[str, torch.Tensor]:
    """Each figure of `eval_terms`, one float64 value per test example (in the split's order), in the
    model's own nats: the ELBO from its own seeded stream, the IWAE bound from the global generator seeded
    for the pass (and put back as it was afterwards)."""
    dev = model.device
    g = torch.Generator(device=dev).manual_seed(ELBO_SEED)
    cuda = [dev.index if dev.index is not None else torch.cuda.current_device()] if dev.type == "cuda" else []
    cols: dict[str, list[torch.Tensor]] = {}
    with torch.random.fork_rng(devices=cuda):
        torch.manual_seed(IWAE_SEED)
        for batch in batches.epoch(0):
            terms = model.eval_terms(batch.x, batch.condition, iwae_k=iwae_k, generator=g)
            for k, v in terms.items():
                cols.setdefault(k, []).append(v.detach().double().reshape(len(batch.x)).cpu())
            if progress is not None:
                progress.update(1, items=len(batch.x))
    return {k: torch.cat(v) for k, v in cols.items()}


def mean_and_se(values: torch.Tensor) -> tuple[float, float | None]:
    """The mean of per-example values and its standard error (None with fewer than two examples)."""
    n = len(values)
    mean = float(values.mean()) if n else math.nan
    return mean, (float(values.std(unbiased=True)) / math.sqrt(n) if n > 1 else None)


def ratio_and_se(num: torch.Tensor, den: torch.Tensor) -> tuple[float, float | None]:
    """Σnum / Σden (nats per token from nats and tokens per line) and its standard error by the delta
    method over the examples."""
    n, total = len(num), float(den.sum())
    r = float(num.sum()) / total
    if n < 2:
        return r, None
    resid = num - r * den
    return r, float(resid.std(unbiased=True)) * math.sqrt(n) / total


def shift_nats(model: GenerativeModel, info=None) -> float:
    """What turns the model's NLL into the reported one: D·log 256 for a density over dequantised 8-bit
    pixels, 0 for binarised pixels and for a model of the discrete values themselves."""
    info = info if info is not None else model.info
    dequantised = info.dequantised and info.pixels != "binary" and not model.discrete
    return info.dims * math.log(256) if dequantised else 0.0


def _put(out: dict, key: str, mean: float, se: float | None) -> None:
    out[key] = mean
    if se is not None:
        out[f"{key}_se"] = se


def summarise(model: GenerativeModel, terms: dict[str, torch.Tensor], info=None) -> dict:
    """Per-example terms as the reported figures: keys ending in their unit (`_nats`, `_bpd`,
    `_nats_per_line`, `_nats_per_token`), each with its standard error (`…_se`), and `standard_error`
    saying what that is."""
    info = info if info is not None else model.info
    shared = {k[len(SHARED):]: float(v[0]) for k, v in terms.items() if k.startswith(SHARED) and len(v)}
    nll_keys = NLL_KEYS.keys() | model.estimates.keys()
    terms = {k: v for k, v in terms.items() if not k.startswith(SHARED)}
    if not terms:
        return {}
    n = len(next(iter(terms.values())))
    out: dict = {}
    unit, what = info.scored
    if info.per_line:                            # text: per line, and per token where the model counts them
        tokens = terms.get("tokens")
        for key, v in terms.items():
            if key == "tokens":
                continue
            _put(out, f"{key}_nats_per_line", *mean_and_se(v))
            if tokens is not None and key in nll_keys:
                _put(out, f"{key}_nats_per_token", *ratio_and_se(v, tokens))
    else:
        shift = shift_nats(model, info)
        bits = info.likelihood_dims * math.log(2)
        for key, v in terms.items():
            if key in nll_keys:
                mean, se = mean_and_se(v + shift)
                if key in SHARED_SE and se is not None:
                    se = math.hypot(se, shared[SHARED_SE[key]])
                _put(out, f"{key}_nats", mean, se)
                if info.pixels != "binary":
                    _put(out, f"{key}_bpd", mean / bits, None if se is None else se / bits)
            elif key in NAT_KEYS:
                _put(out, f"{key}_nats", *mean_and_se(v + shift if key in SHIFTED_PARTS else v))
            else:                                    # not a likelihood (the autoencoder's loss): no unit of nats
                _put(out, key, *mean_and_se(v))
    out.update(shared)
    # What each estimate is, for the tables: its heading and how it is made ({"nll_ais_nats": [...]}).
    said = {f"{k}_nats": list(v) for k, v in model.estimates.items() if k in terms}
    if said:
        out["estimates"] = said
    if n > 1:
        noise = (f"each {unit}'s bound is a Monte Carlo estimate, so this holds its sampling noise too"
                 if {"nelbo", "iwae"} & terms.keys() else
                 f"the AIS figure adds the standard error of the one log Z estimate every {unit} shares"
                 if SHARED_SE.keys() & terms.keys() else
                 f"each {unit}'s estimate is a Monte Carlo one, so this holds its sampling noise too"
                 if said else
                 "the figure itself is exact, so this is the test split's sampling noise only")
        out["standard_error"] = f"…_se: standard error of the mean over the {n} test {what} ({noise})"
    return out


def test_figures(model: GenerativeModel, batches, *, iwae_k: int = 0, progress=None) -> dict:
    """The likelihood figures of a model on a test split, converted and named as everywhere in genlab:
    what the trainer logs after each epoch (iwae_k=0) and what `genlab eval` reports."""
    return summarise(model, per_example_terms(model, batches, iwae_k=iwae_k, progress=progress))


def likelihood_report(model: GenerativeModel, test, info=None, *, iwae_k: int = 100,
                      progress=None) -> dict:
    """Per-image test figures. Keys end in _nats or _bpd so that every number carries its unit."""
    return summarise(model, per_example_terms(model, test, iwae_k=iwae_k, progress=progress), info)


def headline(figures: dict) -> str | None:
    """The key of the figure a run is ranked by: the exact NLL, else the model's first estimate (AIS, CSL),
    else the IWAE bound, else the ELBO."""
    for key in ("nll_nats", *figures.get("estimates", {}), "iwae_nats", "nelbo_nats"):
        if key in figures:
            return key
    return None


def binarisation_spread(model: GenerativeModel, batches_of_seed, figures: dict, *, iwae_k: int,
                        count: int = BINARISATIONS, progress=None) -> dict:
    """The standard deviation of the headline figure over `count` fixed binarisations of the test split
    (seed 0's already in `figures`, then seeds 1 … count-1 from `batches_of_seed(seed)`)."""
    key = headline(figures)
    if key is None or count < 2:
        return {}
    values = [figures[key]]
    for seed in range(1, count):
        values.append(likelihood_report(model, batches_of_seed(seed), iwae_k=iwae_k, progress=progress)[key])
    return {"binarisation_sd_nats": float(torch.tensor(values, dtype=torch.float64).std(unbiased=True)),
            "binarisations": count, "binarisation_sd_of": key}
