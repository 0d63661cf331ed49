"""The HTTP API against a real `ocrmill serve` process (fake engine: fast, scriptable)."""

from __future__ import annotations

import concurrent.futures
import io
import json
from pathlib import Path

import httpx
import pikepdf
import pytest

from tests.fault.engines import READ_LOG_ENV

from .conftest import ServerProcess
from .helpers import metric, metrics, read_events, upload, wait_for, wait_job


def test_health_ready_docs_and_page(server: ServerProcess) -> None:
    with server.client() as c:
        assert c.get("/healthz").json() == {"status": "ok"}
        ready = c.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["ready"] is True and ready.json()["workers_ready"] == 2
        assert c.get("/docs").status_code == 200
        paths = c.get("/openapi.json").json()["paths"]
        assert {"/v1/ocr", "/v1/jobs", "/v1/jobs/{job_id}", "/v1/jobs/{job_id}/events"} <= set(
            paths
        )
        page = c.get("/")
        assert page.status_code == 200 and "ocrmill" in page.text
        assert c.get("/static/app.js").status_code == 200
        missing = c.get("/nope")
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


def test_ocr_multipart_and_raw_body(server: ServerProcess) -> None:
    with server.client() as c:
        r = c.post("/v1/ocr", files=upload("ok:hello world"))
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["schema"] == 1 and body["ok"] is True
        assert body["text"] == "hello world" and body["input"] == "f0.png"
        assert body["lines"][0]["box"] == [[0, 0], [10, 0], [10, 10], [0, 10]]
        raw = c.post(
            "/v1/ocr?filename=scan.jpg",
            content=b"ok:raw body",
            headers={"Content-Type": "image/jpeg"},
        )
        assert raw.status_code == 200 and raw.json()["text"] == "raw body"
        assert raw.json()["input"] == "scan.jpg"
        # Per-call options are accepted and validated.
        fast = c.post("/v1/ocr?preset=fast&det_limit=640&cls=false", files=upload("ok:x"))
        assert fast.status_code == 200
    # Single-image uploads never pile up on disk.
    assert list((server.data_dir / "tmp").iterdir()) == []


@pytest.mark.parametrize(
    "query", ["preset=nope", "det_limit=5", "det_limit_type=sideways", "timeout=-1"]
)
def test_bad_options_are_400(server: ServerProcess, query: str) -> None:
    with server.client() as c:
        r = c.post(f"/v1/ocr?{query}", files=upload("ok:x"))
        assert r.status_code == 400
        assert r.json()["error"]["code"] == "bad_request"


def test_undecodable_image_is_422_with_the_reason(server: ServerProcess) -> None:
    with server.client() as c:
        r = c.post("/v1/ocr", files=upload("bad"))
        assert r.status_code == 422
        body = r.json()
        assert body["ok"] is False and body["error"]["code"] == "corrupt_image"
        assert body["error"]["message"] == "f0.png: bad on purpose"
        pdf = c.post("/v1/ocr", content=b"%PDF-1.4 ...", headers={"Content-Type": "image/png"})
        assert pdf.status_code == 422
        assert "POST /v1/jobs" in pdf.json()["error"]["message"]


def test_wrong_content_type_is_415(server: ServerProcess) -> None:
    with server.client() as c:
        r = c.post("/v1/ocr", content=b"hello", headers={"Content-Type": "text/plain"})
        assert r.status_code == 415
        assert r.json()["error"]["code"] == "unsupported_media_type"
        empty_form = c.post("/v1/ocr", data={"not": "a file"}, files={"x": ("", b"")})
        assert empty_form.status_code in (400, 422)


def test_upload_over_the_limit_is_413_and_the_server_goes_on(server: ServerProcess) -> None:
    big = b"ok:" + b"x" * (2 * 1024 * 1024)
    with server.client() as c:
        r = c.post("/v1/ocr", files=upload(big))
        assert r.status_code == 413
        assert r.json()["error"]["code"] == "too_large"
        raw = c.post("/v1/ocr", content=big, headers={"Content-Type": "image/png"})
        assert raw.status_code == 413
        job = c.post("/v1/jobs", files=upload("ok:small", big))
        assert job.status_code == 413
        assert c.post("/v1/ocr", files=upload("ok:after")).json()["text"] == "after"
    assert list((server.data_dir / "tmp").iterdir()) == []
    assert list((server.data_dir / "jobs").iterdir()) == []  # the refused job left nothing


def test_deadline_is_504_while_the_image_is_still_being_read(
    server: ServerProcess, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"  # the image is read only once the test opens it
    with server.client() as c:
        try:
            r = c.post("/v1/ocr?timeout=0.5", files=upload(f"wait:{gate}:late"), timeout=30)
            # The answer came before the gate opened: it is the deadline's, not the result's.
            assert r.status_code == 504
            body = r.json()
            assert body["error"]["code"] == "timeout"
            assert (
                body["error"]["message"] == "f0.png: no result within the request deadline of 0.5 s"
            )
        finally:
            gate.touch()
        # The worker finishes the image (its result is dropped) and the server goes on.
        wait_for(lambda: metric(c, "ocrmill_in_flight") == 0)
        assert c.post("/v1/ocr", files=upload("ok:after")).json()["text"] == "after"


def test_job_lifecycle(server: ServerProcess) -> None:
    payloads = ["ok:first", "bad", "slow:0.3:third", "ok:fourth", "ok:fifth"]
    with server.client() as c:
        r = c.post("/v1/jobs", files=upload(*payloads))
        assert r.status_code == 202, r.text
        created = r.json()
        job_id = created["id"]
        assert r.headers["location"] == f"/v1/jobs/{job_id}"
        assert created["progress"] == {"done": 0, "total": 5, "failed": 0}
        events = read_events(c, f"/v1/jobs/{job_id}/events")
        kinds = [e[0] for e in events]
        assert kinds.count("result") == 5 and kinds[-1] == "end" and "progress" in kinds
        seqs = [int(e[2]) for e in events if e[0] == "result"]
        assert seqs == sorted(seqs) == list(range(1, 6))
        done = wait_job(c, job_id)
        assert done["status"] == "done"
        assert done["progress"] == {"done": 5, "total": 5, "failed": 1}
        assert done["expires_at"] > done["finished_at"]
        by_index = {r["index"]: r for r in done["results"]}
        assert sorted(by_index) == [0, 1, 2, 3, 4]
        assert by_index[0]["result"]["text"] == "first" and by_index[0]["file"] == "f0.png"
        assert by_index[1]["result"]["error"]["code"] == "corrupt_image"
        assert by_index[2]["result"]["text"] == "third"
        assert all(r["file_index"] == r["index"] for r in done["results"])
        # Results arrive in pages: ?since= gives the newer ones only.
        newer = c.get(f"/v1/jobs/{job_id}?since=3").json()["results"]
        assert [r["seq"] for r in newer] == [4, 5]
        # A reconnecting SSE client resumes after Last-Event-ID.
        resumed = read_events(c, f"/v1/jobs/{job_id}/events", headers={"Last-Event-ID": "4"})
        assert [int(e[2]) for e in resumed if e[0] == "result"] == [5]
        # Uploaded files are removed once the job is done; results stay until the TTL.
        assert not (server.data_dir / "jobs" / job_id).exists()
        assert c.delete(f"/v1/jobs/{job_id}").status_code == 204
        assert c.get(f"/v1/jobs/{job_id}").status_code == 404
        assert c.delete(f"/v1/jobs/{job_id}").status_code == 404
        assert c.get(f"/v1/jobs/{job_id}/events").status_code == 404


def test_broken_pdf_in_a_job_is_a_record_not_a_failure(server: ServerProcess) -> None:
    files = [
        *upload("ok:picture"),
        ("file", ("broken.pdf", b"%PDF-1.4 not really a document", "application/pdf")),
    ]
    with server.client() as c:
        r = c.post("/v1/jobs", files=files)
        assert r.status_code == 202
        done = wait_job(c, r.json()["id"])
        assert done["progress"] == {"done": 2, "total": 2, "failed": 1}
        broken = next(x for x in done["results"] if x["file"] == "broken.pdf")
        assert broken["result"]["error"]["code"] == "corrupt_image"
        assert "broken.pdf" in broken["result"]["error"]["message"]
        assert str(server.data_dir) not in broken["result"]["error"]["message"]


def test_encrypted_pdf_in_a_job_is_an_encrypted_pdf_record(server: ServerProcess) -> None:
    pdf = pikepdf.new()
    pdf.add_blank_page(page_size=(200, 100))
    locked = io.BytesIO()
    pdf.save(locked, encryption=pikepdf.Encryption(owner="o", user="secret"))
    files = [("file", ("locked.pdf", locked.getvalue(), "application/pdf"))]
    with server.client() as c:
        r = c.post("/v1/jobs", files=files)
        assert r.status_code == 202
        done = wait_job(c, r.json()["id"])
        (record,) = done["results"]
        error = record["result"]["error"]
        assert error["code"] == "encrypted_pdf"
        assert "locked.pdf" in error["message"] and "qpdf --decrypt" in error["message"]
        assert str(server.data_dir) not in error["message"]


def test_delete_cancels_a_running_job(server: ServerProcess) -> None:
    with server.client() as c:
        job_id = c.post("/v1/jobs", files=upload(*["slow:0.3:x"] * 40)).json()["id"]
        wait_for(lambda: c.get(f"/v1/jobs/{job_id}").json()["progress"]["done"] >= 2)
        assert (server.data_dir / "jobs" / job_id).exists()
        assert c.delete(f"/v1/jobs/{job_id}").status_code == 204
        assert not (server.data_dir / "jobs" / job_id).exists()
        # Queued pages were cancelled: the pool drains within a batch or two.
        wait_for(lambda: metric(c, "ocrmill_queue_depth") == 0, timeout=10)
        wait_for(lambda: metric(c, "ocrmill_in_flight") == 0, timeout=10)
        assert metric(c, "ocrmill_job_pages_pending") == 0
        assert c.post("/v1/ocr", files=upload("ok:still serving")).status_code == 200


def test_job_status_is_running_once_its_first_page_is_in_the_pool(
    server: ServerProcess, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"  # no page of the job can finish before the test opens it
    with server.client() as c:
        try:
            created = c.post("/v1/jobs", files=upload(f"wait:{gate}:a", f"wait:{gate}:b"))
            job_id = created.json()["id"]
            running = wait_for(
                lambda: (j := c.get(f"/v1/jobs/{job_id}").json())["status"] == "running" and j
            )
            assert running["progress"] == {"done": 0, "total": 2, "failed": 0}
            assert running["results"] == []
            with c.stream("GET", f"/v1/jobs/{job_id}/events") as events:  # says so too
                data = next(line for line in events.iter_lines() if line.startswith("data:"))
            progress = json.loads(data.partition(":")[2])
            assert progress["status"] == "running" and progress["progress"]["done"] == 0
        finally:
            gate.touch()
        done = wait_job(c, job_id)
        assert done["status"] == "done" and done["progress"]["done"] == 2


def test_job_pages_in_the_pool_are_bounded_and_a_single_image_waits_behind_them_only(
    start_server, tmp_path: Path
) -> None:
    """Order, not speed: every job page waits at a gate, so the pool holds exactly the
    feeder's window of them when a single image arrives; the worker's read log then shows
    that the image was read after at most those pages, not after the rest of the job."""
    reads = tmp_path / "reads.log"
    server = start_server("--workers", "1", env={READ_LOG_ENV: str(reads)})
    window = 2 * 1 * 4  # two batches of 4 per worker, 1 worker
    gate = tmp_path / "gate"
    pages = 120

    def in_pool(c: httpx.Client) -> float:
        m = metrics(c)
        return m[("ocrmill_queue_depth", ())] + m[("ocrmill_in_flight", ())]

    with server.client() as c, concurrent.futures.ThreadPoolExecutor(1) as threads:
        try:
            job_id = c.post("/v1/jobs", files=upload(*[f"wait:{gate}:p"] * pages)).json()["id"]
            wait_for(lambda: metric(c, "ocrmill_job_pages_in_pool") == window)
            assert in_pool(c) == window  # the job fills its window and no more
            single = threads.submit(
                c.post, "/v1/ocr", files=upload("ok:meanwhile", prefix="single")
            )
            wait_for(lambda: in_pool(c) == window + 1)  # the image is queued behind them
            assert metric(c, "ocrmill_job_pages_in_pool") == window
            assert c.get(f"/v1/jobs/{job_id}").json()["progress"]["done"] == 0
        finally:
            gate.touch()
        answer = single.result()
        assert answer.status_code == 200 and answer.json()["text"] == "meanwhile"
        peaks = {"ocrmill_job_pages_in_pool": 0.0, "ocrmill_queue_depth": 0.0}

        def sampled_until_done() -> bool:
            m = metrics(c)
            for name in peaks:
                peaks[name] = max(peaks[name], m[(name, ())])
            return c.get(f"/v1/jobs/{job_id}").json()["status"] == "done"

        wait_for(sampled_until_done, timeout=60, interval=0)
        assert max(peaks.values()) <= window
        job = c.get(f"/v1/jobs/{job_id}").json()
        assert job["progress"] == {"done": pages, "total": pages, "failed": 0}
    read = reads.read_text().splitlines()
    assert len(read) == pages + 1
    # Read after at most the window's pages, never behind the whole job.
    assert read.index("single0.png") <= window


def test_worker_crash_is_a_500_record_and_the_server_goes_on(server: ServerProcess) -> None:
    with server.client() as c:
        r = c.post("/v1/ocr", files=upload("crash"))
        assert r.status_code == 500
        assert r.json()["error"]["code"] == "worker_crashed"
        assert "SIGKILL" in r.json()["error"]["message"]
        # Replacing the worker does not make the server refuse work meanwhile.
        assert c.post("/v1/ocr", files=upload("ok:after")).status_code == 200
        assert metric(c, "ocrmill_worker_restarts_total", cause="crash") >= 2  # try + retry
        assert metric(c, "ocrmill_errors_total", code="worker_crashed") >= 1
        wait_for(lambda: c.get("/readyz").json()["workers_ready"] == 2)


def test_cors_is_off_by_default(server: ServerProcess) -> None:
    with server.client() as c:
        r = c.get("/healthz", headers={"Origin": "http://elsewhere.example"})
        assert "access-control-allow-origin" not in r.headers


def test_metrics_report_requests_latency_queue_workers_and_errors(server: ServerProcess) -> None:
    with server.client() as c:
        c.post("/v1/ocr", files=upload("ok:x"))
        c.post("/v1/ocr", files=upload("bad"))
        m = metrics(c)
    ok = (("method", "POST"), ("route", "/v1/ocr"), ("status", "200"))
    bad = (("method", "POST"), ("route", "/v1/ocr"), ("status", "422"))
    assert m[("ocrmill_http_requests_total", ok)] >= 1
    assert m[("ocrmill_http_requests_total", bad)] >= 1
    assert m[("ocrmill_http_request_duration_seconds_count", ok)] >= 1
    bucket = tuple(sorted((*ok, ("le", "0.5"))))
    assert ("ocrmill_http_request_duration_seconds_bucket", bucket) in m
    assert m[("ocrmill_errors_total", (("code", "corrupt_image"),))] >= 1
    assert m[("ocrmill_workers_ready", ())] == 2
    assert ("ocrmill_queue_depth", ()) in m and ("ocrmill_in_flight", ()) in m
    rss = [v for (name, _), v in m.items() if name == "ocrmill_worker_rss_bytes"]
    assert len(rss) == 2 and all(v > 10 * 1024**2 for v in rss)
    assert ("ocrmill_worker_restarts_total", (("cause", "crash"),)) in m
    # Routes are labelled by template: job ids never become label values.
    routes = {dict(labels).get("route") for _, labels in m} - {None}
    assert "/v1/jobs/{job_id}" in routes
    assert all("{" in r for r in routes if r.startswith("/v1/jobs/"))


# -- admission control -------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_server(tmp_path_factory: pytest.TempPathFactory):
    from .conftest import module_server

    yield from module_server(
        tmp_path_factory,
        "--workers",
        "1",
        "--max-queue",
        "2",
        "--max-pending-pages",
        "4",
        "--max-job-pages",
        "6",
    )


def test_full_queue_is_503_with_retry_after(small_server: ServerProcess) -> None:
    with small_server.client() as c, concurrent.futures.ThreadPoolExecutor(2) as threads:
        slow = [threads.submit(c.post, "/v1/ocr", files=upload("slow:2:busy")) for _ in range(2)]
        wait_for(lambda: metric(c, "ocrmill_ocr_requests_in_progress") == 2)
        refused = c.post("/v1/ocr", files=upload("ok:one too many"))
        assert refused.status_code == 503
        assert refused.json()["error"]["code"] == "overloaded"
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        assert [f.result().status_code for f in slow] == [200, 200]
        assert c.post("/v1/ocr", files=upload("ok:room again")).status_code == 200
        assert metric(c, "ocrmill_errors_total", code="overloaded") >= 1


def test_job_backlog_is_bounded(small_server: ServerProcess) -> None:
    with small_server.client() as c:
        too_big = c.post("/v1/jobs", files=upload(*["ok:x"] * 7))
        assert too_big.status_code == 413
        first = c.post("/v1/jobs", files=upload(*["slow:0.5:x"] * 4))
        assert first.status_code == 202
        refused = c.post("/v1/jobs", files=upload("ok:y"))
        assert refused.status_code == 503
        assert int(refused.headers["retry-after"]) >= 1
        wait_job(c, first.json()["id"])
        assert c.post("/v1/jobs", files=upload("ok:y")).status_code == 202


# -- auth, readiness ------------------------------------------------------------------------


def test_api_key(start_server) -> None:
    server = start_server(
        "--workers",
        "1",
        "--cors-origin",
        "http://app.example",
        env={"OCRMILL_API_KEY": "s3cret"},
    )
    with server.client() as c:
        preflight = c.options(
            "/v1/ocr",
            headers={
                "Origin": "http://app.example",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization",
            },
        )
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == "http://app.example"
        denied = c.post("/v1/ocr", files=upload("ok:x"))
        assert denied.status_code == 401
        assert denied.json()["error"]["code"] == "unauthorized"
        assert denied.headers["www-authenticate"].startswith("Bearer")
        wrong = c.post("/v1/ocr", files=upload("ok:x"), headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        assert c.post("/v1/jobs", files=upload("ok:x")).status_code == 401
        assert c.get("/v1/jobs/abc").status_code == 401
        bearer = c.post("/v1/ocr", files=upload("ok:x"), headers={"Authorization": "Bearer s3cret"})
        assert bearer.status_code == 200
        header = c.post("/v1/ocr", files=upload("ok:y"), headers={"X-API-Key": "s3cret"})
        assert header.status_code == 200 and header.json()["text"] == "y"
        # Operations endpoints stay open (probes and scrapers carry no key).
        for path in ("/healthz", "/readyz", "/metrics", "/"):
            assert c.get(path).status_code == 200


def test_not_ready_until_workers_are_warm(start_server) -> None:
    server = start_server("--workers", "1", engine="tests.server.engines:slow_start", ready=False)
    with server.client() as c:
        assert c.get("/healthz").status_code == 200
        not_ready = c.get("/readyz")
        assert not_ready.status_code == 503
        assert not_ready.json() == {
            "ready": False,
            "workers": 1,
            "workers_ready": 0,
            "error": None,
        }
        early = c.post("/v1/ocr", files=upload("ok:x"))
        assert early.status_code == 503 and "retry-after" in early.headers
        wait_for(lambda: c.get("/readyz").status_code == 200, timeout=60)
        assert c.post("/v1/ocr", files=upload("ok:x")).status_code == 200


def test_second_server_on_the_same_data_dir_is_refused(start_server, tmp_path) -> None:
    first = start_server("--workers", "1")
    second = ServerProcess(first.data_dir, "--workers", "1", log_path=tmp_path / "second.log")
    with pytest.raises(RuntimeError, match="another `ocrmill serve`"):
        second.start()
    assert second.proc is not None and second.proc.wait(timeout=30) == 2
