"""The OCR engine: composes the pipeline stages over one set of backends.

An ``Engine`` owns its inference sessions and is used from one thread (one engine per
worker process in the runtime). Per-call options are arguments, never engine state.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ocrmill.backends import create_backend
from ocrmill.backends.split import run_splitting
from ocrmill.config import ClsOptions, Config, ReadOptions, RecOptions
from ocrmill.errors import InternalError, ModelError, OcrmillError, ResourceLimitError
from ocrmill.models import (
    ModelFiles,
    ctc_vocabulary,
    parse_character_list,
    read_dict_file,
    resolve_models,
)
from ocrmill.pipeline import classify, detect, layout, recognize, textness, tiling
from ocrmill.pipeline.crop import crop_quads
from ocrmill.pipeline.decode import DecodedImage, ImageSource, decode_image
from ocrmill.results import PageFailure, PageResult, Result, TextLine


def _input_label(image: object, name: str | None) -> str:
    """How a result record names its input: the given name, the path, or the kind."""
    if name:
        return name
    if isinstance(image, (str, os.PathLike)):
        return os.fspath(image)
    if isinstance(image, DecodedImage):
        return image.name
    return f"<{type(image).__name__}>"


# GPU detection batches: detector inputs padded up to multiples of this many pixels, so
# pages of similar size share a batch; at most this many pages per detector call.
DET_BUCKET = 128
DET_MAX_BATCH = 8
_NO_QUADS = np.zeros((0, 4, 2), np.float32)


def _ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000.0


@dataclass
class _Page:
    """A page between stages inside one ``read_many`` call."""

    image: DecodedImage
    quads: np.ndarray
    crops: list[np.ndarray]
    timings: dict[str, float] = field(default_factory=dict)
    texts: list[tuple[str, float]] = field(default_factory=list)


class Engine:
    """PP-OCR detection, orientation and recognition on one backend per model.

    >>> engine = Engine()                      # the models the rapidocr wheel ships
    >>> engine.read("receipt.jpg").text        # doctest: +SKIP
    """

    def __init__(self, config: Config | None = None) -> None:
        self.config = config or Config()
        self.files: ModelFiles = resolve_models(self.config.models)
        self._det = create_backend(self.files.det, self.config.backend, "det")
        self._rec = create_backend(self.files.rec, self.config.backend, "rec")
        self._cls = create_backend(self.files.cls, self.config.backend, "cls")
        self.vocabulary = self._load_vocabulary()
        # Batching detection pays on GPUs; on CPUs it only adds padding work.
        self._batch_detection = self.config.backend.device != "cpu"

    # -- construction ---------------------------------------------------------------

    def _load_vocabulary(self) -> list[str]:
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
        probe = np.zeros((1, 3, recognize.REC_HEIGHT, 64), dtype=np.float32)
        try:
            num_classes = int(self._rec.run(probe).shape[-1])
        except Exception as exc:
            raise ModelError(
                f"recognition model {self.files.rec} failed on a test input: {exc}"
            ) from None
        return ctc_vocabulary(chars, num_classes, source)

    @property
    def providers(self) -> dict[str, tuple[str, ...]]:
        """Execution providers that actually loaded, per model."""
        return {"det": self._det.providers, "rec": self._rec.providers, "cls": self._cls.providers}

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

    # -- public API -----------------------------------------------------------------

    def read(
        self, image: ImageSource, *, options: ReadOptions | None = None, name: str | None = None
    ) -> PageResult:
        """Read one image. Raises :class:`~ocrmill.errors.InputError` for bad input."""
        result = self.read_many([image], options=options, names=[name] if name else None)[0]
        if isinstance(result, PageFailure):
            raise result.to_error()
        return result

    def read_many(
        self,
        images: Sequence[ImageSource | DecodedImage],
        *,
        options: ReadOptions | None = None,
        names: Sequence[str | None] | None = None,
    ) -> list[Result]:
        """Read several images, batching recognition crops across all of them.

        Never raises for a bad input: each input yields a :class:`PageResult` or a
        :class:`PageFailure`, in input order.
        """
        opts = options or self.config.read
        names = list(names) if names is not None else [None] * len(images)
        if len(names) != len(images):
            raise ValueError("names must have one entry per image")
        decoded = [self._decode(image, name) for image, name in zip(images, names)]
        slots = self._detect_pages(decoded, opts)
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
            return [self._finish(s, opts.rec) if isinstance(s, _Page) else s for s in slots]
        return [
            PageFailure.from_error(s.image.name, err, s.image.page) if isinstance(s, _Page) else s
            for s in slots
        ]

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

        On a GPU, pages the detector sees whole are run as batches (see
        :meth:`_detect_batched`); elsewhere one page at a time.
        """
        pages = [s for s in slots if isinstance(s, _Page)]
        if self._batch_detection:
            whole = [p for p in pages if not self._tiled(p.image.pixels, opts)]
            done = self._detect_batched(whole, opts)
        else:
            done = {}
        out: list[Result | _Page] = []
        for slot in slots:
            if not isinstance(slot, _Page):
                out.append(slot)
                continue
            page = slot
            try:
                t1 = time.perf_counter()
                if id(page) in done:
                    page.quads = done[id(page)]
                else:
                    page.quads, _ = self._detect(page.image.pixels, opts)
                    page.timings["detect"] = _ms(t1)
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

    def _detect_batched(self, pages: list[_Page], opts: ReadOptions) -> dict[int, np.ndarray]:
        """Detect pages in batches: each input padded up to a ``DET_BUCKET`` multiple, pages
        of one padded shape run together (at most ``DET_MAX_BATCH`` per call).

        Returns quads by ``id(page)``; a page whose batch failed is left out (the caller
        then detects it alone, so one bad page cannot fail its neighbours).
        """
        prepared: dict[tuple[int, int], list[tuple[_Page, np.ndarray, detect.DetGeometry]]] = {}
        for page in pages:
            t0 = time.perf_counter()
            tensor, geometry = detect.prepare_det_input(page.image.pixels, opts.det)
            page.timings["detect"] = _ms(t0)
            h, w = tensor.shape[2:]
            key = (-(-h // DET_BUCKET) * DET_BUCKET, -(-w // DET_BUCKET) * DET_BUCKET)
            prepared.setdefault(key, []).append((page, tensor, geometry))
        found: dict[int, np.ndarray] = {}
        for (bh, bw), group in prepared.items():
            for start in range(0, len(group), DET_MAX_BATCH):
                chunk = group[start : start + DET_MAX_BATCH]
                t0 = time.perf_counter()
                batch = np.zeros((len(chunk), 3, bh, bw), dtype=np.float32)
                for k, (_, tensor, _) in enumerate(chunk):
                    batch[k, :, : tensor.shape[2], : tensor.shape[3]] = tensor[0]
                try:
                    probs = run_splitting(self._det.run, batch)
                except Exception:
                    continue
                share = _ms(t0) / len(chunk)
                for k, (page, tensor, geometry) in enumerate(chunk):
                    t1 = time.perf_counter()
                    prob = probs[k, 0, : tensor.shape[2], : tensor.shape[3]]
                    quads, scores = detect.db_boxes(prob, opts.det)
                    quads = detect.boxes_to_page(quads, geometry)
                    found[id(page)] = detect.drop_degenerate(quads, scores)[0]
                    page.timings["detect"] += share + _ms(t1)
        return found

    @staticmethod
    def _tiled(pixels: np.ndarray, opts: ReadOptions) -> bool:
        return opts.tile.huge == "tile" and max(pixels.shape[:2]) > opts.tile.tile_above

    def _detect(self, pixels: np.ndarray, opts: ReadOptions) -> tuple[np.ndarray, np.ndarray]:
        """Text boxes of a page in page pixels: one detector pass, or tiles for huge pages."""
        if self._tiled(pixels, opts):
            return self._detect_tiled(pixels, opts)
        tensor, geometry = detect.prepare_det_input(pixels, opts.det)
        prob = run_splitting(self._det.run, tensor)[0, 0]
        quads, scores = detect.db_boxes(prob, opts.det)
        quads = detect.boxes_to_page(quads, geometry)
        return detect.drop_degenerate(quads, scores)

    def _detect_tiled(self, pixels: np.ndarray, opts: ReadOptions) -> tuple[np.ndarray, np.ndarray]:
        """Detect on overlapping full-resolution tiles, batched by shape, then merge."""
        t = opts.tile
        h, w = pixels.shape[:2]
        tiles = tiling.plan_tiles(h, w, t.tile_size, t.overlap)
        # Tiles are at most tile_size: the detector sees them at full resolution.
        det = dataclasses.replace(opts.det, limit_side_len=t.tile_size, limit_type="max")
        by_shape: dict[tuple[int, int], list[int]] = {}
        for i, (x0, y0, x1, y1) in enumerate(tiles):
            if not tiling.tile_is_blank(pixels[y0:y1, x0:x1], t.blank_range):
                by_shape.setdefault((y1 - y0, x1 - x0), []).append(i)
        all_quads: list[np.ndarray] = []
        all_scores: list[np.ndarray] = []
        all_ids: list[np.ndarray] = []
        for indices in by_shape.values():
            for start in range(0, len(indices), max(1, t.batch)):
                chunk = indices[start : start + max(1, t.batch)]
                prepared = [
                    detect.prepare_det_input(pixels[y0:y1, x0:x1], det)
                    for x0, y0, x1, y1 in (tiles[i] for i in chunk)
                ]
                probs = run_splitting(self._det.run, np.concatenate([p[0] for p in prepared]))
                for k, i in enumerate(chunk):
                    quads, scores = detect.db_boxes(probs[k, 0], det)
                    quads = detect.boxes_to_page(quads, prepared[k][1])
                    quads[..., 0] += tiles[i][0]
                    quads[..., 1] += tiles[i][1]
                    all_quads.append(quads)
                    all_scores.append(scores)
                    all_ids.append(np.full(len(quads), i))
        if not all_quads:
            return np.zeros((0, 4, 2), np.float32), np.zeros((0,), np.float32)
        quads, scores = tiling.merge_tile_boxes(
            np.concatenate(all_quads), np.concatenate(all_scores), np.concatenate(all_ids), tiles
        )
        quads[..., 0] = np.clip(quads[..., 0], 0, w - 1)
        quads[..., 1] = np.clip(quads[..., 1], 0, h - 1)
        return detect.drop_degenerate(quads, scores)

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
        if opts.cls.enabled and opts.cls.mode == "always":
            crops = self._classify(crops, opts.cls)
        cls_ms = _ms(t0)
        t1 = time.perf_counter()
        texts = self._recognize(crops, opts.rec)
        rec_ms = _ms(t1)
        if opts.cls.enabled and opts.cls.mode == "doubtful":
            t2 = time.perf_counter()
            self._reread_upside_down(crops, texts, opts)
            cls_ms += _ms(t2)
        for i, p in enumerate(pages):
            p.timings["classify"] = float(cls_ms * share[i])
            p.timings["recognize"] = float(rec_ms * share[i])
        for owner, text in zip(owners, texts):
            pages[owner].texts.append(text)

    def _classify(self, crops: list[np.ndarray], opts: ClsOptions) -> list[np.ndarray]:
        """Every crop the classifier calls upside down, turned by 180 degrees."""
        flips = self._upside_down(crops, opts)
        return [classify.rotate_180(c) if f else c for c, f in zip(crops, flips)]

    def _upside_down(self, crops: list[np.ndarray], opts: ClsOptions) -> list[bool]:
        flips = [False] * len(crops)
        order = sorted(
            range(len(crops)), key=lambda i: crops[i].shape[1] / max(crops[i].shape[0], 1)
        )
        for start in range(0, len(order), opts.batch_size):
            chunk = order[start : start + opts.batch_size]
            probs = run_splitting(self._cls.run, classify.cls_batch([crops[i] for i in chunk]))
            for i, flip in zip(chunk, classify.upside_down(probs, opts.thresh)):
                flips[i] = bool(flip)
        return flips

    def _reread_upside_down(
        self, crops: list[np.ndarray], texts: list[tuple[str, float]], opts: ReadOptions
    ) -> None:
        """Classify only the doubtful readings; re-read those the classifier calls upside
        down turned by 180 degrees, and keep whichever reading is more confident."""
        doubtful = [i for i, (_, score) in enumerate(texts) if score < opts.cls.doubtful_below]
        if not doubtful:
            return
        flips = self._upside_down([crops[i] for i in doubtful], opts.cls)
        turned = [i for i, flip in zip(doubtful, flips) if flip]
        if not turned:
            return
        again = self._recognize([classify.rotate_180(crops[i]) for i in turned], opts.rec)
        for i, reading in zip(turned, again):
            if reading[1] > texts[i][1]:
                texts[i] = reading

    def _recognize(self, crops: list[np.ndarray], opts: RecOptions) -> list[tuple[str, float]]:
        widths = [recognize.rec_width(c, opts) for c in crops]
        results = self._recognize_at(crops, widths, opts)
        retry = [
            i
            for i, (_, score) in enumerate(results)
            if score < opts.retry_below and widths[i] < opts.retry_width
        ]
        if retry:
            again = self._recognize_at(
                [crops[i] for i in retry], [opts.retry_width] * len(retry), opts
            )
            for i, second in zip(retry, again):
                if second[1] > results[i][1]:
                    results[i] = second
        return results

    def _recognize_at(
        self, crops: list[np.ndarray], widths: list[int], opts: RecOptions
    ) -> list[tuple[str, float]]:
        results: list[tuple[str, float]] = [("", 0.0)] * len(crops)
        for batch in recognize.plan_rec_batches(widths, opts):
            width = max(widths[i] for i in batch)
            tensor = recognize.rec_batch([crops[i] for i in batch], width)
            idx, best = run_splitting(self._rec_top1, tensor)
            if len(idx) != len(batch):
                raise ModelError(f"recognizer returned {len(idx)} rows for a batch of {len(batch)}")
            for i, decoded in zip(batch, recognize.decode_indices(idx, best, self.vocabulary)):
                results[i] = decoded
        return results

    def _rec_top1(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Best class and its probability per time step; on the device when it can."""
        top1 = getattr(self._rec, "run_top1", None)
        if top1 is not None:
            idx, best = top1(batch)
            return np.asarray(idx), np.asarray(best)
        return recognize.top1(self._rec.run(batch))

    def _finish(self, page: _Page, opts: RecOptions) -> PageResult:
        lines: list[TextLine] = []
        keep = textness.keep_lines(page.quads, page.texts, page.image.pixels.shape, opts)
        for k in layout.reading_order(page.quads):
            text, score = page.texts[k]
            text = text.strip()
            if not keep[k]:
                continue
            box = tuple((float(x), float(y)) for x, y in page.quads[k])
            lines.append(TextLine(text=text, score=score, box=box))  # type: ignore[arg-type]
        timings = dict(page.timings)
        timings["total"] = sum(timings.values())
        h, w = page.image.pixels.shape[:2]
        return PageResult(
            input=page.image.name,
            page=page.image.page,
            width=w,
            height=h,
            lines=tuple(lines),
            timings_ms=timings,
        )
