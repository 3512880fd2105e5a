"""Models by name: `get_model_class("vae")`; every model file registers itself on import."""
from .base import GenerativeModel, get_model_class, model_names, register

__all__ = ["GenerativeModel", "get_model_class", "model_names", "register"]
