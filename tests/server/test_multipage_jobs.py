"""A server job with a multi-page TIFF: every page is read, and its documents hold every
page (the pages expand as `ocrmill run` expands them)."""

from __future__ import annotations

import io

import pikepdf
from lxml import html
from PIL import Image

from .helpers import wait_job

BOXES = "tests.fault.engines:box_engine"


def three_page_tiff() -> bytes:
    pages = []
    for i in range(3):
        page = Image.new("RGB", (120, 80), (255, 255, 255))
        page.paste((0, 0, 0), (10 + 20 * i, 20, 40 + 20 * i, 50))
        pages.append(page)
    out = io.BytesIO()
    pages[0].save(out, format="TIFF", save_all=True, append_images=pages[1:], dpi=(100, 100))
    return out.getvalue()


def test_a_tiff_job_reads_every_page_into_its_documents(start_server) -> None:
    server = start_server("--workers", "1", engine=BOXES)
    files = [("file", ("scan.tif", three_page_tiff(), "image/tiff"))]
    with server.client() as c:
        created = c.post("/v1/jobs?outputs=pdf,hocr", files=files)
        assert created.status_code == 202, created.text
        assert created.json()["progress"]["total"] == 3
        done = wait_job(c, created.json()["id"])
        assert done["status"] == "done"
        pages = sorted(r["page"] for r in done["results"])
        assert pages == [0, 1, 2]
        documents = {d["format"]: d["url"] for d in done["documents"]}
        pdf = c.get(documents["pdf"]).content
        hocr = c.get(documents["hocr"]).text
    with pikepdf.open(io.BytesIO(pdf)) as document:
        assert len(document.pages) == 3
    assert len(html.fromstring(hocr.encode()).xpath('//div[@class="ocr_page"]')) == 3
