"""The ``ocrmill`` command: one module per subcommand, and the one place errors become exit
codes (:func:`main`).

Heavy modules (numpy, onnxruntime, the engine) are imported inside the subcommands so
``ocrmill --help`` answers instantly. Results go to stdout; messages (``ocrmill: ...``) and
progress to stderr.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from ocrmill.cli import doctor, pdf, read, run, serve, video
from ocrmill.errors import ExitCode, OcrmillError


class _VersionAction(argparse.Action):
    """``--version``: the installed version, looked up only when asked (the package
    metadata lookup costs ~30 ms that every other command would pay)."""

    def __init__(self, option_strings: list[str], dest: str = argparse.SUPPRESS, **_: object):
        super().__init__(
            option_strings, dest=dest, default=argparse.SUPPRESS, nargs=0, help="show the version"
        )

    def __call__(self, parser: argparse.ArgumentParser, *_: object) -> None:
        print(f"{parser.prog} {doctor.version()}")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ocrmill",
        description="Read text from images and PDFs with the PP-OCR models, at any scale.",
    )
    parser.add_argument("--version", action=_VersionAction)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in (read, run, pdf, doctor, video, serve):
        command.add_parser(sub)
    return parser


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a message is logged (not when created)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def _log_to_stderr(level: int = logging.INFO) -> None:
    """``ocrmill: message`` lines on stderr for the ocrmill loggers (``level`` and up)."""
    logger = logging.getLogger("ocrmill")
    if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("ocrmill: %(message)s"))
        logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False


def _log_level(args: argparse.Namespace) -> int:
    """``-q``: warnings and errors only; ``-v``: debug (how the run was planned); else info."""
    if getattr(args, "quiet", False):
        return logging.WARNING
    return logging.DEBUG if getattr(args, "verbose", False) else logging.INFO


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ocrmill`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return ExitCode.USAGE
    _log_to_stderr(_log_level(args))
    try:
        return int(args.func(args))
    except OcrmillError as exc:
        print(f"ocrmill: error: {exc.message}", file=sys.stderr)
        return int(exc.exit_code)
    except KeyboardInterrupt:
        print("ocrmill: interrupted", file=sys.stderr)
        return int(ExitCode.INTERRUPTED)
    except BrokenPipeError:  # `ocrmill read ... | head`
        return int(ExitCode.OK)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
