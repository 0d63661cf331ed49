"""The retry ledger: what becomes of tasks lost with a worker that crashed or timed out.

A task lost in a batch is first retried alone (innocent until tried alone: another task
of its batch may be the culprit); a task lost while alone has failed one attempt, and
after ``max_retries + 1`` failed solo attempts it gets a ``worker_crashed`` or ``timeout``
record. Runs in the parent, under the pool's lock.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

from ocrmill.errors import OcrmillError, TaskTimeoutError, WorkerCrashedError
from ocrmill.results import PageFailure
from ocrmill.tasks import Task


class LossCause(enum.Enum):
    """Why a worker's batch was lost."""

    CRASH = "crash"  # the worker died (signal, exit, the OOM killer, a broken pipe)
    TIMEOUT = "timeout"  # the batch ran past its deadline; the worker was killed


@dataclass
class _Attempts:
    solo: bool = False
    failures: int = 0


class RetryLedger:
    """Per-task attempt counts for tasks that were lost at least once."""

    def __init__(self, max_retries: int) -> None:
        self.max_retries = max(0, max_retries)
        self._tasks: dict[int, _Attempts] = {}

    def is_solo(self, task_id: int) -> bool:
        """Must this task run alone (it was lost before)?"""
        entry = self._tasks.get(task_id)
        return entry is not None and entry.solo

    def forget(self, task_id: int) -> None:
        """The task got a result (or was cancelled): nothing more to remember."""
        self._tasks.pop(task_id, None)

    def lost(
        self, batch: Sequence[Task], cause: LossCause, detail: str, timeout_s: float | None
    ) -> tuple[list[Task], list[tuple[Task, PageFailure]]]:
        """Tasks of a lost batch to run again (alone), and those that have failed for good
        with their records. ``detail`` says what happened to the worker."""
        retry: list[Task] = []
        failed: list[tuple[Task, PageFailure]] = []
        for task in batch:
            entry = self._tasks.setdefault(task.id, _Attempts())
            if len(batch) > 1 and not entry.solo:
                entry.solo = True
            else:
                entry.solo = True
                entry.failures += 1
            if entry.failures <= self.max_retries:
                retry.append(task)
                continue
            self.forget(task.id)
            failed.append((task, self._failure(task, cause, detail, entry.failures, timeout_s)))
        return retry, failed

    @staticmethod
    def _failure(
        task: Task, cause: LossCause, detail: str, tries: int, timeout_s: float | None
    ) -> PageFailure:
        attempts = f"{tries} attempt{'s' * (tries > 1)}"
        err: OcrmillError
        if cause is LossCause.TIMEOUT:
            limit = f"{timeout_s:g} s" if timeout_s is not None else "its deadline"
            err = TaskTimeoutError(
                f"{task.name}: no result within {limit} ({attempts}); the worker was replaced"
            )
        else:
            err = WorkerCrashedError(f"{task.name}: {detail} while reading this input ({attempts})")
        return PageFailure.from_error(task.name, err, task.page)
