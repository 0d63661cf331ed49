"""The OCR pipeline stages: decoding, detection, classification and recognition."""
