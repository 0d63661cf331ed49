"""Batch runs in the parent process: input enumeration, the JSONL sink, progress, the runner."""
