"""Charset ``auto``: every line read with the Latin head first; the lines it reads
doubtfully scored again by the whole head, from the same model run.

The recognizer restricted to Latin classes also outputs its head's input (see
``backends.rec_head``), so a line the Latin head reads with low confidence (a line in
another script, which the Latin classes cannot read) gets the whole head's reading without
running the model again: the whole head alone, ``softmax(features @ weight + bias)``, its
best class and that class's probability per time step, what the unrestricted recognizer
gives (to float rounding). Confident lines keep the Latin reading, which never mistakes
Latin text for the CJK look-alikes the whole head sometimes prefers.

The whole head runs through a callable, so this module never owns an inference session.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping

import numpy as np

from ocrmill.errors import ModelError
from ocrmill.pipeline.recognize import line_scores, top1

WholeHead = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
"""The whole head: features (BxTxF) in; best class and its probability (both BxT) out."""


class LatinFirst:
    """Reads with the Latin head, and with ``whole_head`` where that reads doubtfully.

    ``keep[i]``: the whole head's class for the Latin head's class ``i``;
    ``vocabulary``: the whole head's CTC vocabulary (what the engine decodes with).
    """

    def __init__(self, whole_head: WholeHead, keep: np.ndarray, vocabulary: list[str]) -> None:
        if keep.ndim != 1 or not len(keep) or keep.min() < 0 or keep.max() >= len(vocabulary):
            raise ModelError(f"Latin head classes outside the {len(vocabulary)} of the whole head")
        self.whole_head = whole_head
        self.keep = keep
        self.vocabulary = vocabulary

    @classmethod
    def from_metadata(cls, whole_head: WholeHead, metadata: Mapping[str, str]) -> LatinFirst:
        """From the whole-head model's metadata (``backends.restricted`` writes it)."""
        try:
            vocabulary = json.loads(metadata["ocrmill_vocabulary"])
            keep = np.array([int(i) for i in metadata["ocrmill_keep"].split(",")], np.int64)
        except (KeyError, ValueError) as exc:
            raise ModelError(f"whole recognizer head without its classes: {exc}") from None
        return cls(whole_head, keep, [str(t) for t in vocabulary])

    def top1(
        self, latin_probs: np.ndarray, features: np.ndarray, below: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """Best class (in the whole head's classes) and its probability per time step
        (both BxT), from the Latin head's probabilities (BxTxK) and the head's input
        (BxTxF): rows whose Latin reading scores under ``below`` are scored by the whole
        head."""
        idx, best = top1(latin_probs)
        idx = self.keep[idx]
        again = np.flatnonzero(line_scores(idx, best) < below)
        if again.size:
            whole_idx, whole_best = self.whole_head(np.ascontiguousarray(features[again]))
            idx[again] = whole_idx
            best[again] = whole_best
        return idx, best
