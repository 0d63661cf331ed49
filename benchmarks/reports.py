"""What benchmark reports share: the line that says which machine ran them, and where they
are saved."""

from __future__ import annotations

import datetime as dt
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

from ocrmill.backends.choice import cpu_identity

RESULTS = Path(__file__).resolve().parent / "results"


def machine_line() -> str:
    """CPU model and vector flags, CPU count, OS, Python and the time (UTC)."""
    now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    return (
        f"Machine: {cpu_identity()}, {os.cpu_count()} CPUs; {platform.platform()}, "
        f"Python {platform.python_version()}; {now}."
    )


def save_report(text: str, stem: str, out: Path | None = None) -> Path:
    """Print ``text`` and write it to ``out`` (default ``results/<stem>_<timestamp>.md``)."""
    path = out or RESULTS / f"{stem}_{dt.datetime.now():%Y%m%d-%H%M%S}.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    print(text)
    print(f"saved {path}", file=sys.stderr)
    return path


def tesseract_version() -> str:
    """The first line of ``tesseract --version``, or why its columns are empty."""
    exe = shutil.which("tesseract")
    if exe is None:
        return "not installed (its columns are n/a)"
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, check=False)
    return (out.stdout or out.stderr).splitlines()[0]
