"""A run's inputs listed on the cluster, where they are read, so that listing streams into
reading and the driver holds nothing per input (pure: no Ray here).

The driver splits the command line's specs into :class:`Unit` s without listing anything: a
list file (``@paths.txt``) into byte ranges of :data:`LIST_RANGE_BYTES` (one ``stat``), a
directory or a glob into one unit each, plain paths into one unit per run of them. A Ray Data
read task lists one unit (:func:`unit_names`) into :class:`Chunk` s of ``chunk_size`` inputs,
each with an id that is the same every time the same listing is read: the id of the shard
its records go to. Relative paths start at the driver's working directory (``base``), and
records name inputs as a local ``ocrmill run`` would. Pages of PDFs and TIFFs are not counted
here: the actor reading a chunk expands them.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

from ocrmill.batch.sources import Found, resolve_glob, resolve_lines, resolve_path, spec_kind
from ocrmill.distributed.shards import DEFAULT_CHUNK_SIZE
from ocrmill.errors import ConfigError
from ocrmill.results import PageFailure

LIST_RANGE_BYTES = 8 * 1024 * 1024  # ~100 k paths: one read task's share of a list file

UnitKind = Literal["list", "path", "glob", "paths"]


@dataclass(frozen=True)
class Unit:
    """One read task's share of the inputs: byte range ``part`` (``start``..``end``) of list
    file ``value``, the directory or file ``value``, the glob ``value``, or ``paths``.
    ``spec`` is the position of its spec on the command line."""

    spec: int
    kind: UnitKind
    value: str = ""
    part: int = 0
    start: int = 0
    end: int = 0
    paths: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """``SSSS-PPPPPP``: spec and part, the prefix of its chunks' ids."""
        return f"{self.spec:04d}-{self.part:06d}"


@dataclass(frozen=True)
class Chunk:
    """Inputs read together and written to one shard: file names as the records name them,
    and in ``failures`` the record of an input that could not be listed (None for a file)."""

    id: str
    names: tuple[str, ...]
    failures: tuple[PageFailure | None, ...]

    def digest(self) -> str:
        """What the chunk holds, as a hash: a shard made from the same listing has it."""
        h = hashlib.sha1(usedforsecurity=False)
        for name in self.names:
            h.update(os.fsencode(name) + b"\0")
        return h.hexdigest()


def plan_units(
    specs: Sequence[str], base: str, *, range_bytes: int = LIST_RANGE_BYTES
) -> list[Unit]:
    """The units of ``specs`` (see the module docstring); nothing is listed, a list file
    is only measured. Stdin (``-``) cannot be read on a cluster: a usage error."""
    units: list[Unit] = []
    plain: list[str] = []
    first_plain = 0

    def flush() -> None:
        if plain:
            units.append(Unit(first_plain, "paths", paths=tuple(plain)))
            plain.clear()

    for i, spec in enumerate(specs):
        kind = spec_kind(spec, base)
        if kind == "stdin":
            raise ConfigError(
                "a sharded Ray run lists its inputs on the cluster and cannot read stdin: "
                "write the paths to a file on shared storage and give it as @FILE"
            )
        if kind == "list":
            flush()
            try:
                size = os.path.getsize(os.path.join(base, spec[1:]))
            except OSError:
                size = 0  # its one unit reports why it cannot be read
            parts = max(1, -(-size // range_bytes))
            for part in range(parts):
                start, end = part * range_bytes, min(size, (part + 1) * range_bytes)
                units.append(Unit(i, "list", spec[1:], part, start, end))
        elif kind == "glob" or os.path.isdir(os.path.join(base, spec)):
            flush()  # a folder or a glob: a unit of its own
            units.append(Unit(i, "glob" if kind == "glob" else "path", spec))
        else:
            if not plain:
                first_plain = i
            plain.append(spec)
    flush()
    return units


def unit_names(unit: Unit, base: str) -> Iterator[Found]:
    """The inputs of ``unit``, lazily, in listing order: names, or error records for specs
    that name nothing."""
    if unit.kind == "list":
        yield from _list_range(unit, base)
    elif unit.kind == "path":
        yield from resolve_path(unit.value, base)
    elif unit.kind == "glob":
        yield from resolve_glob(unit.value, base)
    else:
        for path in unit.paths:
            yield from resolve_path(path, base)


def _list_range(unit: Unit, base: str) -> Iterator[Found]:
    """The lines of a list file that start in ``unit``'s byte range (a line that crosses
    its end belongs to it; one that crosses its start belongs to the range before)."""
    from ocrmill.errors import InputError, InputNotFoundError

    spec = "@" + unit.value
    path = os.path.join(base, unit.value)
    try:
        fh = open(path, "rb")  # noqa: SIM115 - closed below, after the generator ends
    except FileNotFoundError:
        if unit.part == 0:
            yield PageFailure.from_error(
                spec, InputNotFoundError(f"{unit.value}: list file not found")
            )
        return
    except OSError as exc:
        if unit.part == 0:
            message = f"{unit.value}: cannot read list file: {exc.strerror or exc}"
            yield PageFailure.from_error(spec, InputError(message))
        return
    with fh:
        position = unit.start
        if position > 0:  # skip the end of the line the range before owns
            fh.seek(position - 1)
            position += len(fh.readline()) - 1
        lines: list[str] = []
        while position < unit.end or (unit.end == 0 and unit.part == 0):
            raw = fh.readline()
            if not raw:
                break
            position += len(raw)
            # Bare carriage returns end lines too (old Mac files), as in text mode.
            text = raw.decode("utf-8", "surrogateescape").replace("\r\n", "\n")
            lines.extend(text.replace("\r", "\n").split("\n"))
            if len(lines) >= 1024:
                yield from resolve_lines(lines, base)
                lines = []
        yield from resolve_lines(lines, base)


def unit_chunks(unit: Unit, base: str, chunk_size: int = DEFAULT_CHUNK_SIZE) -> Iterator[Chunk]:
    """``unit``'s inputs in chunks of ``chunk_size`` (the last may be smaller), numbered in
    listing order from 0 (``SSSS-PPPPPP-CCCCCCCC``)."""
    names: list[str] = []
    failures: list[PageFailure | None] = []
    number = 0

    def chunk() -> Chunk:
        return Chunk(f"{unit.label}-{number:08d}", tuple(names), tuple(failures))

    for found in unit_names(unit, base):
        if isinstance(found, PageFailure):
            names.append(found.input)
            failures.append(found)
        else:
            names.append(found)
            failures.append(None)
        if len(names) >= chunk_size:
            yield chunk()
            names, failures, number = [], [], number + 1
    if names:
        yield chunk()
