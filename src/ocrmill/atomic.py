"""Files that are complete or absent: written to a temporary name beside the target, then
renamed over it (a rename within a directory is atomic)."""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

_umask_lock = threading.Lock()


def _file_mode() -> int:
    """The mode a new file gets here (0o666 less the umask): temporary files are 0o600."""
    with _umask_lock:  # reading the umask means setting it: keep threads out meanwhile
        mask = os.umask(0o022)
        os.umask(mask)
    return 0o666 & ~mask


def write_text_atomically(path: str | os.PathLike[str], text: str) -> None:
    """``text`` (UTF-8) to ``path``, complete or not at all."""
    write_atomically(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_atomically(path: str | os.PathLike[str], write: Callable[[Path], object]) -> None:
    """``write(tmp)`` to a temporary file beside ``path``, then rename it to ``path``; on any
    error the temporary file is removed and ``path`` is left as it was."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        os.chmod(tmp, _file_mode())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
