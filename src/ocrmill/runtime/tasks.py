"""How a batch of :class:`~ocrmill.tasks.Task` s is read with an engine, and how long one
may take.

``run_tasks`` runs wherever the engine lives (a pool worker, a Ray actor's worker, or the
caller's own process for the serial executor); everything else is cheap and runs anywhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from ocrmill.config import Config, ReadOptions
from ocrmill.tasks import Task

if TYPE_CHECKING:
    from ocrmill.results import Result

TIMEOUT_REFERENCE_PIXELS = 36_000_000
"""A task timeout covers pages up to this many pixels (6000 x 6000: an A4 page at 600 dpi);
bigger pages get proportionally longer (see :func:`scaled_timeout`)."""


class EngineLike(Protocol):
    """What reading needs from an engine (tests inject engines that crash, hang, leak)."""

    def read_many(
        self, images: Any, *, options: ReadOptions | None = None, names: Any = None
    ) -> list[Result]: ...

    def warmup(self) -> None: ...


def run_tasks(
    engine: EngineLike, tasks: Sequence[Task], config: Config
) -> list[tuple[int, Result]]:
    """Read a batch of tasks; every task gets exactly one result, whatever goes wrong.

    PDF pages are rendered here (under the decode pixel cap); tasks with the same options
    are read in one ``read_many`` call, so recognition is batched across them.
    """
    from ocrmill.pipeline.decode import decode_page
    from ocrmill.pipeline.pdf import render_pdf_page
    from ocrmill.results import PageFailure

    out: dict[int, Result] = {}
    groups: dict[ReadOptions | None, list[tuple[Task, Any]]] = {}
    for task in tasks:
        if task.failure is not None:
            out[task.id] = task.failure
            continue
        source: Any = task.source
        try:
            if task.kind == "pdf":
                source = render_pdf_page(
                    str(task.source),
                    task.page or 0,
                    dpi=task.pdf_dpi,
                    max_pixels=config.decode.max_pixels,
                )
            elif task.page is not None:  # one page of a multi-page image
                source = decode_page(
                    task.source, task.page, max_pixels=config.decode.max_pixels, name=task.name
                )
        except Exception as exc:
            out[task.id] = PageFailure.from_exception(task.name, exc, task.page)
            continue
        groups.setdefault(task.options, []).append((task, source))
    for options, items in groups.items():
        try:
            results = engine.read_many(
                [src for _, src in items], options=options, names=[t.name for t, _ in items]
            )
            if len(results) != len(items):
                raise RuntimeError(
                    f"engine returned {len(results)} results for {len(items)} inputs"
                )
        except Exception as exc:
            results = [PageFailure.from_exception(t.name, exc, t.page) for t, _ in items]
        for (task, _), result in zip(items, results):
            out[task.id] = result
    return [(t.id, out[t.id]) for t in tasks]


def task_pixels(task: Task) -> int | None:
    """How many pixels the task's page has, from its header only (None when unknown: the
    input may be broken, which reading it will report)."""
    try:
        if task.kind == "pdf":
            from ocrmill.pipeline.pdf import pdf_page_size

            width_pt, height_pt = pdf_page_size(str(task.source), task.page or 0)
            scale = task.pdf_dpi / 72.0
            return int(width_pt * scale) * int(height_pt * scale)
        from ocrmill.pipeline.decode import image_size

        width, height = image_size(task.source, name=task.name)
        return width * height
    except Exception:
        return None


def scaled_timeout(timeout_s: float, pixels: int) -> float:
    """The deadline for work on ``pixels`` pixels: ``timeout_s`` up to
    :data:`TIMEOUT_REFERENCE_PIXELS`, proportionally more above (a 16,000 x 16,000 page,
    256 megapixels, gets 7.1 x the timeout)."""
    return timeout_s * max(1.0, pixels / TIMEOUT_REFERENCE_PIXELS)
