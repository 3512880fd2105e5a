"""What `genlab train MODEL --help` says of the defaults a model trains with when it is not told."""
from __future__ import annotations


def train_defaults(model_cls, data: str | None = None, batch_size: int | None = None) -> tuple[str, str]:
    """What `genlab train MODEL` trains with when it is not told: (the --epochs help, a line of defaults on
    the data given, or on each built-in data set of the model's kind). Built-in data sets are not loaded:
    their training-set sizes are known."""
    from . import modalities

    batch = batch_size or model_cls.default_batch_size
    modality = modalities.get(model_cls.modality)
    if model_cls.trains_by_epoch:
        return (f"EM iterations; default {model_cls.default_epochs}",
                (f"{model_cls.name} defaults: {model_cls.default_epochs} EM iterations (its epochs) over the "
                 f"whole training split, whatever its size; EM has no learning rate"))
    if model_cls.default_steps is None:
        return (f"default {model_cls.default_epochs}",
                (f"{model_cls.name} defaults: {model_cls.default_epochs} epochs, batch size {batch}, "
                 f"lr {model_cls.default_lr:g}"))
    low, high = model_cls.default_epoch_range
    rule = (f"default: enough for {model_cls.default_steps:,} training steps (batches of --batch-size), so "
            f"more epochs for small data and fewer for large, from {low} to {high}")
    sizes = modality.train_sizes
    if data is not None and data not in sizes:
        where = "" if modality.owns(data) else f" ({data} is not {modality.noun})"
        return rule, (f"{model_cls.name} defaults: {model_cls.default_steps:,} training steps in batches of "
                      f"{batch}, lr {model_cls.default_lr:g}; epochs from {data}'s training-set size N: "
                      f"⌈{model_cls.default_steps:,} / ⌈N / {batch}⌉⌉, between {low} and {high}{where}")
    names = [data] if data is not None else list(sizes)
    each = ", ".join(f"{model_cls.epochs_for(sizes[n], batch)} epochs on {n} ({sizes[n]:,} training examples)"
                     for n in names)
    return rule, (f"{model_cls.name} defaults: {model_cls.default_steps:,} training steps in batches of {batch}, "
                  f"lr {model_cls.default_lr:g}: {each}")
