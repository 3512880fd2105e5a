"""The models floor: the contract (base.py), one file per model, and the registry by name (registry.py)."""
from .base import GenerativeModel
from .registry import get_model_class, model_names

__all__ = ["GenerativeModel", "get_model_class", "model_names"]
