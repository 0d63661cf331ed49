"""Accuracy and speed benchmarks for ocrmill (not part of the installed package)."""
