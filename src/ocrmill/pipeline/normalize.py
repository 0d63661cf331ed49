"""Resize-and-normalize for the line models (classifier and recognizer).

PP-OCR line models take BGR crops of a fixed height, scaled to [-1, 1], left-aligned and
zero-padded (zero = mid-grey after normalization) to the batch width.
"""

from __future__ import annotations

import math

import cv2
import numpy as np


def scaled_width(crop: np.ndarray, height: int) -> int:
    """Width of ``crop`` resized to ``height`` at its own aspect ratio (at least 1)."""
    h, w = crop.shape[:2]
    return max(1, math.ceil(height * w / max(h, 1)))


def line_batch(crops: list[np.ndarray], height: int, width: int) -> np.ndarray:
    """Nx3xHxW float32 batch: each crop resized to ``height`` (width capped at ``width``)."""
    batch = np.zeros((len(crops), 3, height, width), dtype=np.float32)
    for i, crop in enumerate(crops):
        w = min(width, scaled_width(crop, height))
        resized = cv2.resize(crop, (w, height), interpolation=cv2.INTER_LINEAR)
        # RGB -> BGR, HWC -> CHW, [0, 255] -> [-1, 1]
        batch[i, :, :, :w] = resized[:, :, ::-1].transpose(2, 0, 1) * (1 / 127.5) - 1.0
    return batch
