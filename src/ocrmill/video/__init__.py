"""Video OCR and the text-area-ratio filter (parent side; frames are read by pool workers).

``filter_videos`` keeps or drops samples of videos by how much of their frames text
covers; ``ocrmill video-filter`` is its command line. Modules: ``sampling`` (which frames),
``frames`` (PyAV decoding by seeking), ``area`` (union-of-polygons ratio), ``filter``
(pool submission, scores, decisions), ``records`` (the results: frozen dataclasses and
their JSON).
"""

from __future__ import annotations

from ocrmill.errors import CorruptVideoError
from ocrmill.video.area import text_area_ratio
from ocrmill.video.filter import FilterSettings, decide, filter_videos, iter_samples
from ocrmill.video.frames import VideoReader
from ocrmill.video.records import (
    FrameScore,
    SampleResult,
    VideoError,
    VideoInfo,
    VideoRecord,
    VideoScore,
)
from ocrmill.video.sampling import Sampling, every_frame_indices, spread_frame_indices

__all__ = [
    "CorruptVideoError",
    "FilterSettings",
    "FrameScore",
    "SampleResult",
    "Sampling",
    "VideoError",
    "VideoInfo",
    "VideoReader",
    "VideoRecord",
    "VideoScore",
    "decide",
    "every_frame_indices",
    "filter_videos",
    "iter_samples",
    "spread_frame_indices",
    "text_area_ratio",
]
