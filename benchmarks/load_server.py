"""Bounded load test of ``ocrmill serve`` over loopback: a steady phase, then an overload.

    python -m benchmarks.load_server [--clients 16] [--duration 60]
                                     [--overload-clients 64] [--overload-duration 20]
                                     [--images DIR] [--workers auto] [--max-queue 32]
                                     [--url URL --pid PID] [--fake] [--out PATH.md]

By default it starts its own server (real models, a temporary data directory, a free
loopback port) and waits for ``/readyz``. Each client is a thread with its own HTTP
connection that posts images to ``POST /v1/ocr`` back to back; after a ``503`` it pauses
0.1 s (less than ``Retry-After``, to keep the pressure on). The steady phase should see only
``200``; the overload phase (more clients than ``--max-queue``) must see only ``200`` and
``503``. Anything else fails the run (exit status 1).

Memory: the server's RSS (the parent alone, and the parent plus its workers) is sampled
every second; the report gives it at the start (ready, idle), at the end (after the load,
idle again) and the peak. It must stay flat: requests and uploads are bounded, not buffered.

Images: the PNG/JPEG files of ``--images`` (default: up to 16 from ../shared/data/docs,
else pages rendered with Pillow). ``--fake`` runs the fake test engine instead of the models
(it needs no CPU for inference: a smoke test of this harness).
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

from ocrmill.backends.choice import cpu_identity

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_IMAGES = ROOT.parent / "shared" / "data" / "docs"
RESULTS_DIR = ROOT / "benchmarks" / "results"
ALLOWED = {200, 503}


@dataclass
class Phase:
    name: str
    clients: int
    duration_s: float
    statuses: Counter[int] = field(default_factory=Counter)
    latencies_ok: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    elapsed_s: float = 0.0

    @property
    def ok(self) -> int:
        return self.statuses.get(200, 0)

    def percentile(self, q: float) -> float:
        if not self.latencies_ok:
            return float("nan")
        ordered = sorted(self.latencies_ok)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@dataclass
class MemorySample:
    at_s: float
    parent: int
    total: int


def load_images(folder: Path | None, limit: int = 16) -> list[tuple[str, bytes]]:
    """Up to ``limit`` image files (name, bytes), or rendered pages when there are none."""
    candidates = []
    if folder is not None and folder.is_dir():
        for path in sorted(folder.rglob("*")):
            if path.suffix.lower() in (".png", ".jpg", ".jpeg") and path.is_file():
                candidates.append(path)
    if candidates:
        step = max(1, len(candidates) // limit)
        return [(p.name, p.read_bytes()) for p in candidates[::step][:limit]]
    sys.path.insert(0, str(ROOT))
    from tests.conftest import render_page

    images = []
    for i in range(4):
        page = render_page([f"Load test page {i}", "Total 42.00", "Thank you, come again"])
        out = io.BytesIO()
        page.save(out, format="PNG")
        images.append((f"page{i}.png", out.getvalue()))
    return images


def rss_of(pid: int) -> tuple[int, int]:
    """(parent RSS, parent + children RSS) in bytes; (0, 0) if it is gone."""
    try:
        proc = psutil.Process(pid)
        parent = proc.memory_info().rss
        total = parent
        for child in proc.children(recursive=True):
            try:
                total += child.memory_info().rss
            except psutil.Error:
                pass
        return parent, total
    except psutil.Error:
        return 0, 0


def start_server(
    args: argparse.Namespace, data_dir: Path, log_path: Path
) -> tuple[str, subprocess.Popen[bytes]]:
    cmd = [
        sys.executable,
        "-m",
        "ocrmill",
        "serve",
        "--port",
        "0",
        "--data-dir",
        str(data_dir),
        "--workers",
        args.workers,
        "--max-queue",
        str(args.max_queue),
        "--log-level",
        "warning",
    ]
    if args.fake:
        cmd += ["--engine-factory", "tests.fault.engines:fake_engine"]
    log = open(log_path, "wb")  # noqa: SIM115 (lives as long as the server)
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        match = re.search(r"serving on (http://\S+)", log_path.read_text(errors="replace"))
        if match:
            return match.group(1), proc
        if proc.poll() is not None:
            raise SystemExit(f"the server exited:\n{log_path.read_text(errors='replace')}")
        time.sleep(0.1)
    proc.kill()
    raise SystemExit("the server did not start in 300 s")


def wait_ready(url: str, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/readyz", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{url} not ready after {timeout:.0f} s")


def run_phase(
    url: str, phase: Phase, images: list[tuple[str, bytes]], headers: dict[str, str]
) -> None:
    stop = threading.Event()
    lock = threading.Lock()

    def client(index: int) -> None:
        with httpx.Client(base_url=url, timeout=120, headers=headers) as http:
            turn = index
            while not stop.is_set():
                name, data = images[turn % len(images)]
                turn += 1
                started = time.perf_counter()
                try:
                    response = http.post("/v1/ocr", files={"file": (name, data, "image/png")})
                    status, error = response.status_code, ""
                except httpx.HTTPError as exc:
                    status, error = -1, type(exc).__name__
                latency = time.perf_counter() - started
                with lock:
                    phase.statuses[status] += 1
                    if status == 200:
                        phase.latencies_ok.append(latency)
                    if error:
                        phase.errors[error] += 1
                if status == 503:
                    time.sleep(0.1)

    threads = [
        threading.Thread(target=client, args=(i,), daemon=True) for i in range(phase.clients)
    ]
    started = time.monotonic()
    for t in threads:
        t.start()
    time.sleep(phase.duration_s)
    stop.set()
    for t in threads:
        t.join(timeout=180)
    phase.elapsed_s = time.monotonic() - started


def sample_memory(pid: int, samples: list[MemorySample], stop: threading.Event, t0: float) -> None:
    while not stop.is_set():
        parent, total = rss_of(pid)
        samples.append(MemorySample(time.monotonic() - t0, parent, total))
        stop.wait(1.0)


def mib(n: float) -> str:
    return f"{n / 1024**2:.0f}"


def report(
    args: argparse.Namespace,
    url: str,
    phases: list[Phase],
    memory: dict[str, tuple[int, int]],
    peak: tuple[int, int],
    images: list[tuple[str, bytes]],
    metrics_text: str,
) -> str:
    cpu = cpu_identity()
    lines = [
        f"# ocrmill serve load test, {dt.datetime.now().isoformat(timespec='seconds')}",
        "",
        f"- server: {url} ({'fake engine' if args.fake else 'real PP-OCR models'}), "
        f"workers={args.workers}, max-queue={args.max_queue}",
        f"- machine: {os.cpu_count()} CPUs ({cpu}), Python {platform.python_version()}",
        f"- images: {len(images)} files, {sum(len(d) for _, d in images) / 1024:.0f} KiB in all "
        f"({'fake-engine payloads' if args.fake else args.images or 'rendered pages'})",
        "- each client: one connection, POST /v1/ocr back to back; 0.1 s pause after a 503",
        "",
        "| phase | clients | seconds | requests | 200/s | p50 ms | p99 ms | statuses |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for p in phases:
        statuses = ", ".join(f"{k}: {v}" for k, v in sorted(p.statuses.items()))
        lines.append(
            f"| {p.name} | {p.clients} | {p.elapsed_s:.0f} | {sum(p.statuses.values())} | "
            f"{p.ok / p.elapsed_s:.2f} | {p.percentile(0.50) * 1000:.0f} | "
            f"{p.percentile(0.99) * 1000:.0f} | {statuses} |"
        )
    lines += [
        "",
        "| server RSS (MiB) | parent | parent + workers |",
        "|---|---|---|",
    ]
    for label, (parent, total) in memory.items():
        lines.append(f"| {label} | {mib(parent)} | {mib(total)} |")
    lines.append(f"| peak during load | {mib(peak[0])} | {mib(peak[1])} |")
    bad = {k: v for p in phases for k, v in p.statuses.items() if k not in ALLOWED}
    errors = sum((p.errors for p in phases), Counter())
    lines += [
        "",
        f"Statuses other than 200/503: {bad or 'none'}; client errors: {dict(errors) or 'none'}.",
    ]
    wanted = ("ocrmill_worker_restarts_total", "ocrmill_errors_total")
    picked = [
        line
        for line in metrics_text.splitlines()
        if line.startswith(wanted) and not line.endswith(" 0.0")
    ]
    if picked:
        lines += ["", "Server counters at the end (non-zero):", "", "```", *picked, "```"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--duration", type=float, default=60.0, help="steady phase seconds")
    parser.add_argument("--overload-clients", type=int, default=64)
    parser.add_argument("--overload-duration", type=float, default=20.0, help="0: skip")
    parser.add_argument("--images", type=Path, default=None)
    parser.add_argument("--workers", default="auto")
    parser.add_argument("--max-queue", type=int, default=32)
    parser.add_argument("--url", help="use a running server instead of starting one")
    parser.add_argument("--pid", type=int, help="the --url server's pid, for its RSS")
    parser.add_argument("--api-key", default=os.environ.get("OCRMILL_API_KEY"))
    parser.add_argument("--fake", action="store_true", help="fake engine: test this harness")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)

    if args.fake:
        images = [(f"fake{i}.png", f"slow:0.05:fake {i}".encode()) for i in range(4)]
    else:
        images = load_images(args.images or DEFAULT_IMAGES)
        if args.images is None and DEFAULT_IMAGES.is_dir():
            args.images = DEFAULT_IMAGES
    headers = {"Authorization": f"Bearer {args.api_key}"} if args.api_key else {}
    proc = None
    tmp = tempfile.TemporaryDirectory(prefix="ocrmill-load-")
    try:
        if args.url:
            url, pid = args.url.rstrip("/"), args.pid
        else:
            url, proc = start_server(args, Path(tmp.name) / "data", Path(tmp.name) / "server.log")
            pid = proc.pid
        print(f"load_server: waiting for {url}/readyz", file=sys.stderr)
        wait_ready(url)
        with httpx.Client(base_url=url, timeout=120, headers=headers) as http:
            for name, data in images:  # one pass alone: first-call costs out of the numbers
                http.post("/v1/ocr", files={"file": (name, data, "image/png")})
        time.sleep(1)
        memory: dict[str, tuple[int, int]] = {}
        if pid:
            memory["start (ready, idle)"] = rss_of(pid)
        samples: list[MemorySample] = []
        stop = threading.Event()
        sampler = None
        if pid:
            sampler = threading.Thread(
                target=sample_memory, args=(pid, samples, stop, time.monotonic()), daemon=True
            )
            sampler.start()
        phases = [Phase("steady", args.clients, args.duration)]
        if args.overload_duration > 0:
            phases.append(Phase("overload", args.overload_clients, args.overload_duration))
        for phase in phases:
            print(
                f"load_server: {phase.name}: {phase.clients} clients for {phase.duration_s:g} s",
                file=sys.stderr,
            )
            run_phase(url, phase, images, headers)
            print(f"load_server: {phase.name}: {dict(phase.statuses)}", file=sys.stderr)
        stop.set()
        time.sleep(3)  # idle again: queues drained
        if pid:
            memory["end (after load, idle)"] = rss_of(pid)
        peak = (
            max((s.parent for s in samples), default=0),
            max((s.total for s in samples), default=0),
        )
        metrics_text = httpx.get(f"{url}/metrics", timeout=30).text
    finally:
        if proc is not None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
        tmp.cleanup()
    text = report(args, url, phases, memory, peak, images, metrics_text)
    out = args.out or RESULTS_DIR / f"server_load_{dt.datetime.now():%Y%m%d-%H%M%S}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(text)
    print(f"load_server: report written to {out}", file=sys.stderr)
    bad = [s for p in phases for s in p.statuses if s not in ALLOWED]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
