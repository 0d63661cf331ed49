"""Processes and devices: device probing, the worker plan, the worker pool."""
