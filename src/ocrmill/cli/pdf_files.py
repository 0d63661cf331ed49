"""The files around ``ocrmill pdf`` (runs in the ``ocrmill`` process): its input as a file
on disk (standard input spooled to a temporary file, an encrypted PDF decrypted with
``--password``), the checks on where it writes (output, ``--sidecar``) made before anything
is read, and the finished document copied to standard output for ``-``.

Temporary files live in one :class:`PdfFiles` folder, removed when the command ends (also
on error or interrupt)."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path
from types import TracebackType

from ocrmill.errors import ConfigError, DocumentError, EncryptedPdfError

STDIO = "-"
STDIN_NAME = "<stdin>"  # the input's name in messages and metadata when it is piped in


def check_writable(path: str, what: str) -> None:
    """A usage error naming ``path`` now, before pages are read, when ``path`` cannot be
    written: a folder, under a file, or in a folder this process may not write to (missing
    folders are made when the file is written)."""
    if path == STDIO:
        return
    target = Path(path)
    if target.is_dir():
        raise ConfigError(f"{what} {path}: is a folder, not a file")
    existing = target.parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise ConfigError(f"{what} {path}: {existing} is not a folder")
    if not os.access(existing, os.W_OK) or (target.exists() and not os.access(target, os.W_OK)):
        raise ConfigError(f"{what} {path}: not writable (permission denied)")


class PdfFiles:
    """The temporary folder of one ``ocrmill pdf`` run (a context manager)."""

    def __init__(self) -> None:
        self._dir: tempfile.TemporaryDirectory[str] | None = None

    def __enter__(self) -> PdfFiles:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None

    def path(self, name: str) -> Path:
        """A path in the temporary folder (made at the first call)."""
        if self._dir is None:
            self._dir = tempfile.TemporaryDirectory(prefix="ocrmill-pdf-")
        return Path(self._dir.name) / name

    def input_file(self, path: str) -> str:
        """The input as a file: ``path`` itself, or standard input spooled (``-``: a PDF
        or an image, told by its content; anything else is refused naming it)."""
        if path != STDIO:
            if not os.path.isfile(path):
                raise DocumentError(f"{path}: no such file")
            return path
        from ocrmill.errors import InputError
        from ocrmill.pipeline.decode import image_size
        from ocrmill.pipeline.pdf import is_pdf

        spooled = self.path("stdin")
        with open(spooled, "wb") as out:
            shutil.copyfileobj(sys.stdin.buffer, out)
        if spooled.stat().st_size == 0:
            raise DocumentError(f"{STDIN_NAME}: standard input is empty (expected a PDF or image)")
        if not is_pdf(spooled):
            try:  # the decoder's own check: a format it reads, from the header alone
                image_size(spooled, name=STDIN_NAME)
            except InputError:
                raise DocumentError(
                    f"{STDIN_NAME}: standard input is neither a PDF nor an image"
                ) from None
        return str(spooled)

    def decrypted(self, path: str, name: str, password: str) -> str:
        """The PDF at ``path`` (called ``name``) opened with ``password`` and saved
        unencrypted to the temporary folder; a wrong password is refused naming ``name``."""
        import pikepdf

        target = self.path("decrypted.pdf")
        try:
            with pikepdf.open(path, password=password) as pdf:
                if not pdf.is_encrypted:
                    return path
                pdf.save(target, encryption=False)
        except pikepdf.PasswordError:
            raise EncryptedPdfError(
                f"{name}: the PDF is encrypted and --password is not its password"
            ) from None
        except (pikepdf.PdfError, OSError, ValueError) as exc:
            raise DocumentError(f"{name}: not a readable PDF: {exc}") from None
        return str(target)

    def output_file(self, path: str) -> str:
        """Where the document is saved: ``path``, or a temporary file for ``-`` (copied to
        standard output by :func:`copy_to_stdout` once complete)."""
        return str(self.path("out.pdf")) if path == STDIO else path


def copy_to_stdout(path: str) -> None:
    """The finished file's bytes on standard output (nothing else is written there)."""
    with open(path, "rb") as fh:
        shutil.copyfileobj(fh, sys.stdout.buffer)
    sys.stdout.buffer.flush()
