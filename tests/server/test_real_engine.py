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


@pytest.mark.slow
def test_a_job_makes_searchable_pdfs_and_hocr_to_download(start_server) -> None:
    import pypdfium2 as pdfium
    from lxml import html

    server = start_server("--workers", "1", "--pdf-dpi", "150", engine=REAL)
    pages = [render_page(["Download me as a PDF"]), render_page(["with two pages"])]
    pdf = io.BytesIO()
    pages[0].save(pdf, format="PDF", save_all=True, append_images=pages[1:], resolution=150)
    line = _png(render_text("An image too", size=40))
    files = [
        ("file", ("scan.pdf", pdf.getvalue(), "application/pdf")),
        ("file", ("line.png", line, "image/png")),
    ]
    with server.client() as c:
        r = c.post("/v1/ocr", files={"file": ("line.png", line, "image/png")})
        assert [w["text"] for w in r.json()["lines"][0]["words"]] == ["An", "image", "too"]
        assert c.post("/v1/jobs?outputs=pdf,nonsense", files=files).status_code == 400
        created = c.post("/v1/jobs?outputs=pdf,hocr&layout=lines", files=files).json()
        done = wait_job(c, created["id"], timeout=120)
        documents = {(d["file"], d["format"]): d["url"] for d in done["documents"]}
        assert set(documents) == {
            ("scan.pdf", "pdf"),
            ("scan.pdf", "hocr"),
            ("line.png", "pdf"),
            ("line.png", "hocr"),
        }
        got = c.get(documents[("scan.pdf", "pdf")])
        assert got.status_code == 200 and got.headers["content-type"] == "application/pdf"
        assert 'filename="scan.pdf.pdf"' in got.headers["content-disposition"]
        hocr = c.get(documents[("line.png", "hocr")]).text
        missing = c.get(f"/v1/jobs/{created['id']}/documents/00001/alto")
        assert missing.status_code == 404
    doc = pdfium.PdfDocument(got.content)
    assert len(doc) == 2
    texts = [_squash(doc[i].get_textpage().get_text_range()) for i in range(2)]
    assert texts == [_squash("Download me as a PDF"), _squash("with two pages")]
    words = [w.text for w in html.fromstring(hocr.encode()).xpath('//span[@class="ocrx_word"]')]
    assert words == ["An", "image", "too"]
