"""Inference backends behind one small protocol (:mod:`ocrmill.backends.base`), picked and
loaded by :mod:`ocrmill.backends.factory`."""

from ocrmill.backends.base import InferenceBackend
from ocrmill.backends.factory import create_backend

__all__ = ["InferenceBackend", "create_backend"]
