"""Outputs: pure renderings of page results (text, hOCR, ALTO, the invisible text layer of a
searchable PDF) and the sinks that write them."""
