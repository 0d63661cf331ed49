"""The stage of a sharded Ray run (runs in each Ray actor): reads a chunk of inputs and
writes its records to the chunk's shard, and its documents (searchable PDFs, hOCR, ...),
itself.

:class:`ShardStage` takes rows of :func:`~ocrmill.distributed.input_source.chunk_table`
(one chunk each) and reads each chunk with the run layer's ``run()`` on the actor's
one-worker pool (see :class:`~ocrmill.distributed.stage.OcrStage`): PDF and TIFF pages are
expanded here, and a document's pages are all in the chunk of its file. The shard is written
to a temporary name and renamed when the chunk is done, then its manifest
(:mod:`ocrmill.distributed.shards`). What goes back to the driver is one small summary row
per chunk (:data:`SUMMARY_COLUMNS`), never a record.

Exactly once: an actor that dies mid-chunk leaves only a temporary file, removed when Ray
runs the chunk again; a chunk whose manifest matches its listing and documents is skipped on
resume; one read again loses its manifest first, keeps its shard's records for the inputs it
still lists (as ``ocrmill run --resume`` does with a file) and reads the rest; and a shard is
renamed into place only when it holds a record for every input of its chunk.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ocrmill.distributed.listing import Chunk
from ocrmill.distributed.shards import (
    Manifest,
    manifest_path,
    read_manifest,
    shard_path,
    temporary_files,
    write_manifest,
)
from ocrmill.distributed.stage import OcrStage
from ocrmill.tasks import Task

if TYPE_CHECKING:
    import pyarrow as pa

    from ocrmill.batch.api import RunSummary
    from ocrmill.batch.files import FileFormat

SUMMARY_COLUMNS = ("chunk", "inputs", "read", "skipped", "failed", "kept")


class ShardStage(OcrStage):
    """Chunks in, shards and documents out (see the module docstring).

    ``out_dir``: where shards go; ``documents``: format -> folder of per-document outputs;
    ``base``: where relative input names start (the driver's working directory);
    ``resume`` / ``retry_failed`` as for ``ocrmill run``. Other arguments are
    :class:`~ocrmill.distributed.stage.OcrStage`'s.
    """

    def __init__(
        self,
        out_dir: str,
        base: str,
        *,
        documents: dict[FileFormat, str] | None = None,
        resume: bool = False,
        retry_failed: bool = False,
        software: str = "ocrmill",
        **stage: Any,
    ) -> None:
        super().__init__(**stage)
        self.out_dir = out_dir
        self.base = base
        self.documents = dict(documents or {})
        # What a manifest records of them (a resumed chunk is read again when they differ).
        self.folders: dict[str, str] = {fmt: folder for fmt, folder in self.documents.items()}
        self.resume = resume or retry_failed
        self.retry_failed = retry_failed
        self.software = software

    def __call__(self, batch: pa.Table) -> pa.Table:
        import pyarrow as pa

        from ocrmill.distributed.input_source import chunks_of

        with self._lock:
            rows = [self._chunk(chunk) for chunk in chunks_of(batch)]
        columns = {name: [row[name] for row in rows] for name in SUMMARY_COLUMNS}
        return pa.table(columns)

    def _chunk(self, chunk: Chunk) -> dict[str, Any]:
        from ocrmill.atomic import write_atomically

        digest = chunk.digest()
        shard = shard_path(self.out_dir, chunk.id)
        manifest_file = manifest_path(shard)
        manifest = read_manifest(manifest_file) if self.resume else None
        if (
            manifest is not None
            and manifest.holds(digest, self.folders, retry_failed=self.retry_failed)
            and self._documents_exist(chunk)
        ):
            return _summary(chunk, skipped=manifest.records, kept=manifest.failed)
        # Read again: the old manifest goes first, so that it never vouches for a shard
        # written after it; what tries that died left goes too.
        manifest_file.unlink(missing_ok=True)
        for stale in temporary_files(shard):
            stale.unlink(missing_ok=True)
        done: list[tuple[RunSummary, int, dict[str, int]]] = []
        write_atomically(shard, lambda tmp: done.append(self._read_chunk(chunk, shard, tmp)))
        summary, records, failed = done[0]
        write_manifest(
            manifest_file,
            Manifest(chunk.id, digest, len(chunk.names), records, failed, self.folders),
        )
        return _summary(
            chunk,
            read=summary.read,
            failed=summary.failures,
            skipped=summary.skipped,
            kept=summary.kept_failed,
        )

    def _documents_exist(self, chunk: Chunk) -> bool:
        """Does every input of ``chunk`` that was listed have its documents? (A resumed
        local run reads an input again when an output lacks it; so does this.)"""
        from ocrmill.batch.files import output_path
        from ocrmill.outputs.writer import EXTENSIONS

        for fmt, folder in self.documents.items():
            for name, failure in zip(chunk.names, chunk.failures):
                path = output_path(Path(folder), name, EXTENSIONS[fmt], self.base)
                if failure is None and not path.exists():
                    return False
        return True

    def _read_chunk(
        self, chunk: Chunk, shard: Path, tmp: Path
    ) -> tuple[RunSummary, int, dict[str, int]]:
        """Read ``chunk`` into the temporary shard ``tmp`` (and its documents); a resumed
        chunk starts from the records of ``shard`` for the inputs it still lists. Returns
        the run's summary and the shard's records and failures by code; raises rather than
        let a shard that lacks an input be renamed into place."""
        from ocrmill.batch.api import run
        from ocrmill.batch.files import DocumentFiles
        from ocrmill.batch.sinks import JsonlSink, Sink

        if self.resume and shard.exists():
            _copy_records(shard, tmp, set(chunk.names))
        outputs: list[Sink] = [
            DocumentFiles(
                folder,
                fmt,
                software=self.software,
                max_pixels=self.config.decode.max_pixels,
                base=self.base,
            )
            for fmt, folder in self.documents.items()
        ]
        shard_sink = JsonlSink(tmp, append=True, retry_failed=self.retry_failed, flush_each=False)
        outputs.append(shard_sink)
        summary = run(
            self._tasks(chunk),
            outputs,
            config=self.config,
            executor=self.executor,
            resume=self.resume,
            retry_failed=self.retry_failed,
            signals=False,
        )
        if summary.interrupted:
            raise RuntimeError(f"chunk {chunk.id} was interrupted; its shard is not kept")
        records, failed, names = _tally(tmp)
        missing = set(chunk.names) - names
        if missing:  # a write or close that failed: run() reports it, it does not raise
            raise OSError(
                f"chunk {chunk.id}: the shard lacks {len(missing)} of its {len(chunk.names)} "
                f"inputs (e.g. {sorted(missing)[0]!r}); it is not kept"
            )
        return summary, records, failed

    def _tasks(self, chunk: Chunk) -> Iterator[Task]:
        from ocrmill.batch.sources import document_tasks

        for name, failure in zip(chunk.names, chunk.failures):
            if failure is not None:
                yield Task.failed(failure)
            else:
                path = os.path.join(self.base, name)
                yield from document_tasks(path, name, pdf_dpi=self.pdf_dpi, options=self.options)


def _summary(
    chunk: Chunk,
    *,
    read: int = 0,
    skipped: int = 0,
    failed: dict[str, int] | None = None,
    kept: dict[str, int] | None = None,
) -> dict[str, Any]:
    return {
        "chunk": chunk.id,
        "inputs": len(chunk.names),
        "read": read,
        "skipped": skipped,
        "failed": json.dumps(failed or {}),
        "kept": json.dumps(kept or {}),
    }


def _tally(shard: Path) -> tuple[int, dict[str, int], set[str]]:
    """The shard's records, its failures by error code and the inputs it names, as the
    JSONL sink reads a file it resumes (one record per key)."""
    from ocrmill.batch.sinks import read_held

    held = read_held(shard)
    keys = held.ok | set(held.failed)
    return len(keys), dict(Counter(held.failed.values())), {name for name, _ in keys}


def _copy_records(shard: Path, tmp: Path, names: set[str]) -> None:
    """The records of ``shard`` whose input ``names`` still lists, into ``tmp`` (inputs
    that moved to another chunk are read there: none is in two shards)."""
    with open(shard, "rb") as src, open(tmp, "wb") as dst:
        for raw in src:
            if not raw.endswith(b"\n"):
                break  # cannot happen to a renamed shard; a torn line is read again
            try:
                name = json.loads(raw)["input"]
            except (ValueError, KeyError, TypeError):
                continue
            if name in names:
                dst.write(raw)
