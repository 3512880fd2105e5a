"""genlab: deep generative models of every family, trained, sampled, evaluated and explored one way.

The library (api.py): genlab.train, genlab.resume, genlab.train_from_config, genlab.load, genlab.sample,
genlab.evaluate. The command line (`genlab ...`) is a thin layer over the same functions."""
from .version import __version__  # noqa: E402

from .errors import UserError  # noqa: E402


def __getattr__(name):
    # The library loads torch and every model: imported on first use, so `import genlab` stays quick.
    if name in ("train", "resume", "train_from_config", "load", "sample", "evaluate", "format_results"):
        from . import api
        return getattr(api, name)
    if name == "Run":
        from .runs import Run
        return Run
    raise AttributeError(f"module 'genlab' has no attribute {name!r}")


__all__ = ["__version__", "UserError", "train", "resume", "train_from_config", "load", "sample", "evaluate",
           "format_results", "Run"]
