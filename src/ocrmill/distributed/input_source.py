"""A Ray Data datasource that lists a run's inputs on the cluster (imports Ray: load it only
where Ray is installed).

:class:`InputListing` makes one read task per :class:`~ocrmill.distributed.listing.Unit`;
each lists its unit lazily and yields one block per chunk, so the first chunk is read while
the rest is still being listed, and the driver holds the units only. A chunk row has
``chunk`` (its id), ``names`` (file-system bytes, so names no UTF-8 can hold get through),
and ``codes`` / ``messages`` (the failure of an input that could not be listed, else null).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator, Sequence

import pyarrow as pa
from ray.data import Datasource, ReadTask
from ray.data.block import BlockMetadata

from ocrmill.distributed.listing import Chunk, Unit, unit_chunks
from ocrmill.distributed.shards import DEFAULT_CHUNK_SIZE, drop_chunks_from
from ocrmill.distributed.stage import utf8
from ocrmill.results import PageFailure

CHUNK_SCHEMA = pa.schema(
    [
        ("chunk", pa.string()),
        ("names", pa.list_(pa.binary())),
        ("codes", pa.list_(pa.string())),
        ("messages", pa.list_(pa.string())),
    ]
)


def chunk_table(chunk: Chunk) -> pa.Table:
    """One chunk as a one-row table."""
    return pa.table(
        {
            "chunk": [chunk.id],
            "names": [[os.fsencode(name) for name in chunk.names]],
            "codes": [[f.code if f else None for f in chunk.failures]],
            "messages": [[utf8(f.message) if f else None for f in chunk.failures]],
        },
        schema=CHUNK_SCHEMA,
    )


def chunks_of(batch: pa.Table) -> Iterator[Chunk]:
    """The chunks of a batch of chunk rows (the inverse of :func:`chunk_table`)."""
    columns = batch.select(["chunk", "names", "codes", "messages"]).to_pydict()
    for chunk_id, names, codes, messages in zip(
        columns["chunk"], columns["names"], columns["codes"], columns["messages"]
    ):
        decoded = tuple(os.fsdecode(name) for name in names)
        failures = tuple(
            PageFailure(name, code, message or f"{name}: cannot be listed") if code else None
            for name, code, message in zip(decoded, codes, messages)
        )
        yield Chunk(chunk_id, decoded, failures)


class InputListing(Datasource):
    """The chunks of ``units`` (inputs below ``base``, ``chunk_size`` per chunk). With
    ``out_dir``, a unit listed to its end drops the shards of chunks it no longer makes
    (a folder or list that shrank since the run being resumed)."""

    def __init__(
        self,
        units: Sequence[Unit],
        base: str,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        out_dir: str | None = None,
    ) -> None:
        super().__init__()
        self.units = list(units)
        self.base = base
        self.chunk_size = chunk_size
        self.out_dir = out_dir

    def get_name(self) -> str:
        return "OcrmillInputs"

    def estimate_inmemory_data_size(self) -> int | None:
        return None  # unknown until listed

    def get_read_tasks(
        self, parallelism: int, per_task_row_limit: int | None = None, data_context: object = None
    ) -> list[ReadTask]:
        base, size, out_dir = self.base, self.chunk_size, self.out_dir

        def read(unit: Unit) -> Iterator[pa.Table]:
            count = 0
            for chunk in unit_chunks(unit, base, size):
                count += 1
                yield chunk_table(chunk)
            if out_dir is not None:
                drop_chunks_from(out_dir, unit.label, count)

        return [
            ReadTask(
                functools.partial(read, unit),
                BlockMetadata(num_rows=None, size_bytes=None, exec_stats=None, input_files=None),
                schema=CHUNK_SCHEMA,
            )
            for unit in self.units
        ]
