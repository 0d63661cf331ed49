"""The server with the real PP-OCR models in its workers: images, PDFs, undecodable input."""

from __future__ import annotations

import io

import pytest

from ..conftest import render_page, render_text
from .conftest import REAL
from .helpers import wait_job


def _png(image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def _squash(text: str) -> str:
    return "".join(text.split()).lower()


@pytest.mark.slow
def test_real_models_over_http(start_server) -> None:
    server = start_server("--workers", "1", "--pdf-dpi", "150", engine=REAL)
    line = _png(render_text("Served over HTTP", size=40))
    pages = [render_page(["First page of the PDF"]), render_page(["Second page here"])]
    pdf = io.BytesIO()
    pages[0].save(pdf, format="PDF", save_all=True, append_images=pages[1:])
    with server.client() as c:
        r = c.post("/v1/ocr", files={"file": ("line.png", line, "image/png")})
        assert r.status_code == 200, r.text
        body = r.json()
        assert _squash(body["text"]) == _squash("Served over HTTP")
        assert body["width"] > 100 and len(body["lines"]) == 1
        x0, y0 = body["lines"][0]["box"][0]
        assert 0 <= x0 < 60 and 0 <= y0 < 40
        raw = c.post("/v1/ocr?preset=fast", content=line, headers={"Content-Type": "image/png"})
        assert _squash(raw.json()["text"]) == _squash("Served over HTTP")

        garbage = c.post("/v1/ocr", files={"file": ("notes.jpg", b"plain text", "image/jpeg")})
        assert garbage.status_code == 422
        assert garbage.json()["error"]["code"] == "unsupported_format"
        assert garbage.json()["error"]["message"].startswith("notes.jpg: not an image")

        files = [
            ("file", ("scan.pdf", pdf.getvalue(), "application/pdf")),
            ("file", ("line.png", line, "image/png")),
        ]
        created = c.post("/v1/jobs", files=files)
        assert created.status_code == 202
        assert created.json()["progress"]["total"] == 3  # two PDF pages + one image
        done = wait_job(c, created.json()["id"], timeout=120)
    results = sorted(done["results"], key=lambda r: r["index"])
    assert [(r["file"], r["page"], r["file_index"]) for r in results] == [
        ("scan.pdf", 0, 0),
        ("scan.pdf", 1, 0),
        ("line.png", None, 1),
    ]
    texts = [_squash(r["result"]["text"]) for r in results]
    assert texts == [
        _squash(t) for t in ("First page of the PDF", "Second page here", "Served over HTTP")
    ]
    assert results[0]["result"]["page"] == 0 and results[0]["result"]["input"] == "scan.pdf"
