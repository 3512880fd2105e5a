"""genlab: deep generative models of every family, trained, sampled, evaluated and explored one way."""
__version__ = "0.1.0"


def load(path):
    """The model saved in a run directory, ready to sample, on the CPU."""
    from .runs import load as _load
    return _load(path)


__all__ = ["__version__", "load"]
