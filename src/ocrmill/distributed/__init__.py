"""Distributed front ends: :mod:`ocrmill.distributed.ray` (Ray Data; an optional extra).

Nothing is imported here, so ``import ocrmill.distributed`` works without Ray installed.
"""
