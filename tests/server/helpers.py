"""Small HTTP helpers shared by the server tests."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families


def upload(*payloads: str | bytes, prefix: str = "f") -> list[tuple[str, tuple[str, bytes, str]]]:
    """Multipart ``file`` fields; fake-engine payloads like ``ok:TEXT`` or ``slow:1:TEXT``."""
    out = []
    for i, payload in enumerate(payloads):
        data = payload.encode() if isinstance(payload, str) else payload
        out.append(("file", (f"{prefix}{i}.png", data, "image/png")))
    return out


def wait_job(client: httpx.Client, job_id: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = client.get(f"/v1/jobs/{job_id}").json()
        if body["status"] in ("done", "failed"):
            return body
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} not finished after {timeout} s: {body}")


def wait_for(predicate: Any, timeout: float = 30, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("condition not met in time")


def metrics(client: httpx.Client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """``{(sample name, sorted labels): value}`` from ``/metrics``."""
    text = client.get("/metrics").text
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def metric(client: httpx.Client, name: str, **labels: str) -> float:
    want = tuple(sorted(labels.items()))
    return metrics(client).get((name, want), 0.0)


def read_events(client: httpx.Client, path: str, **kwargs: Any) -> list[tuple[str, Any, str]]:
    """Every server-sent event of ``path`` until the stream ends: (event, data, id)."""
    events = []
    with client.stream("GET", path, **kwargs) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        block: dict[str, str] = {}
        for line in response.iter_lines():
            if line == "":
                if "data" in block:
                    events.append(
                        (
                            block.get("event", "message"),
                            json.loads(block["data"]),
                            block.get("id", ""),
                        )
                    )
                block = {}
            elif not line.startswith(":") and ":" in line:
                key, _, value = line.partition(":")
                block[key] = value.strip()
    return events
