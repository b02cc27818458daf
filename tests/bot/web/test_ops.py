"""The operators' endpoints and the service's own lines: alive is not ready, ready needs the
database and a CA key that signs, a stopping instance takes no new work, the metrics count what
happened, every response carries its request id, and a log line is JSON with no ID number."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot import jobs, logs
from bot.web import create_app, ops
from certcore.audit import Actor
from certcore.core import Core
from certcore.customers import load_demo_customers

DEMO = "A123456789"


@pytest.fixture
async def client(core: Core) -> AsyncIterator[TestClient[Any, Any]]:
    await load_demo_customers(core.db, core.clock())
    async with TestClient(TestServer(create_app(core))) as test_client:
        yield test_client


def sample(text: str, name: str, **labels: str) -> float:
    """One sample's value in Prometheus's text format (0 when absent)."""
    wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
    pattern = rf"^{re.escape(name)}{{{re.escape(wanted)}}} (\S+)$" if labels else rf"^{name} (\S+)$"
    found = re.search(pattern, text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


async def scrape(client: TestClient[Any, Any]) -> str:
    response = await client.get("/metrics")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    return await response.text()


async def test_alive_is_not_ready_without_a_database(
    client: TestClient[Any, Any], core: Core, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert (await client.get("/readyz")).status == 200

    async def unreachable() -> None:
        raise ConnectionRefusedError("database down")

    monkeypatch.setattr(core.db, "ping", unreachable)
    assert (await client.get("/healthz")).status == 200
    response = await client.get("/readyz")
    assert response.status == 503
    assert (await response.json())["problems"] == ["database"]


async def test_not_ready_when_the_ca_key_does_not_sign(
    client: TestClient[Any, Any], core: Core, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuses(*args: Any, **kwargs: Any) -> bytes:
        raise OSError("the HSM does not answer")

    monkeypatch.setattr(core.ca.key, "sign", refuses)
    response = await client.get("/readyz")
    assert response.status == 503 and (await response.json())["problems"] == ["ca_key"]


async def test_a_stopping_instance_takes_no_new_work(client: TestClient[Any, Any]) -> None:
    ops.begin_stopping(client.app)
    refused = await client.post("/api/chat/sessions")
    assert refused.status == 503 and refused.headers["Retry-After"] == "5"
    assert (await client.post("/line/webhook", data=b"{}")).status == 503
    assert (await client.get("/healthz")).status == 200
    ready = await client.get("/readyz")
    assert ready.status == 503 and (await ready.json())["problems"] == ["stopping"]
    assert (await client.get("/ca.pem")).status == 200  # relying parties are still served


async def test_metrics_count_events_and_audited_actions(
    client: TestClient[Any, Any], core: Core
) -> None:
    before = await scrape(client)
    session = (await (await client.post("/api/chat/sessions")).json())["session"]
    posted = await client.post(f"/api/chat/sessions/{session}/messages", json={"text": "選單"})
    assert posted.status == 200
    await core.certificates.issue(DEMO, "abc123", actor=Actor("operator:t", "cli"))
    after = await scrape(client)
    labels = {"channel": "web", "kind": "text", "outcome": "answered"}
    assert sample(after, "certdesk_events_total", **labels) == (
        sample(before, "certdesk_events_total", **labels) + 1
    )
    assert (
        sample(after, "certdesk_issuances_total") == sample(before, "certdesk_issuances_total") + 1
    )
    assert "certdesk_step_seconds_bucket" in after
    assert DEMO not in after


async def test_each_response_carries_a_request_id(client: TestClient[Any, Any]) -> None:
    given = await client.get("/healthz", headers={"X-Request-Id": "lb-12345678"})
    assert given.headers["X-Request-Id"] == "lb-12345678"
    replaced = await client.get("/healthz", headers={"X-Request-Id": "bad id with spaces"})
    assert re.fullmatch(r"[0-9a-f]{32}", replaced.headers["X-Request-Id"])
    missing = await client.get("/no-such-page")
    assert missing.status == 404 and missing.headers["X-Request-Id"]


def test_a_json_log_line_masks_id_numbers_and_names_its_request() -> None:
    record = logging.LogRecord(
        "certdesk.test", logging.WARNING, __file__, 1, "customer %s failed", (DEMO,), None
    )
    token = logs.REQUEST_ID.set("req-00000001")
    try:
        line = json.loads(logs.JsonFormatter().format(record))
    finally:
        logs.REQUEST_ID.reset(token)
    assert line["level"] == "WARNING" and line["logger"] == "certdesk.test"
    assert line["request_id"] == "req-00000001"
    assert DEMO not in line["message"] and line["message"].startswith("customer A")


async def test_while_the_database_is_down_new_work_is_refused_until_it_answers(
    client: TestClient[Any, Any], core: Core
) -> None:
    core.db.outage_since = 0.0  # as the first failing transaction notes it
    refused = await client.post("/api/chat/sessions", headers={"Accept-Language": "zh-TW"})
    assert refused.status == 503 and refused.headers["Retry-After"] == "5"
    assert (await refused.json())["error"] == "unavailable"  # worded for the page
    line = await client.post("/line/webhook", data=b"{}")
    assert line.status == 503  # LINE redelivers later
    assert (await client.get("/healthz")).status == 200
    await jobs.watch_database(core)  # the job asks; the database answers
    assert core.db.reachable
    assert (await client.post("/api/chat/sessions")).status == 201
