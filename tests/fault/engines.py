"""Fake engines for runtime tests: no models, behaviour chosen by each input's bytes.

An input is ``bytes`` (or a path to a file holding them, or a PNG file whose ``command`` text
chunk holds one, so a page can have a real size) with a command:

* ``ok:TEXT`` - read ``TEXT``;  ``slow:SECONDS:TEXT`` - the same after sleeping;
* ``wait:PATH:TEXT`` - read ``TEXT`` once the file ``PATH`` exists (a gate the test opens, so
  the order of events is the test's, not the machine's speed; gives up after
  ``GATE_TIMEOUT_S``);
* ``crash`` - SIGKILL the worker;  ``crash-once:MARKER`` - SIGKILL unless MARKER exists
  (then create it), so a retry succeeds;
* ``hang`` - sleep for an hour;  ``leak:MB:TEXT`` - keep MB megabytes allocated forever;
* ``buffer:MB:TEXT`` - keep MB megabytes until the engine's ``release_memory`` (as a real
  engine keeps its models' buffers);  ``released`` - read how many times
  ``release_memory`` has been called;
* ``heap:MB`` - read where the C heap put an MB-megabyte block allocated after one of the
  same size was freed: ``mapped`` (its own mapping) or ``heap`` (see ``heap_block``);
* ``module:NAME`` - read whether module ``NAME`` is loaded in the worker (``module_state``);
* ``arena`` - read where another thread's small blocks come from (``thread_arena``);
* ``bad`` - an input error record;  ``gpu-oom:TEXT`` - a ``resource_limit`` record on a GPU
  worker (out of GPU memory), ``TEXT`` read on a CPU worker.

With ``FAKE_ENGINE_READ_LOG=PATH`` in the environment, every input's name is appended to
``PATH`` as it is read (one line each), so a test can check the order inputs were read in;
with ``FAKE_ENGINE_BATCH_LOG=PATH``, the size of every batch the engine is given. A rendered
page (a PDF page, pixels) reads as ``page WIDTHxHEIGHT``.

Workers import this module by the factory path ``tests.fault.engines:fake_engine``.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from ocrmill.errors import CorruptImageError, ResourceLimitError
from ocrmill.results import PageFailure, PageResult, TextLine

_LEAKED: list[bytearray] = []
_BUFFERS: list[bytearray] = []
READ_LOG_ENV = "FAKE_ENGINE_READ_LOG"
BATCH_LOG_ENV = "FAKE_ENGINE_BATCH_LOG"
GATE_TIMEOUT_S = 120.0


def _wait_for_gate(path: Path) -> None:
    deadline = time.monotonic() + GATE_TIMEOUT_S
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.01)


def _log_read(name: str) -> None:
    log = os.environ.get(READ_LOG_ENV)
    if log:
        with open(log, "a", encoding="utf-8") as fh:
            fh.write(name + "\n")


def read_in_a_worker(command: str) -> Any:
    """The result one pool worker running the fake engine gives for ``command``."""
    from ocrmill.config import Config
    from ocrmill.runtime.plan import WorkerPlan, WorkerSlot
    from ocrmill.runtime.pool import PoolConfig, WorkerPool
    from ocrmill.tasks import Task

    plan = WorkerPlan((WorkerSlot("cpu", 1),), ())
    pool_config = PoolConfig(engine_factory="tests.fault.engines:fake_engine", warmup=False)
    with WorkerPool(plan, Config(), pool_config) as pool:
        task = Task(id=pool.new_task_id(), source=command.encode(), name=command)
        return pool.submit(task).result(timeout=60)


def module_state(name: str) -> str:
    """``loaded``, ``left out`` (its import made to fail) or ``absent``: module ``name`` in
    this process."""
    if name not in sys.modules:
        return "absent"
    return "left out" if sys.modules[name] is None else "loaded"


def thread_arena() -> str:
    """Where a new thread's blocks come from: ``main`` (glibc's main heap) or ``own`` (an
    arena of another heap), read from the NON_MAIN_ARENA bit of a block's chunk header;
    ``unknown`` where the C library is not glibc >= 2.33."""
    import ctypes

    libc = _glibc()
    if libc is None:
        return "unknown"
    seen: list[str] = []

    def allocate() -> None:
        block = libc.malloc(64 * 1024)  # under the mmap threshold: an arena's chunk
        header = ctypes.c_size_t.from_address(block - ctypes.sizeof(ctypes.c_size_t)).value
        seen.append("own" if header & 0x4 else "main")
        libc.free(block)

    thread = threading.Thread(target=allocate)
    thread.start()
    thread.join()
    return seen[0]


def _glibc() -> Any:
    """The C library with ``mallinfo2``, ``malloc`` and ``free`` typed, or None."""
    import ctypes

    libc = ctypes.CDLL(None)
    if not hasattr(libc, "mallinfo2"):
        return None

    class MallInfo2(ctypes.Structure):
        _fields_ = [
            (name, ctypes.c_size_t)
            for name in (
                "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
                "uordblks", "fordblks", "keepcost",
            )
        ]  # fmt: skip

    libc.mallinfo2.restype = MallInfo2
    libc.malloc.restype = ctypes.c_void_p
    libc.free.argtypes = [ctypes.c_void_p]
    return libc


def heap_block(mb: int) -> str:
    """Allocate and free an ``mb``-megabyte block with the C library's malloc, then allocate
    one of the same size again and say where glibc put it: ``mapped`` (a mapping of its own,
    which ``mallinfo2`` counts in ``hblks``) or ``heap``. Without a fixed mmap threshold,
    glibc raises the threshold to a freed mapped block's size, so the second block is served
    from the heap. ``unknown`` where the C library has no ``mallinfo2`` (not glibc >= 2.33)."""
    libc = _glibc()
    if libc is None:
        return "unknown"
    size = mb * 1024 * 1024
    libc.free(libc.malloc(size))
    before = libc.mallinfo2().hblks
    block = libc.malloc(size)
    mapped = libc.mallinfo2().hblks > before
    libc.free(block)
    return "mapped" if mapped else "heap"


def _png_text(data: bytes, key: str) -> str:
    """A PNG's ``tEXt`` value for ``key``, read from the chunks (never decoding the pixels,
    which for a huge test page would take longer than the test's deadlines allow)."""
    import struct

    at = 8
    while at + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[at : at + 8])
        body = data[at + 8 : at + 8 + length]
        if kind == b"tEXt" and body.split(b"\0", 1)[0] == key.encode():
            return body.split(b"\0", 1)[1].decode("latin-1")
        at += 12 + length
    raise ValueError(f"no tEXt {key!r} in the PNG")


class FakeEngine:
    def __init__(self, crash_on_start: bool = False, device: str = "cpu") -> None:
        self.device = device
        self.releases = 0
        if crash_on_start:
            os.kill(os.getpid(), signal.SIGKILL)

    def warmup(self) -> None:
        pass

    def release_memory(self) -> None:
        self.releases += 1
        _BUFFERS.clear()

    def _read_one(self, source: Any, name: str) -> PageResult | PageFailure:
        pixels = getattr(source, "pixels", source)  # a rendered page: a DecodedImage
        if hasattr(pixels, "shape"):
            height, width = pixels.shape[:2]
            source = f"ok:page {width}x{height}".encode()
        data = source if isinstance(source, bytes) else Path(source).read_bytes()
        if data.startswith(b"\x89PNG"):
            data = _png_text(data, "command").encode()
        command = data.decode()
        _log_read(name)
        if command.startswith("wait:"):
            _, gate, command = command.split(":", 2)
            _wait_for_gate(Path(gate))
        if command.startswith("slow:"):
            _, seconds, command = command.split(":", 2)
            time.sleep(float(seconds))
        if command == "crash":
            os.kill(os.getpid(), signal.SIGKILL)
        if command.startswith("crash-once:"):
            marker = Path(command.split(":", 1)[1])
            if not marker.exists():
                marker.touch()
                os.kill(os.getpid(), signal.SIGKILL)
            command = "ok:survived"
        if command == "hang":
            time.sleep(3600)
        if command.startswith(("leak:", "buffer:")):
            kind, mb, command = command.split(":", 2)
            block = bytearray(int(mb) * 1024 * 1024)
            block[::4096] = b"x" * len(block[::4096])  # touch every page so RSS grows
            (_LEAKED if kind == "leak" else _BUFFERS).append(block)
        if command == "released":
            command = f"ok:{self.releases}"
        if command.startswith("heap:"):
            command = "ok:" + heap_block(int(command.split(":", 1)[1]))
        if command == "arena":
            command = "ok:" + thread_arena()
        if command.startswith("module:"):
            command = "ok:" + module_state(command.split(":", 1)[1])
        if command.startswith("gpu-oom:"):
            if self.device != "cpu":
                err = ResourceLimitError(f"{name}: CUDA out of memory (fake)")
                return PageFailure.from_error(name, err)
            command = "ok:" + command.split(":", 1)[1] + f" on {self.device}"
        if command == "bad":
            return PageFailure.from_error(name, CorruptImageError(f"{name}: bad on purpose"))
        text = command.split(":", 1)[1] if command.startswith("ok:") else command
        box = ((0.0, 0.0), (10.0, 0.0), (10.0, 10.0), (0.0, 10.0))
        return PageResult(
            input=name,
            width=10,
            height=10,
            lines=(TextLine(text, 1.0, box),),
            timings_ms={"total": 0.0},
        )

    def read_many(self, images: Any, *, options: Any = None, names: Any = None) -> list[Any]:
        names = names or [str(i) for i in images]
        log = os.environ.get(BATCH_LOG_ENV)
        if log:
            with open(log, "a", encoding="utf-8") as fh:
                fh.write(f"{len(images)}\n")
        return [self._read_one(src, name) for src, name in zip(images, names)]


def fake_engine(config: Any, device: str, threads: int) -> FakeEngine:
    return FakeEngine(device=device)


def crashing_at_start(config: Any, device: str, threads: int) -> FakeEngine:
    return FakeEngine(crash_on_start=True)


def failing_at_start(config: Any, device: str, threads: int) -> FakeEngine:
    from ocrmill.errors import ModelError

    raise ModelError("/models/missing_rec.onnx not found (on purpose)")


def slow_to_start(config: Any, device: str, threads: int) -> FakeEngine:
    time.sleep(1.0)
    return FakeEngine(device=device)


def hanging_at_start(config: Any, device: str, threads: int) -> FakeEngine:
    time.sleep(3600)
    return FakeEngine()


def hanging_at_restart(config: Any, device: str, threads: int) -> FakeEngine:
    """Starts once; every later start hangs (the marker file named by the
    ``OCRMILL_TEST_STARTED`` environment variable remembers the first)."""
    marker = Path(os.environ["OCRMILL_TEST_STARTED"])
    if marker.exists():
        time.sleep(3600)
    marker.touch()
    return FakeEngine(device=device)


class BoxEngine:
    """For video and document tests: reads RGB arrays (or decoded pages) without models. Every dark region (grey < 100) is
    one line whose box is the region's bounding rectangle (pixel edges) and whose text is
    ``v<N>``, N being the red value at pixel (2, 2) (tests encode the frame index there)."""

    def __init__(self, delay_s: float = 0.0) -> None:
        self.delay_s = delay_s

    def warmup(self) -> None:
        pass

    def _read_array(self, pixels: Any, name: str) -> PageResult:
        time.sleep(self.delay_s)
        import cv2
        import numpy as np

        from ocrmill.pipeline.decode import DecodedImage

        page = None
        if isinstance(pixels, DecodedImage):  # a page of a PDF or multi-page image
            pixels, page = pixels.pixels, pixels.page

        gray = cv2.cvtColor(np.ascontiguousarray(pixels), cv2.COLOR_RGB2GRAY)
        count, _, stats, _ = cv2.connectedComponentsWithStats((gray < 100).astype(np.uint8))
        tag = f"v{int(pixels[2, 2, 0])}"
        lines = []
        for x, y, w, h, _area in stats[1:count]:
            box = ((x, y), (x + w, y), (x + w, y + h), (x, y + h))
            lines.append(TextLine(tag, 1.0, tuple((float(a), float(b)) for a, b in box)))  # type: ignore[arg-type]
        height, width = gray.shape
        return PageResult(name, width, height, tuple(lines), {"total": 0.0}, page=page)

    def read_many(self, images: Any, *, options: Any = None, names: Any = None) -> list[Any]:
        names = names or [str(i) for i in range(len(images))]
        return [self._read_array(src, name) for src, name in zip(images, names)]


def box_engine(config: Any, device: str, threads: int) -> BoxEngine:
    return BoxEngine()


def slow_box_engine(config: Any, device: str, threads: int) -> BoxEngine:
    """A BoxEngine slower than frame decoding (0.1 s per frame): backpressure shows."""
    return BoxEngine(delay_s=0.1)
