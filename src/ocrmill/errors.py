"""Exit codes and the one exception tree every layer raises.

Each error class carries a stable string ``code`` (used in result records and HTTP
bodies), the process ``exit_code`` the CLI maps it to, and an ``http_status`` for the
server. Errors are translated to exit codes in exactly one place (``cli.main``).
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit codes of the ``ocrmill`` command (documented in the README)."""

    OK = 0
    INTERNAL = 1  # a bug: unexpected exception
    USAGE = 2  # bad command line or configuration
    SOME_INPUTS_FAILED = 3  # the run finished; one or more inputs produced error records
    MODEL_ERROR = 4  # a model file is missing, unreadable or incompatible
    DOCUMENT_ERROR = 5  # `ocrmill pdf`: the input document cannot be read; nothing is written
    INTERRUPTED = 130  # SIGINT / SIGTERM


class OcrmillError(Exception):
    """Base of every error ocrmill raises on purpose."""

    code: str = "internal"
    exit_code: ExitCode = ExitCode.INTERNAL
    http_status: int = 500
    # Might not happen again (a timeout, a crash, a file that was missing): ``--resume``
    # reads such an input again instead of keeping its failure record.
    transient: bool = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


class ConfigError(OcrmillError):
    """A setting or option has an invalid value."""

    code = "config_error"
    exit_code = ExitCode.USAGE
    http_status = 400


class ModelError(OcrmillError):
    """A model or dictionary file is missing, unreadable or does not fit the pipeline."""

    code = "model_error"
    exit_code = ExitCode.MODEL_ERROR
    http_status = 500


class InputError(OcrmillError):
    """One input cannot be read. Only that input fails; a batch goes on."""

    code = "input_error"
    exit_code = ExitCode.SOME_INPUTS_FAILED
    http_status = 422


class InputNotFoundError(InputError):
    code = "input_not_found"
    transient = True


class EmptyInputError(InputError):
    code = "empty_input"


class UnsupportedFormatError(InputError):
    """The bytes are not an image format we can decode (or not an image at all)."""

    code = "unsupported_format"


class CorruptImageError(InputError):
    """The file claims to be an image but is truncated or damaged."""

    code = "corrupt_image"


class CorruptVideoError(InputError):
    """The file is a video container, but truncated or damaged."""

    code = "corrupt_video"


class ImageTooLargeError(InputError):
    """The image has more pixels than the configured cap (decompression-bomb guard)."""

    code = "image_too_large"
    http_status = 413


class DocumentError(OcrmillError):
    """A whole document cannot be read or written (``ocrmill pdf``): nothing is written."""

    code = "document_error"
    exit_code = ExitCode.DOCUMENT_ERROR
    http_status = 422


class EncryptedPdfError(DocumentError):
    """The PDF is encrypted (password protected): it opens only with its password."""

    code = "encrypted_pdf"

    @classmethod
    def for_file(cls, name: str, hint: str = "") -> EncryptedPdfError:
        """The error for the file ``name``, saying how to decrypt it (and ``hint``, what
        else the caller offers)."""
        return cls(
            f"{name}: the PDF is encrypted (password protected); decrypt it first: "
            f"qpdf --decrypt --password=PASSWORD {name} decrypted.pdf{hint}"
        )


class TaskTimeoutError(OcrmillError):
    """A task ran past its deadline (the worker running it was replaced)."""

    code = "timeout"
    transient = True
    exit_code = ExitCode.SOME_INPUTS_FAILED
    http_status = 504


class WorkerCrashedError(OcrmillError):
    """The worker process died while holding this task, on every attempt."""

    code = "worker_crashed"
    transient = True
    exit_code = ExitCode.SOME_INPUTS_FAILED
    http_status = 500


class ResourceLimitError(OcrmillError):
    """Memory (host or GPU) ran out for this task even after splitting the work."""

    code = "resource_limit"
    transient = True
    exit_code = ExitCode.SOME_INPUTS_FAILED
    http_status = 503


class PoolClosedError(OcrmillError):
    """Work was submitted to, or cut short by, a worker pool that is shut down."""

    code = "pool_closed"


class QueueFullError(OcrmillError):
    """The bounded queue is full and the caller asked not to wait."""

    code = "queue_full"
    http_status = 503


class PoolStartError(OcrmillError):
    """Workers could not build their engine (bad model, bad factory, ...)."""

    code = "pool_start_failed"


class InternalError(OcrmillError):
    """An unexpected exception while processing one input, wrapped as a value."""

    code = "internal"


ERROR_CLASSES: dict[str, type[OcrmillError]] = {
    cls.code: cls
    for cls in (
        ConfigError,
        ModelError,
        InputError,
        InputNotFoundError,
        EmptyInputError,
        UnsupportedFormatError,
        CorruptImageError,
        CorruptVideoError,
        ImageTooLargeError,
        DocumentError,
        EncryptedPdfError,
        TaskTimeoutError,
        WorkerCrashedError,
        ResourceLimitError,
        PoolClosedError,
        QueueFullError,
        PoolStartError,
        InternalError,
    )
}


def as_ocrmill_error(exc: BaseException, context: str = "") -> OcrmillError:
    """``exc`` itself when it is an :class:`OcrmillError`; otherwise an :class:`InternalError`
    that names the exception (and what was being done, ``context``), so an unexpected
    failure becomes one input's error record instead of stopping a batch."""
    if isinstance(exc, OcrmillError):
        return exc
    detail = f"{type(exc).__name__}: {exc}"
    return InternalError(f"{context}: {detail}" if context else detail)


def is_transient(code: str) -> bool:
    """Is a failure with this error code worth trying again later (see ``transient``)?"""
    cls = ERROR_CLASSES.get(code)
    return cls is not None and cls.transient


def error_from_code(code: str, message: str) -> OcrmillError:
    """Rebuild a typed error from its ``code`` (e.g. when it crossed a process boundary)."""
    return ERROR_CLASSES.get(code, OcrmillError)(message)
