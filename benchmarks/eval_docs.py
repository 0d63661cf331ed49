"""Accuracy and speed benchmark of OCR engines on the labeled document images."""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import importlib.metadata
import json
import math
import os
import platform
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import types
import typing
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from benchmarks import metrics

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_LABELS = REPO_ROOT.parent / "shared" / "data" / "docs" / "labels.jsonl"
RESULTS_DIR = REPO_ROOT / "benchmarks" / "results"
ENGINES = ("ocrmill", "rapidocr")
CANDIDATE, BASELINE = "ocrmill", "rapidocr"
ALL = "all"

# A reader maps an image path to (lines as [{text, score, box}], per-stage timings in ms).
ReadOutput = tuple[list[dict[str, Any]], dict[str, float]]
Reader = Callable[[str], ReadOutput]


# ---------------------------------------------------------------------------- labels


def load_labels(path: Path) -> list[dict[str, Any]]:
    """All label records of a labels.jsonl file; exits with a clear message if it is absent."""
    if not path.is_file():
        raise SystemExit(
            f"labels file not found: {path}\n"
            "The benchmark data lives outside the repository (default "
            "../shared/data/docs/labels.jsonl); pass --labels PATH."
        )
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _round_robin(groups: Sequence[list[dict[str, Any]]]) -> Iterator[dict[str, Any]]:
    for i in range(max((len(g) for g in groups), default=0)):
        for g in groups:
            if i < len(g):
                yield g[i]


def select_labels(
    labels: list[dict[str, Any]], sources: list[str] | None, limit: int | None
) -> list[dict[str, Any]]:
    """Labels of the chosen sources; ``limit`` takes the first N round-robin across sources."""
    known = list(dict.fromkeys(rec["source"] for rec in labels))
    wanted = sources or known
    unknown = sorted(set(wanted) - set(known))
    if unknown:
        raise SystemExit(f"unknown source(s) {', '.join(unknown)}; have: {', '.join(known)}")
    groups = [[rec for rec in labels if rec["source"] == s] for s in wanted]
    chosen = list(_round_robin(groups))
    return chosen[:limit] if limit is not None else chosen


def gt_regions(rec: dict[str, Any]) -> list[metrics.Region]:
    return [metrics.Region.make(line["text"], line["points"]) for line in rec["lines"]]


# ---------------------------------------------------------------------------- engines


def _forbid_rapidocr_downloads() -> None:
    """Make any RapidOCR download attempt raise instead of fetching from the network."""
    from rapidocr.utils import download_file

    cls = download_file.DownloadFile
    if not hasattr(cls, "_make_http_request"):
        raise RuntimeError("cannot guard RapidOCR downloads: DownloadFile internals changed")

    def refuse(_cls: type, url: str, _logger: Any) -> Any:
        raise RuntimeError(
            f"RapidOCR tried to download {url}; the benchmark only uses the models in the wheel"
        )

    cls._make_http_request = classmethod(refuse)  # type: ignore[method-assign,assignment]


def _load_rapidocr_models(engine: Any) -> None:
    """Create RapidOCR's det/cls/rec sessions now: it builds them lazily on first use (rec only
    once some text is found), which would otherwise bill model loading to a timed image."""
    for name in ("_load_det_model", "_load_cls_model", "_load_rec_model"):
        load = getattr(engine, name, None)
        if load is None:
            raise RuntimeError(f"RapidOCR has no {name}(); update the benchmark adapter")
        load()


def build_rapidocr(preset: str | None, opts: Sequence[str]) -> Reader:
    """RapidOCR with its default config (the PP-OCR models shipped in the wheel)."""
    if preset or opts:
        raise SystemExit("--preset / --ocrmill-opt apply to ocrmill only")
    _forbid_rapidocr_downloads()
    from rapidocr import RapidOCR

    engine = RapidOCR()
    _load_rapidocr_models(engine)

    def read(path: str) -> ReadOutput:
        out = engine(path)
        if out.txts is None or out.boxes is None:
            return [], {}
        lines = [
            {"text": str(t), "score": float(s), "box": [[float(x), float(y)] for x, y in b]}
            for t, s, b in zip(out.txts, out.scores, out.boxes, strict=True)
        ]
        return lines, {}

    return read


_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def _strip_optional(hint: Any) -> tuple[Any, bool]:
    """``(X, True)`` for ``X | None``, else ``(hint, False)``."""
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return (rest[0] if len(rest) == 1 else hint), True
    return hint, False


def _parse_value(raw: str, hint: Any) -> Any:
    """Convert ``raw`` to a field of type ``hint`` (bool, int, float, str, Path, Literal)."""
    hint, optional = _strip_optional(hint)
    if optional and raw.lower() in ("none", "null"):
        return None
    if typing.get_origin(hint) is typing.Literal:
        if raw not in typing.get_args(hint):
            raise ValueError(f"expected one of {typing.get_args(hint)}")
        return raw
    if hint is bool:
        if raw.lower() not in _TRUE + _FALSE:
            raise ValueError("expected true or false")
        return raw.lower() in _TRUE
    if hint in (int, float, str, Path):
        return hint(raw)
    raise ValueError(f"fields of type {hint} cannot be set from the command line")


def apply_override(obj: Any, dotted: str, raw: str) -> Any:
    """A copy of a nested frozen dataclass with the field at ``dotted`` set from ``raw``."""
    head, _, rest = dotted.partition(".")
    names = [f.name for f in dataclasses.fields(obj)]
    if head not in names:
        raise ValueError(f"no field {head!r} in {type(obj).__name__} (have: {', '.join(names)})")
    current = getattr(obj, head)
    if rest:
        if not dataclasses.is_dataclass(current):
            raise ValueError(f"{head!r} is not a section")
        return dataclasses.replace(obj, **{head: apply_override(current, rest, raw)})
    if dataclasses.is_dataclass(current):
        raise ValueError(f"{head!r} is a section, name one of its fields")
    value = _parse_value(raw, typing.get_type_hints(type(obj))[head])
    return dataclasses.replace(obj, **{head: value})


def apply_overrides(config: Any, opts: Sequence[str]) -> Any:
    """Apply ``key.path=value`` overrides in order; exits with a clear message on a bad one."""
    for opt in opts:
        key, sep, raw = opt.partition("=")
        if not sep:
            raise SystemExit(f"--ocrmill-opt needs key=value, got {opt!r}")
        try:
            config = apply_override(config, key.strip(), raw.strip())
        except ValueError as exc:
            raise SystemExit(f"--ocrmill-opt {opt!r}: {exc}") from None
    return config


def build_ocrmill(preset: str | None, opts: Sequence[str]) -> Reader:
    """An ocrmill Engine built from a preset plus ``--ocrmill-opt`` overrides."""
    from ocrmill.config import load_config
    from ocrmill.engine import Engine

    engine = Engine(apply_overrides(load_config(preset), opts))

    def read(path: str) -> ReadOutput:
        res = engine.read(path)
        if getattr(res, "ok", True) is False:
            raise RuntimeError(f"{res.code}: {res.message}")
        lines = [
            {
                "text": str(line.text),
                "score": float(line.score),
                "box": [[float(x), float(y)] for x, y in line.box],
            }
            for line in res.lines
        ]
        return lines, {k: float(v) for k, v in res.timings_ms.items()}

    return read


BUILDERS: dict[str, Callable[[str | None, Sequence[str]], Reader]] = {
    "ocrmill": build_ocrmill,
    "rapidocr": build_rapidocr,
}


# ---------------------------------------------------------------------------- worker


def peak_rss_mib() -> float:
    """Peak resident set size of this process (ru_maxrss is KiB on Linux, bytes on macOS)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024


def _timed_read(read: Reader, path: str) -> dict[str, Any]:
    start = time.perf_counter()
    try:
        lines, timings = read(path)
        error = None
    except Exception as exc:
        lines, timings, error = [], {}, f"{type(exc).__name__}: {exc}"
    seconds = time.perf_counter() - start
    return {"lines": lines, "timings_ms": timings, "seconds": seconds, "error": error}


def _write(f: Any, record: dict[str, Any]) -> None:
    f.write(json.dumps(record, ensure_ascii=False) + "\n")
    f.flush()


def _quiet_rapidocr_logs() -> None:
    import logging

    logging.getLogger("RapidOCR").setLevel(logging.WARNING)


def run_worker(args: argparse.Namespace) -> int:
    """Build one engine, warm it up, time every image, write predictions as JSONL."""
    images: list[str] = json.loads(Path(args.images).read_text(encoding="utf-8"))
    with open(args.pred_out, "w", encoding="utf-8") as f:
        start = time.perf_counter()
        try:
            read = BUILDERS[args.worker](args.preset, args.ocrmill_opt or [])
        except (Exception, SystemExit) as exc:
            traceback.print_exc()
            _write(f, {"kind": "fatal", "error": f"{type(exc).__name__}: {exc}"})
            return 2
        build_s = time.perf_counter() - start
        _quiet_rapidocr_logs()
        warm = _timed_read(read, images[0]) if images else {"seconds": 0.0, "error": None}
        loop_start = time.perf_counter()
        for i, path in enumerate(images, 1):
            rec = _timed_read(read, path)
            _write(f, {"kind": "image", "image": path, **rec})
            status = rec["error"] or f"{len(rec['lines'])} lines"
            name = Path(path).name
            print(
                f"[{args.worker}] {i}/{len(images)} {name} {rec['seconds']:.2f}s {status}",
                file=sys.stderr,
                flush=True,
            )
        meta = {
            "kind": "meta",
            "build_s": build_s,
            "warmup_s": warm["seconds"],
            "warmup_error": warm["error"],
            "loop_wall_s": time.perf_counter() - loop_start,
            "peak_rss_mib": peak_rss_mib(),
        }
        _write(f, meta)
    return 0


# ---------------------------------------------------------------------------- parent


def run_engine(
    engine: str, images: list[str], tmp: Path, args: argparse.Namespace
) -> dict[str, Any]:
    """Run one engine's worker subprocess and read back its records."""
    images_file = tmp / f"{engine}_images.json"
    images_file.write_text(json.dumps(images), encoding="utf-8")
    pred_file = tmp / f"{engine}_pred.jsonl"
    cmd = [sys.executable, "-m", "benchmarks.eval_docs", "--worker", engine]
    cmd += ["--images", str(images_file), "--pred-out", str(pred_file)]
    if engine == CANDIDATE:
        cmd += ["--preset", args.preset] if args.preset else []
        for opt in args.ocrmill_opt or []:
            cmd += ["--ocrmill-opt", opt]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO_ROOT, check=False)
    wall = time.perf_counter() - start
    records = _read_jsonl(pred_file)
    meta = next((r for r in records if r["kind"] == "meta"), {})
    fatal = next((r["error"] for r in records if r["kind"] == "fatal"), None)
    if proc.returncode != 0 and fatal is None:
        fatal = f"worker exited with code {proc.returncode} (see its stderr above)"
    preds = {r["image"]: r for r in records if r["kind"] == "image"}
    return {"meta": meta, "fatal": fatal, "preds": preds, "process_wall_s": wall}


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def score_images(
    labels: list[dict[str, Any]], data_root: Path, run: dict[str, Any]
) -> list[dict[str, Any]]:
    """Per-image rows: scores of the worker's prediction (empty prediction on error)."""
    rows = []
    for rec in labels:
        path = str(data_root / rec["image"])
        pred = run["preds"].get(path, {"lines": [], "seconds": math.nan, "error": "missing"})
        regions = [metrics.Region.make(p["text"], p["box"]) for p in pred["lines"]]
        score = metrics.score_page(regions, gt_regions(rec), bool(rec["case_sensitive"]))
        rows.append(
            {
                "image": rec["image"],
                "source": rec["source"],
                "seconds": pred["seconds"],
                "error": pred["error"],
                "n_lines": score.n_pred,
                "n_dont_care_dropped": score.n_dropped,
                "cer": score.cer._asdict(),
                "cer_cs": score.cer_cs._asdict() if score.cer_cs else None,
                "bow": score.bow._asdict(),
                "timings_ms": pred.get("timings_ms", {}),
                "pred_text": score.pred_text,
                "gt_text": score.gt_text,
            }
        )
    return rows


def aggregate(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Accuracy and speed totals over a set of per-image rows."""
    cers = [metrics.CerResult(**r["cer"]) for r in rows]
    cers_cs = [metrics.CerResult(**r["cer_cs"]) for r in rows if r["cer_cs"]]
    bow = metrics.sum_bow(metrics.BowCounts(**r["bow"]) for r in rows)
    secs = [r["seconds"] for r in rows if not math.isnan(r["seconds"])]
    total = sum(secs)
    return {
        "images": len(rows),
        "errors": sum(1 for r in rows if r["error"]),
        "cer_macro": metrics.macro_cer(cers),
        "cer_micro": metrics.micro_cer(cers),
        "cer_cs_micro": metrics.micro_cer(cers_cs),
        "gt_chars": sum(c.gt_len for c in cers),
        "bow": bow._asdict(),
        **metrics.prf(bow)._asdict(),
        "seconds_sum": total,
        "images_per_s": len(secs) / total if total > 0 else math.nan,
        "p50_s": statistics.median(secs) if secs else math.nan,
    }


def stage_sums(rows: list[dict[str, Any]]) -> dict[str, float]:
    """Per-stage timings (ms) summed over images."""
    sums: dict[str, float] = {}
    for r in rows:
        for k, v in r["timings_ms"].items():
            sums[k] = sums.get(k, 0.0) + v
    return sums


def summarize(rows: list[dict[str, Any]], sources: list[str]) -> dict[str, dict[str, Any]]:
    out = {s: aggregate([r for r in rows if r["source"] == s]) for s in sources}
    out[ALL] = aggregate(rows)
    return out


def compare(results: dict[str, Any], sources: list[str]) -> dict[str, dict[str, float]]:
    """ocrmill vs rapidocr: speed ratio and CER / F1 deltas in percentage points."""
    cand, base = results[CANDIDATE]["summary"], results[BASELINE]["summary"]
    out = {}
    for s in [*sources, ALL]:
        c, b = cand[s], base[s]
        ratio = c["images_per_s"] / b["images_per_s"] if b["images_per_s"] else math.nan
        out[s] = {
            "speed_ratio": ratio,
            "d_cer_macro_pts": 100 * (c["cer_macro"] - b["cer_macro"]),
            "d_cer_micro_pts": 100 * (c["cer_micro"] - b["cer_micro"]),
            "d_f1_pts": 100 * (c["f1"] - b["f1"]),
        }
    return out


# ---------------------------------------------------------------------------- report


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def machine_info() -> dict[str, Any]:
    return {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "onnxruntime": _version("onnxruntime"),
        "rapidocr": _version("rapidocr"),
        "ocrmill": _version("ocrmill"),
        "ocrmill_env": {k: v for k, v in os.environ.items() if k.startswith("OCRMILL_")},
    }


def _pct(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{100 * x:.2f}"


def _num(x: float | None, digits: int = 2) -> str:
    return "n/a" if x is None or math.isnan(x) else f"{x:.{digits}f}"


def _delta(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{x:+.2f}"


def _table(header: str, rows: list[list[str]]) -> list[str]:
    """A Markdown table; ``header`` lists the column names separated by ``|``."""
    names = header.split("|")
    lines = ["| " + " | ".join(names) + " |", "|" + "---|" * len(names)]
    return lines + ["| " + " | ".join(r) + " |" for r in rows]


ACCURACY_HEADER = (
    "source|engine|images|errors|CER macro %|CER micro %|CER cs micro %|BoW P %|BoW R %|"
    "BoW F1 %|img/s|p50 s/img|sum s"
)
ENGINE_HEADER = (
    "engine|build s|warm-up s|timed loop wall s|process wall s|peak RSS MiB|errors|status"
)
COMPARE_HEADER = "source|img/s ratio (ocrmill/rapidocr)|ΔCER macro pts|ΔCER micro pts|ΔF1 pts"


def _accuracy_row(source: str, engine: str, a: dict[str, Any]) -> list[str]:
    counts = [source, engine, str(a["images"]), str(a["errors"])]
    scores = [a[k] for k in ("cer_macro", "cer_micro", "cer_cs_micro", "precision", "recall", "f1")]
    speed = [_num(a["images_per_s"], 3), _num(a["p50_s"], 3), _num(a["seconds_sum"])]
    return counts + [_pct(x) for x in scores] + speed


def _accuracy_table(results: dict[str, Any], sources: list[str]) -> list[str]:
    rows = [
        _accuracy_row(s, engine, res["summary"][s])
        for s in [*sources, ALL]
        for engine, res in results.items()
        if not res["fatal"]
    ]
    return _table(ACCURACY_HEADER, rows)


def _engine_row(engine: str, res: dict[str, Any]) -> list[str]:
    m = res["meta"]
    times = [_num(m.get(k)) for k in ("build_s", "warmup_s", "loop_wall_s")]
    errors = "-" if res["fatal"] else str(res["summary"][ALL]["errors"])
    status = f"FAILED: {res['fatal']}" if res["fatal"] else "ok"
    rss = _num(m.get("peak_rss_mib"), 0)
    return [engine, *times, _num(res["process_wall_s"]), rss, errors, status]


def _engine_table(results: dict[str, Any]) -> list[str]:
    return _table(ENGINE_HEADER, [_engine_row(e, res) for e, res in results.items()])


def _compare_table(cmp: dict[str, dict[str, float]]) -> list[str]:
    deltas = ("d_cer_macro_pts", "d_cer_micro_pts", "d_f1_pts")
    rows = [[s, _num(c["speed_ratio"]), *(_delta(c[k]) for k in deltas)] for s, c in cmp.items()]
    return _table(COMPARE_HEADER, rows)


def _error_lines(results: dict[str, Any]) -> list[str]:
    out = []
    for engine, res in results.items():
        for r in res.get("rows", []):
            if r["error"]:
                out.append(f"- {engine} `{r['image']}`: {r['error']}")
        warm = res["meta"].get("warmup_error")
        if warm:
            out.append(f"- {engine} warm-up: {warm}")
    return out


SCORING_NOTE = (
    "Scoring: primary CER and bag-of-words (BoW) scores are **case-insensitive** for every "
    "source (SROIE GT is upper-case; ICDAR 2015 end-to-end is commonly scored that way); "
    "`CER cs` is the case-sensitive CER over case-sensitive labels only (ICDAR, tesseract). "
    "Predictions whose centre lies in (or >50% of whose area overlaps) a don't-care region "
    "are dropped. GT and predictions are put in the same reading order (rows by centre-y, "
    "then x); page-level GT keeps its given order. Whitespace runs count as one space. "
    "CER macro = mean of per-page CER over pages with GT text; micro = total edits / total "
    "GT chars. BoW (whitespace tokens, multiset match) is micro over all tokens. "
    "Speed: img/s = images / sum of per-image seconds (path in, lines out, decode included; "
    "after one untimed warm-up call). Build = import + engine construction with all model "
    "sessions created. An image that raised counts as an error and is scored as an empty "
    "prediction."
)


def render_markdown(report: dict[str, Any]) -> str:
    """The Markdown report."""
    results, sources, m = report["results"], report["sources"], report["machine"]
    lines = [
        "# Document OCR benchmark",
        "",
        f"Command: `{report['command']}`",
        "",
        f"Machine: {m['cpu_count']} CPUs, {m['platform']}, Python {m['python']}, "
        f"onnxruntime {m['onnxruntime']}, rapidocr {m['rapidocr']}, ocrmill {m['ocrmill']}; "
        f"{m['date']}. OCRMILL_* env: {m['ocrmill_env'] or 'none'}.",
        "",
        f"Labels: `{report['labels']}`, {report['n_images']} images "
        f"({', '.join(f'{s}: {n}' for s, n in report['per_source'].items())}).",
        "",
        SCORING_NOTE,
        "",
        "## Accuracy and speed",
        "",
        *_accuracy_table(results, sources),
        "",
        "## Engines",
        "",
        *_engine_table(results),
    ]
    stages = report.get("ocrmill_stage_ms")
    if stages:
        parts = ", ".join(f"{k} {v:.0f}" for k, v in stages.items())
        lines += ["", f"ocrmill per-stage timings summed over the timed pass (ms): {parts}."]
    if report.get("comparison"):
        lines += ["", "## ocrmill vs rapidocr", "", *_compare_table(report["comparison"])]
        lines += ["", "Ratio > 1: ocrmill faster. ΔCER < 0 and ΔF1 > 0: ocrmill better."]
    errors = _error_lines(results)
    if errors:
        lines += ["", "## Errors", "", *errors]
    return "\n".join(lines) + "\n"


def _clean_nan(o: Any) -> Any:
    if isinstance(o, float) and math.isnan(o):
        return None
    if isinstance(o, dict):
        return {k: _clean_nan(v) for k, v in o.items()}
    if isinstance(o, list):
        return [_clean_nan(v) for v in o]
    return o


def save_report(report: dict[str, Any], markdown: str, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(markdown, encoding="utf-8")
    raw = json.dumps(_clean_nan(report), indent=1, ensure_ascii=False)
    out.with_suffix(".json").write_text(raw + "\n", encoding="utf-8")


def default_out(engines: list[str]) -> Path:
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return RESULTS_DIR / f"docs_{'_'.join(engines)}_{stamp}.md"


# ---------------------------------------------------------------------------- CLI


def _csv(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.eval_docs", description=__doc__)
    p.add_argument("--labels", type=Path, default=DEFAULT_LABELS, help="labels.jsonl path")
    p.add_argument(
        "--data-root",
        type=Path,
        help="folder images are relative to (default: the labels file's grandparent)",
    )
    p.add_argument("--engines", type=_csv, default=list(ENGINES), help="comma-separated")
    p.add_argument("--limit", type=int, help="first N images, round-robin across sources")
    p.add_argument("--sources", type=_csv, help="comma-separated, e.g. sroie,icdar2015")
    p.add_argument("--out", type=Path, help="Markdown report path (a .json twin is written)")
    p.add_argument("--preset", help="ocrmill preset (fast, balanced, accurate)")
    p.add_argument(
        "--ocrmill-opt",
        action="append",
        metavar="KEY=VALUE",
        help="ocrmill Config override, e.g. read.det.limit_side_len=1280",
    )
    p.add_argument("--worker", choices=ENGINES, help=argparse.SUPPRESS)
    p.add_argument("--images", help=argparse.SUPPRESS)
    p.add_argument("--pred-out", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    bad = [e for e in args.engines if e not in ENGINES]
    if bad or not args.engines:
        p.error(f"--engines: choose from {', '.join(ENGINES)}")
    return args


def run_benchmark(args: argparse.Namespace, argv: Sequence[str]) -> int:
    labels_path = args.labels.resolve()
    labels = select_labels(load_labels(labels_path), args.sources, args.limit)
    if not labels:
        raise SystemExit("no images selected")
    data_root = (args.data_root or labels_path.parent.parent).resolve()
    sources = list(dict.fromkeys(rec["source"] for rec in labels))
    images = [str(data_root / rec["image"]) for rec in labels]
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="ocrmill-bench-") as tmp:
        for engine in args.engines:
            run = run_engine(engine, images, Path(tmp), args)
            rows = [] if run["fatal"] else score_images(labels, data_root, run)
            summary = summarize(rows, sources) if rows else {}
            results[engine] = {
                "fatal": run["fatal"],
                "meta": run["meta"],
                "process_wall_s": run["process_wall_s"],
                "summary": summary,
                "rows": rows,
            }
    report: dict[str, Any] = {
        "command": shlex.join(["python", "-m", "benchmarks.eval_docs", *argv]),
        "machine": machine_info(),
        "labels": str(labels_path),
        "n_images": len(labels),
        "per_source": {s: sum(1 for r in labels if r["source"] == s) for s in sources},
        "sources": sources,
        "preset": args.preset,
        "ocrmill_opts": args.ocrmill_opt or [],
        "results": results,
    }
    ocr = results.get(CANDIDATE)
    if ocr and not ocr["fatal"]:
        report["ocrmill_stage_ms"] = stage_sums(ocr["rows"])
    if all(e in results and not results[e]["fatal"] for e in (CANDIDATE, BASELINE)):
        report["comparison"] = compare(results, sources)
    markdown = render_markdown(report)
    out = args.out or default_out(args.engines)
    save_report(report, markdown, out)
    print(markdown)
    print(f"saved {out} and {out.with_suffix('.json')}", file=sys.stderr)
    return 1 if any(r["fatal"] for r in results.values()) else 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    if args.worker:
        return run_worker(args)
    return run_benchmark(args, argv)


if __name__ == "__main__":
    sys.exit(main())
