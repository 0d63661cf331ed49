"""Inference backends behind one small protocol; see :mod:`ocrmill.backends.base`."""

from ocrmill.backends.base import InferenceBackend, create_backend

__all__ = ["InferenceBackend", "create_backend"]
