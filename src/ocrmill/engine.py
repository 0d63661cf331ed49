"""The OCR engine: composes the pipeline stages over one set of backends.

An ``Engine`` owns its inference sessions and is used from one thread (one engine per
worker process in the runtime). Per-call options are arguments, never engine state. The
stage loops live in ``pipeline/``; what is left here (~400 lines) is the order of the stages,
the attribution of shared stage time to pages, and the page-rotation passes, which need the
models and so cannot be pure pipeline functions.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ocrmill.backends import create_backend
from ocrmill.backends.base import InferenceBackend, cache_root
from ocrmill.backends.factory import resolve_backend_name
from ocrmill.backends.restricted import restrict_recognizer
from ocrmill.backends.split import run_splitting
from ocrmill.config import Config, ReadOptions, RecOptions
from ocrmill.errors import InternalError, ModelError, OcrmillError, ResourceLimitError
from ocrmill.models import (
    ModelFiles,
    ctc_vocabulary,
    parse_character_list,
    read_dict_file,
    resolve_models,
)
from ocrmill.pipeline import (
    classify,
    detect,
    layout,
    leaders,
    recognize,
    regions,
    rotation,
    straighten,
    textness,
    tiling,
    words,
)
from ocrmill.pipeline.crop import crop_quads
from ocrmill.pipeline.decode import DecodedImage, ImageSource, decode_image
from ocrmill.pipeline.latin_first import LatinFirst
from ocrmill.pipeline.recognize import Reading
from ocrmill.results import (
    PageFailure,
    PageResult,
    Result,
    TextBlock,
    TextLine,
    Word,
    make_quad,
    make_score,
)


def _input_label(image: object, name: str | None) -> str:
    """How a result record names its input: the given name, the path, or the kind."""
    if name:
        return name
    if isinstance(image, (str, os.PathLike)):
        return os.fspath(image)
    if isinstance(image, DecodedImage):
        return image.name
    return f"<{type(image).__name__}>"


log = logging.getLogger(__name__)

# GPU detection batches: detector inputs padded up to multiples of this many pixels, so
# pages of similar size share a batch; at most this many pages per detector call.
DET_BUCKET = 128
DET_MAX_BATCH = 8
# The longest boxes of a page found sideways that the classifier looks at to tell 90 from
# 270 degrees before the page is detected again the right way up.
SIDEWAYS_CHECK_LINES = 16
_NO_QUADS = np.zeros((0, 4, 2), np.float32)


def _ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000.0


@dataclass
class _Page:
    """A page between stages inside one ``read_many`` call."""

    image: DecodedImage
    quads: np.ndarray  # corners rolled so that each starts at its text's upright top-left
    crops: list[np.ndarray]
    timings: dict[str, float] = field(default_factory=dict)
    readings: list[Reading] = field(default_factory=list)
    rotation: int = 0
    faced: bool = False  # a sideways page the classifier turned over before it was read
    faces_known: bool = False  # the sideways page's turn (90 or 270) is settled
    # A skewed page is read turned level (``image`` then holds the level pixels); the
    # result's boxes are mapped back to the input's pixels through this.
    level: straighten.Straightened | None = None


class Engine:
    """PP-OCR detection, orientation and recognition on one backend per model.

    >>> engine = Engine()                      # the models the rapidocr wheel ships
    >>> engine.read("receipt.jpg").text        # doctest: +SKIP
    """

    def __init__(self, config: Config | None = None) -> None:
        self.config = config or Config()
        self.files: ModelFiles = self._recognizer_files()
        self._on_cpu = self.config.backend.device == "cpu"
        # Pages read as a pipeline (``_read_pipelined``) may call one model from two
        # threads; each model runs one call at a time.
        self._model_locks = {role: threading.Lock() for role in ("det", "cls", "rec", "layout")}
        self._det = create_backend(self.files.det, self.config.backend, "det")
        self._rec = create_backend(self.files.rec, self.config.backend, "rec")
        self._cls = create_backend(self.files.cls, self.config.backend, "cls")
        # Finds tables for the layout, when a layout model is installed (regions.py) and
        # the engine's options may ask for tables (--tables off, --layout lines: never
        # loaded; a call that asks for them then reads tables from their lines). On a CPU
        # the shipped model is loaded by the first page that asks for tables (columns read
        # side by side): a worker that never sees one keeps ~35 MiB and ~0.1 s of start-up
        # (none of the 30 images of benchmarks/run_throughput.py asks; its tree peaked at
        # 827 against 870 MiB in
        # benchmarks/results/run_throughput_20261207-lazy-layout-xeon207.md and
        # -before-lazy-layout-xeon207.md). A model the user names is loaded now, so that
        # a broken one is refused at start; so is a GPU engine's, whose memory after
        # warm-up sizes the workers.
        self._layout: InferenceBackend | None = None
        self._layout_pending = False
        wanted = self.config.read.layout
        if self.files.layout is not None and wanted.tables == "auto" and wanted.mode == "auto":
            if self.config.models.layout is None and self._on_cpu:
                self._layout_pending = True
            else:
                self._layout = self._load_layout()
        self._latin_first: LatinFirst | None = None
        if self.files.rec_head is not None:
            from ocrmill.backends.onnx import OnnxBackend

            # Run between the recognizer's runs: with spinning threads it made them ~1.9x
            # slower (20 ICDAR images, 2 threads: recognize 1.40 s against 0.74 s).
            head = OnnxBackend(self.files.rec_head, self.config.backend, spinning=False)

            def whole_head(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
                idx, best = head.run_all(features)
                return idx, best

            self._latin_first = LatinFirst.from_metadata(whole_head, head.metadata())
        self.vocabulary = self._load_vocabulary()
        # Batching detection pays on GPUs; on CPUs it only adds padding work, and the pages
        # of one call are read as a pipeline instead (``_read_pipelined``).
        self._batch_detection = not self._on_cpu

    # -- construction ---------------------------------------------------------------

    def _recognizer_files(self) -> ModelFiles:
        """The model files, the recognizer restricted to the charset. ``auto`` is the Latin
        head with the whole head beside it on a CPU backend that returns both of the
        model's outputs, and ``all`` elsewhere (on a GPU the whole head costs little) or
        for a recognizer whose head cannot be restricted."""
        files = resolve_models(self.config.models)
        charset = self.config.models.charset
        cache = cache_root(self.config.backend)
        if charset == "auto" and (
            self.config.backend.device != "cpu"
            or resolve_backend_name(self.config.backend, "rec") == "torch"
        ):
            charset = "all"
        try:
            return restrict_recognizer(files, charset, cache)
        except ModelError as exc:
            if charset != "auto":
                raise
            log.warning("charset auto: %s; reading with every script", exc)
            return files

    def _load_vocabulary(self) -> list[str]:
        """The vocabulary the recognizer's classes decode to, checked against its output
        on a test line. With charset ``auto`` it is the whole head's (its metadata), and the
        Latin recognizer's own file is not parsed for its character list."""
        if self._latin_first is None:
            if self.files.rec_dict is not None:
                chars, source = read_dict_file(self.files.rec_dict), str(self.files.rec_dict)
            else:
                meta = self._rec.metadata().get("character")
                if not meta:
                    raise ModelError(
                        f"recognition model {self.files.rec} has no 'character' metadata; "
                        "pass its dictionary file with --rec-dict"
                    )
                chars, source = parse_character_list(meta), f"{self.files.rec} metadata"
        # The narrowest width lines are read at, so the test line's shape is one that
        # lines reuse (a backend that compiles per shape pays for no extra one).
        width = recognize.width_bucket(
            self.config.read.rec.min_width, self.config.read.rec.width_step
        )
        probe = np.zeros((1, 3, recognize.REC_HEIGHT, width), dtype=np.float32)
        try:
            num_classes = int(self._rec.run(probe).shape[-1])
        except Exception as exc:
            raise ModelError(
                f"recognition model {self.files.rec} failed on a test input: {exc}"
            ) from None
        if self._latin_first is not None:
            if num_classes != len(self._latin_first.keep):
                raise ModelError(
                    f"recognition model {self.files.rec} has {num_classes} classes, its whole "
                    f"head {self.files.rec_head} names {len(self._latin_first.keep)}"
                )
            return self._latin_first.vocabulary
        return ctc_vocabulary(chars, num_classes, source)

    def _load_layout(self) -> InferenceBackend | None:
        """The layout model on its backend; the one an installed wheel ships is optional:
        where it does not load, tables are read from their lines alone (as with --tables
        off) and this says why. A model the user names raises."""
        assert self.files.layout is not None
        try:
            return create_backend(self.files.layout, self.config.backend, "layout")
        except Exception:
            if self.config.models.layout is not None:  # the user's model: theirs to fix
                raise
            log.warning(
                "layout model %s not loaded; tables read from lines",
                self.files.layout,
                exc_info=True,
            )
            return None

    def _layout_model(self) -> InferenceBackend | None:
        """The layout model, loaded on the first call where it waits to be."""
        if self._layout_pending:
            self._layout_pending = False
            self._layout = self._load_layout()
        return self._layout

    @property
    def providers(self) -> dict[str, tuple[str, ...]]:
        """Execution providers that actually loaded, per model (the layout model once it
        has loaded)."""
        loaded = {
            "det": self._det.providers,
            "rec": self._rec.providers,
            "cls": self._cls.providers,
        }
        if self._layout is not None:
            loaded["layout"] = self._layout.providers
        return loaded

    def warmup(self) -> None:
        """Run each model once so first-call costs are paid up front.

        A GPU engine warms up at its largest batches (``DET_MAX_BATCH`` full-size pages, full
        recognition batches): the memory a GPU worker reports after warm-up, which the
        planner sizes instances by, is then its peak, not a small page's.
        """
        if not self._batch_detection:
            page = np.full((96, 320, 3), 255, dtype=np.uint8)
            page[40:56, 20:300] = 0
            self.read(page, name="<warmup>")
            return
        side = self.config.read.det.limit_side_len
        page = np.full((side * 3 // 4, side, 3), 255, dtype=np.uint8)
        for y in range(24, page.shape[0] - 40, 40):  # dark bars: many wide text-like crops
            page[y : y + 16, 16 : side - 16] = 0
        self.read_many([page] * DET_MAX_BATCH, names=["<warmup>"] * DET_MAX_BATCH)

    def release_memory(self) -> None:
        """Hand back the buffers the models keep between calls, for a process about to sit
        idle; the next page allocates them again. On OpenVINO a worker that had read the
        4-page scan of ``benchmarks/searchable_pdf.py`` went from 759 to 424 MiB, and its
        magazine page read again took 2.57 against 2.42 s (median of 15, Intel Xeon
        family 6 model 207; the detector alone ~75 ms of that). A pool worker calls it
        once it has waited ``PoolConfig.release_after_idle_s`` for work. Safe beside a call
        in progress: each model waits for its own."""
        loaded = {"det": self._det, "rec": self._rec, "cls": self._cls, "layout": self._layout}
        for role, backend in loaded.items():
            if backend is not None:
                with self._model_locks[role]:
                    backend.release_memory()

    # -- public API -----------------------------------------------------------------

    def read(
        self, image: ImageSource, *, options: ReadOptions | None = None, name: str | None = None
    ) -> PageResult:
        """Read one image. Raises :class:`~ocrmill.errors.InputError` for bad input."""
        result = self.read_many([image], options=options, names=[name] if name else None)[0]
        if isinstance(result, PageFailure):
            raise result.to_error()
        return result

    def skew(self, image: ImageSource, *, name: str | None = None) -> float:
        """The page's skew in radians (positive when its lines fall to the right, so that
        turning it counter-clockwise by as much levels them), from its detected lines
        alone: nothing is recognized. A sideways page's lines are measured as it reads
        upright. Raises :class:`~ocrmill.errors.InputError` for bad input."""
        opts = self.config.read
        slot = self._decode(image, name)
        if isinstance(slot, PageFailure):
            raise slot.to_error()
        assert isinstance(slot, _Page)
        pixels = slot.image.pixels
        quads, _ = self._detect(pixels, opts)
        if len(quads) and rotation.sideways(quads):
            h, w = pixels.shape[:2]
            quads = rotation.to_upright(quads, 270, w, h)  # a quarter turn keeps the skew
        return layout.skew_angle(np.asarray(quads, np.float64))

    def read_many(
        self,
        images: Sequence[ImageSource | DecodedImage],
        *,
        options: ReadOptions | None = None,
        names: Sequence[str | None] | None = None,
    ) -> list[Result]:
        """Read several images: on a GPU batching detection and recognition across them,
        on a CPU as a pipeline (the next image detected while this one is read).

        Never raises for a bad input: each input yields a :class:`PageResult` or a
        :class:`PageFailure`, in input order.
        """
        opts = options or self.config.read
        names = list(names) if names is not None else [None] * len(images)
        if len(names) != len(images):
            raise ValueError("names must have one entry per image")
        if not self._batch_detection and len(images) > 1:
            return self._read_pipelined(images, names, opts)
        decoded = [self._decode(image, name) for image, name in zip(images, names)]
        return self._read_detected(self._detect_pages(decoded, opts), opts)

    def _read_pipelined(
        self,
        images: Sequence[ImageSource | DecodedImage],
        names: Sequence[str | None],
        opts: ReadOptions,
    ) -> list[Result]:
        """Read pages one after the other while a helper thread decodes and detects the
        next one: one core's Python and OpenCV work on a page (decoding, boxes, crops,
        words, layout) overlaps the other page's inference, and no more than one page
        waits ahead. Recognition is batched within a page, which on a CPU reads as fast
        as across pages (``RecOptions.cpu_max_batch_pixels``)."""
        ahead: queue.Queue[Result | _Page | BaseException] = queue.Queue()
        turn = threading.Semaphore(1)  # the helper's leave to start on the next page
        stop = threading.Event()

        def detect_ahead() -> None:
            for image, name in zip(images, names):
                turn.acquire()
                if stop.is_set():
                    return
                try:
                    ahead.put(self._detect_pages([self._decode(image, name)], opts)[0])
                except BaseException as exc:  # handed to the caller's thread, raised there
                    ahead.put(exc)
                    return

        helper = threading.Thread(target=detect_ahead, name="ocrmill-detect-ahead", daemon=True)
        helper.start()
        out: list[Result] = []
        try:
            for _ in images:
                slot = ahead.get()
                turn.release()
                if isinstance(slot, BaseException):
                    raise slot
                out.extend(self._read_detected([slot], opts))
        finally:
            stop.set()
            turn.release()
            helper.join()
        return out

    def _read_detected(self, slots: list[Result | _Page], opts: ReadOptions) -> list[Result]:
        """Recognize and lay out the detected pages among ``slots`` (failures pass)."""
        pages = [p for p in slots if isinstance(p, _Page)]
        try:
            self._classify_and_recognize(pages, opts)
        except ResourceLimitError as exc:  # out of memory even one crop at a time
            err: OcrmillError = exc
        except OcrmillError:
            raise
        except Exception as exc:  # a bug or backend failure: fail these pages, not the caller
            err = InternalError(f"recognition failed: {type(exc).__name__}: {exc}")
        else:
            return [self._finish(s, opts) if isinstance(s, _Page) else s for s in slots]
        return [
            PageFailure.from_error(s.image.name, err, s.image.page) if isinstance(s, _Page) else s
            for s in slots
        ]

    # -- model calls: each halves its batch while the device runs out of memory ------------

    def _run_det(self, batch: np.ndarray) -> np.ndarray:
        with self._model_locks["det"]:
            return run_splitting(self._det.run, batch)

    def _run_cls(self, batch: np.ndarray) -> np.ndarray:
        with self._model_locks["cls"]:
            return run_splitting(self._cls.run, batch)

    def _run_rec(
        self, batch: np.ndarray, latin_below: float = 0.0
    ) -> tuple[np.ndarray, np.ndarray]:
        with self._model_locks["rec"]:
            idx, best = run_splitting(lambda b: self._rec_top1(b, latin_below), batch)
        return idx, best

    def _rec_top1(self, batch: np.ndarray, latin_below: float) -> tuple[np.ndarray, np.ndarray]:
        """Best class and its probability per time step; on the device when it can. With
        charset ``auto``, rows the Latin head reads under ``latin_below`` are scored by the
        whole head."""
        if self._latin_first is not None:
            probs, features = self._rec.run_all(batch)[:2]
            return self._latin_first.top1(probs, features, latin_below)
        return self._rec.run_top1(batch)

    # -- stages -----------------------------------------------------------------------

    def _decode(self, image: ImageSource | DecodedImage, name: str | None) -> Result | _Page:
        t0 = time.perf_counter()
        try:
            decoded = (
                image
                if isinstance(image, DecodedImage)
                else decode_image(image, max_pixels=self.config.decode.max_pixels, name=name)
            )
        except OcrmillError as exc:
            return PageFailure.from_error(_input_label(image, name), exc)
        if name and decoded.name != name:  # e.g. a PDF page rendered from a stored file
            decoded = dataclasses.replace(decoded, name=name)
        return _Page(image=decoded, quads=_NO_QUADS, crops=[], timings={"decode": _ms(t0)})

    def _detect_pages(self, slots: list[Result | _Page], opts: ReadOptions) -> list[Result | _Page]:
        """Find and crop the text boxes of every decoded page; a failure fails its page only.

        On a GPU, pages the detector sees whole are detected in batches first; a page whose
        batch failed, a tiled page, and every page on a CPU are detected alone.
        """
        pages = [s for s in slots if isinstance(s, _Page)]
        batched: dict[int, np.ndarray] = {}
        if self._batch_detection:
            whole = [p for p in pages if not tiling.needs_tiles(p.image.pixels, opts.tile)]
            t0 = time.perf_counter()
            found = detect.detect_batched(
                [p.image.pixels for p in whole],
                opts.det,
                self._run_det,
                bucket=DET_BUCKET,
                max_batch=DET_MAX_BATCH,
            )
            share = _ms(t0) / max(1, len(whole))
            for page, boxes in zip(whole, found):
                if boxes is not None:
                    batched[id(page)] = boxes[0]
                    page.timings["detect"] = share
        out: list[Result | _Page] = []
        for slot in slots:
            if not isinstance(slot, _Page):
                out.append(slot)
                continue
            page = slot
            try:
                if id(page) in batched:
                    page.quads = batched[id(page)]
                else:
                    t1 = time.perf_counter()
                    page.quads, _ = self._detect(page.image.pixels, opts)
                    page.timings["detect"] = _ms(t1)
                if opts.layout.rotation == "auto":
                    t1 = time.perf_counter()
                    turn = 270 if rotation.sideways(page.quads) else 0  # may become 90
                    if turn and opts.cls.enabled:
                        turn = self._sideways_turn(page, opts)
                    if self._straighten(page, turn, opts) or turn:
                        page.quads = self._detect_upright(page.image.pixels, turn, opts)
                        page.rotation = turn
                    page.timings["detect"] += _ms(t1)
                t2 = time.perf_counter()
                page.crops = crop_quads(page.image.pixels, page.quads)
                page.timings["crop"] = _ms(t2)
            except OcrmillError as exc:
                out.append(PageFailure.from_error(page.image.name, exc, page.image.page))
                continue
            except Exception as exc:
                err = InternalError(f"detection failed: {type(exc).__name__}: {exc}")
                out.append(PageFailure.from_error(page.image.name, err, page.image.page))
                continue
            out.append(page)
        return out

    def _sideways_turn(self, page: _Page, opts: ReadOptions) -> int:
        """The turn of a page found sideways, from the classifier's look at its longest
        boxes as found on the page as it stands: 90 or 270 where that is clear, so the page
        is detected again once, the right way up; otherwise 270, settled before reading by
        :meth:`_face_sideways_pages` on the boxes found at 270 (the detector finds a
        sideways page's lines less well)."""
        longest = rotation.longest_boxes(page.quads, SIDEWAYS_CHECK_LINES)
        crops = crop_quads(page.image.pixels, longest)
        turn = rotation.sideways_turn(*classify.turned_share(crops, opts.cls, self._run_cls))
        if turn is None:
            return 270
        page.faced, page.faces_known = turn == 90, True
        return turn

    def _straighten(self, page: _Page, turn: int, opts: ReadOptions) -> bool:
        """Whether the page was turned level: the lines of a page of text, read as the page
        stands turned by ``turn``, run one way, more than ``STRAIGHTEN_ABOVE`` off level
        (see ``pipeline/straighten.level_angle``). Its level pixels then replace the input's, and its
        boxes must be found again. A page read in tiles is left as it is: a second copy of a
        huge page is what tiling avoids."""
        pixels = page.image.pixels
        if not len(page.quads) or tiling.needs_tiles(pixels, opts.tile):
            return False
        h, w = pixels.shape[:2]
        angle = straighten.level_angle(rotation.to_upright(page.quads, turn, w, h))
        if angle is None:
            return False
        page.level = straighten.straighten(pixels, angle)
        page.image = dataclasses.replace(page.image, pixels=page.level.pixels)
        return True

    def _detect_upright(self, pixels: np.ndarray, turn: int, opts: ReadOptions) -> np.ndarray:
        """Detect a page again on its pixels turned upright by ``turn`` (``np.rot90``: an
        exact permutation, no resampling; 0 for a page turned level), boxes mapped back to
        ``pixels``. The detector
        finds the lines of a sideways page less well than upright ones (UNLV 8071 turned
        270: 17.15 % CER from crops of the sideways boxes, 2.00 % detected again; see
        benchmarks/results/layout_rolled-crops_20261201.md and layout_20261201-100637.md)."""
        h, w = pixels.shape[:2]
        found, _ = self._detect(np.rot90(pixels, -turn // 90), opts)
        return rotation.from_upright(found, turn, w, h).astype(np.float32)

    def _detect(self, pixels: np.ndarray, opts: ReadOptions) -> detect.Boxes:
        """Text boxes of a page in page pixels: one detector pass, or tiles for huge pages."""
        if tiling.needs_tiles(pixels, opts.tile):
            return tiling.detect_tiled(pixels, opts.det, opts.tile, self._run_det)
        return detect.detect_page(pixels, opts.det, self._run_det)

    def _classify_and_recognize(self, pages: list[_Page], opts: ReadOptions) -> None:
        crops = [c for p in pages for c in p.crops]
        owners = [i for i, p in enumerate(pages) for _ in p.crops]
        if not crops:
            for p in pages:
                p.timings["classify"] = p.timings["recognize"] = 0.0
            return
        # Shared stage time is attributed to pages by their share of crop width.
        weights = np.array([c.shape[1] / max(c.shape[0], 1) for c in crops], dtype=np.float64)
        share = np.bincount(owners, weights=weights, minlength=len(pages)) / weights.sum()
        t0 = time.perf_counter()
        probed: dict[int, Reading] = {}  # readings made before the rest, by crop index
        probe_ms = 0.0  # their reading time: the pages' recognition, not classification
        if opts.layout.rotation == "auto" and opts.cls.enabled:
            self._face_sideways_pages(pages, opts)  # may detect a page again
            if opts.cls.mode == "doubtful":
                probed, probe_ms = self._face_upside_down_pages(pages, opts)  # likewise
            crops = [c for p in pages for c in p.crops]
            owners = [i for i, p in enumerate(pages) for _ in p.crops]
        flips: list[bool] = []
        if opts.cls.enabled and opts.cls.mode == "always":
            flips = classify.upside_down_flags(crops, opts.cls, self._run_cls)
            crops = [classify.rotate_180(c) if f else c for c, f in zip(crops, flips)]
        cls_ms = _ms(t0) - probe_ms
        t1 = time.perf_counter()
        rest = [i for i in range(len(crops)) if i not in probed]
        read = dict(zip(rest, self._read_crops([crops[i] for i in rest], opts.rec)))
        readings = [probed[i] if i in probed else read[i] for i in range(len(crops))]
        readings = (
            [dataclasses.replace(r, flipped=True) if f else r for r, f in zip(readings, flips)]
            if flips
            else readings
        )
        rec_ms = _ms(t1) + probe_ms
        if opts.cls.enabled and opts.cls.mode == "doubtful":
            t2 = time.perf_counter()
            classify.reread_upside_down(
                crops, readings, opts.cls, self._run_cls, lambda c: self._read_crops(c, opts.rec)
            )
            cls_ms += _ms(t2)
        for owner, reading in zip(owners, readings):
            pages[owner].readings.append(reading)
        t3 = time.perf_counter()
        if opts.layout.rotation == "auto" and opts.cls.enabled:
            self._turn_upside_down_pages(pages, opts)
        turn_ms = _ms(t3)
        for i, p in enumerate(pages):
            p.timings["classify"] = float(cls_ms * share[i])
            p.timings["recognize"] = float(rec_ms * share[i])
            # Deciding the page's rotation (and reading a turned page again) is layout work.
            p.timings["layout"] = float(turn_ms * share[i])

    def _face_sideways_pages(self, pages: list[_Page], opts: ReadOptions) -> None:
        """Before anything is read: a sideways page (seen as 270 after detection) whose
        lines the classifier calls upside down is turned over to 90, so its lines are read
        once, the right way up, instead of read upside down, found doubtful and read again.
        A wrong call is undone after reading (see :meth:`_turn_upside_down_pages`)."""
        for p in pages:
            if p.faces_known:
                continue
            if p.rotation in (90, 270) and rotation.upside_down(
                *classify.turned_share(p.crops, opts.cls, self._run_cls)
            ):
                p.rotation = (p.rotation + 180) % 360
                p.faced = True
                # Detected again the right way up: boxes found on the page upside down
                # are not the upright page's (see _redetect_upright).
                self._detect_as_turned(p, opts)

    def _face_upside_down_pages(
        self, pages: list[_Page], opts: ReadOptions
    ) -> tuple[dict[int, Reading], float]:
        """Before the rest is read: the longest lines of each page that stands as detected
        are read (``rotation.probe_lines``). A page they read doubtful on and that the
        classifier calls upside down is turned over and detected again now, so its lines
        are read once, the right way up (a wrong call is undone after reading, as for any
        page, by :meth:`_turn_upside_down_pages`). Returns the readings of the other pages'
        probe lines, by their index among all the pages' crops, to keep, and the
        milliseconds spent reading the probe lines."""
        probes = {k: rotation.probe_lines(p.crops) for k, p in enumerate(pages) if p.rotation == 0}
        crops = [pages[k].crops[i] for k, lines in probes.items() for i in lines]
        if not crops:
            return {}, 0.0
        t0 = time.perf_counter()
        found = iter(self._read_crops(crops, opts.rec))
        read_ms = _ms(t0)
        readings = {k: {i: next(found) for i in lines} for k, lines in probes.items()}
        for k, by_line in readings.items():
            p = pages[k]
            if rotation.doubtful(list(by_line.values())) and rotation.upside_down(
                *classify.turned_share(p.crops, opts.cls, self._run_cls)
            ):
                p.rotation = 180
                self._detect_as_turned(p, opts)
                by_line.clear()  # its crops are new
        kept: dict[int, Reading] = {}
        start = 0
        for k, p in enumerate(pages):
            kept.update((start + i, r) for i, r in readings.get(k, {}).items())
            start += len(p.crops)
        return kept, read_ms

    def _turn_upside_down_pages(self, pages: list[_Page], opts: ReadOptions) -> None:
        """Doubtful pages the classifier calls upside down are seen turned by 180 degrees
        and read again; the turn is kept where the recognizer confirms it. A sideways page
        the classifier has already seen is not shown to it again: one it turned over before
        reading is turned back when it reads doubtful (and the recognizer confirms)."""
        turned: list[tuple[_Page, tuple[np.ndarray, list[np.ndarray], list[Reading]]]] = []
        for p in pages:
            if not rotation.doubtful(p.readings):
                continue
            if p.rotation in (90, 270):
                turn = p.faced
            else:
                turn = rotation.upside_down(
                    *classify.turned_share(p.crops, opts.cls, self._run_cls)
                )
            if turn:
                turned.append((p, (p.quads, p.crops, p.readings)))
                p.quads, p.crops, p.readings = rotation.turn_over(p.quads, p.crops, p.readings)
        if not turned:
            return
        crops = [c for p, _ in turned for c in p.crops]
        readings = [r for p, _ in turned for r in p.readings]
        rotation.reread_turned(crops, readings, lambda c: self._read_crops(c, opts.rec))
        start = 0
        kept: list[_Page] = []
        for p, before in turned:
            p.readings = readings[start : start + len(p.readings)]
            start += len(p.readings)
            if rotation.confirmed(p.readings):
                p.rotation = (p.rotation + 180) % 360
                kept.append(p)
            else:
                p.quads, p.crops, p.readings = before
        if kept:
            self._redetect_upright(kept, opts)

    def _redetect_upright(self, pages: list[_Page], opts: ReadOptions) -> None:
        """Pages whose turn by 180 degrees was confirmed after reading: detected again on
        their pixels turned upright and read again. Their boxes were found on the page
        upside down, and the detector does not find the same lines there: a real page with
        a dotted table turned 90 or 180 degrees read at 52 % CER from them, against 6 %
        upright and turned 270, whose boxes are found the right way up."""
        for p in pages:
            self._detect_as_turned(p, opts)
        crops = [c for p in pages for c in p.crops]
        readings = self._read_crops(crops, opts.rec)
        if opts.cls.enabled and opts.cls.mode == "doubtful":
            classify.reread_upside_down(
                crops, readings, opts.cls, self._run_cls, lambda c: self._read_crops(c, opts.rec)
            )
        start = 0
        for p in pages:
            p.readings = readings[start : start + len(p.crops)]
            start += len(p.crops)

    def _detect_as_turned(self, page: _Page, opts: ReadOptions) -> None:
        """The page's boxes and crops found again on its pixels turned by its rotation."""
        page.quads = self._detect_upright(page.image.pixels, page.rotation, opts)
        page.crops = crop_quads(page.image.pixels, page.quads)

    def _read_crops(self, crops: list[np.ndarray], opts: RecOptions) -> list[Reading]:
        if self._on_cpu:
            limit = min(opts.max_batch_pixels, opts.cpu_max_batch_pixels)
            opts = dataclasses.replace(opts, max_batch_pixels=limit)
        if self._rec.memory_per_shape:  # one line per call, on a coarser width grid
            steps = min(opts.steps_per_octave, opts.shape_keeping_steps)
            opts = dataclasses.replace(opts, max_batch_size=1, steps_per_octave=steps)
        run = functools.partial(self._run_rec, latin_below=opts.latin_first_below)
        return recognize.recognize_crops(crops, opts, run, self.vocabulary)

    def _tables(
        self, page: _Page, angle: float, center: tuple[float, float]
    ) -> list[tuple[float, float, float, float]]:
        """The tables the layout model finds on the upright page, in the frame that levels
        its lines (see :func:`ocrmill.pipeline.regions.find_tables`)."""
        model = self._layout_model()
        if model is None:  # the shipped model did not load: tables from their lines
            return []
        pixels = page.image.pixels
        if page.rotation:
            pixels = np.rot90(pixels, -page.rotation // 90)
        with self._model_locks["layout"]:
            return regions.find_tables(model.run_all, pixels, angle, center)

    @staticmethod
    def _cut_at_gutters(
        page: _Page, kept: list[int], pieces: list[list[words.LinePiece]], w: int, h: int
    ) -> list[list[words.LinePiece]]:
        """Lines that run across a column gutter (the detector joined the two columns'
        rows) cut there, in the upright page (see ``pipeline/gutters.py``)."""
        upright = [
            rotation.to_upright(
                np.array([wd.box for wd in line[0].words]).reshape(-1, 4, 2), page.rotation, w, h
            )
            for line in pieces
        ]
        inks = rotation.to_upright(np.array([line[0].ink for line in pieces]), page.rotation, w, h)
        cuts = layout.page_cuts(upright, inks)
        return [
            words.line_pieces(page.readings[k], page.crops[k], page.quads[k], c) if c else line
            for k, line, c in zip(kept, pieces, cuts)
        ]

    def _finish(self, page: _Page, opts: ReadOptions) -> PageResult:
        t0 = time.perf_counter()
        h, w = page.image.pixels.shape[:2]
        texts = [(r.text, r.score) for r in page.readings]
        keep = textness.keep_lines(page.quads, texts, page.image.pixels.shape, opts.rec)
        kept = [k for k in range(len(page.readings)) if keep[k]]
        pieces = [
            words.line_pieces(page.readings[k], page.crops[k], page.quads[k], ()) for k in kept
        ]
        if opts.layout.mode == "auto" and pieces:
            pieces = self._cut_at_gutters(page, kept, pieces, w, h)
            # A row split at a dot leader is one line (its gap is no gutter).
            joined = leaders.join_leaders(
                [p for line in pieces for p in line], page.image.pixels, page.rotation
            )
            pieces = [[p] for p in joined]
        # Boxes found on a page turned level go back onto the input's pixels.
        back = page.level.to_input if page.level is not None else np.asarray
        lines: list[TextLine] = []
        for piece in (p for line in pieces for p in line):
            lines.append(
                TextLine(
                    text=piece.text,
                    score=make_score(piece.score),
                    box=make_quad(back(piece.box)),
                    words=tuple(
                        Word(wd.text, make_score(wd.score), make_quad(back(wd.box)))
                        for wd in piece.words
                    ),
                )
            )
        ink = np.array([p.ink for line in pieces for p in line]).reshape(-1, 4, 2)
        blocks: tuple[TextBlock, ...] = ()
        if opts.layout.mode == "lines":  # the detected boxes in plain row order, as before
            order = layout.reading_order(rotation.to_upright(page.quads[kept], page.rotation, w, h))
        else:  # boxes cut to their ink left to right: gutters between columns show
            upright = rotation.to_upright(ink, page.rotation, w, h)
            line_texts = [line.text for line in lines]
            find_tables = None
            if opts.layout.tables == "auto" and (self._layout is not None or self._layout_pending):
                find_tables = functools.partial(self._tables, page)
            arranged = layout.page_layout(upright, line_texts, find_tables)
            order = arranged.order
            rank = {k: j for j, k in enumerate(order)}
            quads = rotation.from_upright(arranged.block_quads, page.rotation, w, h)
            kinds = arranged.kinds or [None] * len(arranged.blocks)
            blocks = tuple(
                TextBlock(box=make_quad(back(q)), lines=tuple(rank[k] for k in block), kind=kind)
                for q, block, kind in zip(quads, arranged.blocks, kinds)
            )
        timings = dict(page.timings)
        timings["layout"] = timings.get("layout", 0.0) + _ms(t0)
        timings["total"] = sum(timings.values())
        return PageResult(
            input=page.image.name,
            page=page.image.page,
            width=page.level.size[0] if page.level is not None else w,
            height=page.level.size[1] if page.level is not None else h,
            lines=tuple(lines[k] for k in order),
            timings_ms={k: round(v, 2) for k, v in timings.items()},
            rotation=page.rotation,
            blocks=blocks,
        )
