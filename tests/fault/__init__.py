"""Engines that misbehave on purpose, for testing the runtime (loaded by worker processes)."""
