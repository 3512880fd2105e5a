"""genlab: deep generative models of every family, trained, sampled, evaluated and explored one way.

The library (api.py): genlab.train, genlab.resume, genlab.train_from_config, genlab.load, genlab.sample,
genlab.evaluate. The command line (`genlab ...`) is a thin layer over the same functions."""
import importlib

from .errors import UserError
from .version import __version__

API = ("train", "resume", "train_from_config", "load", "sample", "evaluate", "format_results")


def __getattr__(name):
    # The library loads torch and every model: imported on first use, so `import genlab` stays quick.
    if name in API:
        return getattr(importlib.import_module(".api", __name__), name)
    if name in ("api", "models", "modalities", "data"):
        return importlib.import_module(f".{name}", __name__)
    if name == "Run":
        return importlib.import_module(".runs", __name__).Run
    raise AttributeError(f"module 'genlab' has no attribute {name!r}")


__all__ = ["__version__", "UserError", *API, "Run"]
