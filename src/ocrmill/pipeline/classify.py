"""Text-line orientation (0 / 180 degrees) with the PP-OCR line classifier."""

from __future__ import annotations

import numpy as np

from ocrmill.pipeline.normalize import line_batch

CLS_HEIGHT = 48
CLS_WIDTH = 192


def cls_batch(crops: list[np.ndarray]) -> np.ndarray:
    """Classifier input: crops at height 48, width up to 192, padded."""
    return line_batch(crops, CLS_HEIGHT, CLS_WIDTH)


def upside_down(probs: np.ndarray, thresh: float) -> np.ndarray:
    """Boolean mask of crops the classifier says are rotated 180 degrees (Nx2 softmax)."""
    probs = np.asarray(probs, dtype=np.float32).reshape(len(probs), -1)
    return (probs.argmax(axis=1) == 1) & (probs[:, 1] > thresh)


def rotate_180(crop: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(crop[::-1, ::-1])
