"""Jobs across server restarts (SIGKILL and SIGTERM) and job expiry (TTL)."""

from __future__ import annotations

import sqlite3

import pytest

from .helpers import upload, wait_for, wait_job


def _texts(job: dict) -> dict[int, str]:
    return {r["index"]: r["result"].get("text", "<error>") for r in job["results"]}


@pytest.mark.parametrize("how", ["kill", "term"])
def test_unfinished_job_resumes_after_restart_and_results_survive(start_server, how) -> None:
    """Documented behaviour: unfinished jobs resume on the next start on the same data
    directory; results recorded before the stop are kept, each item is recorded once."""
    payloads = ["ok:a", "ok:b"] + [f"slow:1:s{i}" for i in range(6)]
    first = start_server("--workers", "1")
    with first.client() as c:
        job_id = c.post("/v1/jobs", files=upload(*payloads)).json()["id"]
        before = wait_for(
            lambda: (j := c.get(f"/v1/jobs/{job_id}").json())["progress"]["done"] >= 3 and j
        )
    assert before["status"] == "running"
    if how == "kill":
        first.kill()  # nothing runs in the server: no flush, no cleanup
    else:
        assert first.stop() in (0, -15)  # uvicorn re-raises SIGTERM after a clean shutdown
        assert "Application shutdown complete" in first.log()
    # The job's uploads are still there for the resume.
    assert (first.data_dir / "jobs" / job_id).exists()

    second = start_server("--workers", "1", data_dir=first.data_dir)
    with second.client() as c:
        resumed = c.get(f"/v1/jobs/{job_id}").json()
        assert resumed["status"] in ("queued", "running")
        kept = _texts(resumed)
        assert len(kept) >= 3 and kept[0] == "a" and kept[1] == "b"
        assert _texts(before).items() <= kept.items()  # nothing recorded was lost
        done = wait_job(c, job_id, timeout=60)
    assert done["status"] == "done"
    assert done["progress"] == {"done": 8, "total": 8, "failed": 0}
    assert _texts(done) == {0: "a", 1: "b", **{i + 2: f"s{i}" for i in range(6)}}
    assert sorted(r["seq"] for r in done["results"]) == list(range(1, 9))
    for index, text in kept.items():  # what was recorded before the stop is unchanged
        assert _texts(done)[index] == text
    assert not (first.data_dir / "jobs" / job_id).exists()
    assert "resuming 1 unfinished job(s)" in second.log()


def test_finished_jobs_expire_with_their_files(start_server) -> None:
    server = start_server("--workers", "2", "--job-ttl", "1.5")
    jobs_dir = server.data_dir / "jobs"
    with server.client() as c:
        slow_id = c.post("/v1/jobs", files=upload("slow:6:x")).json()["id"]
        fast_id = c.post("/v1/jobs", files=upload("ok:a", "ok:b")).json()["id"]
        assert (jobs_dir / slow_id).exists()
        fast = wait_job(c, fast_id)
        assert fast["expires_at"] == pytest.approx(fast["finished_at"] + 1.5)
        # Expiry counts from the end of a job: the unfinished one keeps its files.
        wait_for(lambda: c.get(f"/v1/jobs/{fast_id}").status_code == 404, timeout=10)
        assert c.get(f"/v1/jobs/{slow_id}").status_code == 200
        assert (jobs_dir / slow_id).exists()
        wait_job(c, slow_id, timeout=30)
        wait_for(lambda: c.get(f"/v1/jobs/{slow_id}").status_code == 404, timeout=10)
    assert list(jobs_dir.iterdir()) == []
    assert list((server.data_dir / "tmp").iterdir()) == []
    db = sqlite3.connect(server.data_dir / "jobs.sqlite3")
    try:
        assert db.execute("SELECT COUNT(*) FROM jobs").fetchone()[0] == 0
        assert db.execute("SELECT COUNT(*) FROM items").fetchone()[0] == 0
    finally:
        db.close()


def test_stray_upload_directories_are_removed_at_start(start_server, tmp_path) -> None:
    data = tmp_path / "data"
    stray = data / "jobs" / "0123456789abcdef"  # e.g. killed in the middle of an upload
    stray.mkdir(parents=True)
    (stray / "00000").write_bytes(b"ok:orphan")
    (data / "tmp").mkdir()
    (data / "tmp" / "left.upload").write_bytes(b"x")
    server = start_server("--workers", "1", data_dir=data)
    with server.client() as c:
        assert c.get("/healthz").status_code == 200
    assert not stray.exists()
    assert list((data / "tmp").iterdir()) == []


def test_a_job_that_cannot_be_resumed_is_failed_with_the_reason(start_server) -> None:
    """A whole job fails (status ``failed``, ``error`` says why) when it cannot be resumed:
    here its stored options are no longer valid when the server starts again."""
    first = start_server("--workers", "1")
    with first.client() as c:
        job_id = c.post("/v1/jobs", files=upload("slow:5:a", "slow:5:b")).json()["id"]
    first.kill()
    db = sqlite3.connect(first.data_dir / "jobs.sqlite3")
    try:
        db.execute("UPDATE jobs SET options = ? WHERE id = ?", ('{"det_limit": 5}', job_id))
        db.commit()
    finally:
        db.close()
    second = start_server("--workers", "1", data_dir=first.data_dir)
    with second.client() as c:
        job = c.get(f"/v1/jobs/{job_id}").json()
    assert job["status"] == "failed"
    assert job["error"].startswith("cannot be resumed") and "det_limit" in job["error"]
    assert job["finished_at"] is not None
    assert not (first.data_dir / "jobs" / job_id).exists()
