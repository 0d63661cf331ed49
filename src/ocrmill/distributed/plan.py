"""How many OCR actors Ray Data may run and what each reserves, from the local worker plan
(runs on the driver; pure arithmetic, tested without Ray)."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

from ocrmill.runtime.plan import WorkerPlan


@dataclass(frozen=True)
class ActorPlan:
    """How many OCR actors Ray Data may run and what each one reserves."""

    min_actors: int
    max_actors: int
    num_cpus: float  # per actor: its engine's inference threads
    num_gpus: float  # per actor: 1 / instances per GPU, 0 on CPU
    threads: int
    device: str  # "cpu" or "cuda"
    reasons: tuple[str, ...] = ()

    def describe(self) -> str:
        size = (
            str(self.max_actors)
            if self.min_actors == self.max_actors
            else f"{self.min_actors}-{self.max_actors}"
        )
        head = (
            f"ray actors: {size} x {self.device} "
            f"({self.num_cpus:g} CPU, {self.num_gpus:g} GPU, {self.threads} thread(s) each)"
        )
        return "\n".join([head, *(f"  - {r}" for r in self.reasons)])


def gpu_fraction(instances_per_gpu: int) -> float:
    """``num_gpus`` for one of ``instances_per_gpu`` actors sharing a GPU (rounded down to
    Ray's 1/10000 resolution so that many always fit on one GPU)."""
    return math.floor(10_000 / max(1, instances_per_gpu)) / 10_000


def plan_actors(
    plan: WorkerPlan, *, fixed: bool, cluster_resources: Mapping[str, float] | None = None
) -> ActorPlan:
    """Turn the local worker plan into Ray Data actor resources.

    Each actor gets the plan's threads as ``num_cpus``; on a GPU plan ``num_gpus`` is
    1 / (instances the VRAM plan puts on one GPU), so Ray packs as many actors on a GPU as
    the local pool would start on it. ``fixed`` (``--workers N``): exactly as many actors as
    the plan has workers. Otherwise the pool autoscales from that many (at most what the
    cluster holds) up to what ``cluster_resources`` (``ray.cluster_resources()``) can run.
    """
    reasons = list(plan.reasons)
    local = len(plan.slots)
    threads = max(slot.threads for slot in plan.slots)
    num_gpus = 0.0
    device = "cpu"
    if plan.device_kind == "cuda":
        per_gpu = Counter(s.gpu_index for s in plan.slots if s.gpu_index is not None)
        instances = max(per_gpu.values())
        num_gpus = gpu_fraction(instances)
        device = "cuda"
        reasons.append(f"{instances} engine(s) per GPU by the memory plan: num_gpus={num_gpus:g}")
    if fixed or not cluster_resources:
        return ActorPlan(local, local, float(threads), num_gpus, threads, device, tuple(reasons))
    cpus = float(cluster_resources.get("CPU", 0.0))
    gpus = float(cluster_resources.get("GPU", 0.0))
    capacity = math.floor(cpus / threads)
    if num_gpus:
        capacity = min(capacity, math.floor(gpus / num_gpus + 1e-9))
    capacity = max(1, capacity)
    reasons.append(
        f"Ray cluster: {cpus:g} CPUs, {gpus:g} GPUs -> up to {capacity} actor(s), "
        f"starting with {min(local, capacity)}"
    )
    return ActorPlan(
        min(local, capacity), capacity, float(threads), num_gpus, threads, device, tuple(reasons)
    )
