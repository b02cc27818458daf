"""`certdesk customers …` end to end, in-process through `bot.cli.main`, and `serve`'s demo set.

Each command opens the SQLite database in the test's data directory as a separate operator
run would; what an operator sees (stdout, stderr, exit code) and what the audit trail records
are both checked, and nothing personal may leak into stderr or the logs of a failed import.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.cli import main
from bot.serve import serve
from certcore.config import Settings
from certcore.core import open_database
from certcore.customers import demo_customers
from certcore.customers.directory import Customer, CustomerKind, list_customers, upsert_customers
from certcore.masking import has_hidden
from certcore.storage.schema import audit_log

HEADER = "id_number,kind,name,birth_date,mobile,email,accounts"
GOOD = (
    "A120786753,individual,王三,761205,0936123054,wang.san@example.com,1020-0324338",
    "12345675,corporate,範例科技股份有限公司,1120315,,it@example.com,1020-8000001;1020-8000002",
    "E200000025,individual,張雅婷,900704,+886 900 000 004,,5810-0000004",
)
FULL_VALUES = ("A120786753", "0936123054", "wang.san@example.com", "1020-0324338", "12345675")


@pytest.fixture(autouse=True)
def _no_certdesk_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The commands read CERTDESK_* variables; the runner's own must not change the outcome."""
    for name in list(os.environ):
        if name.startswith("CERTDESK_"):
            monkeypatch.delenv(name)


@pytest.fixture
def certdesk(data_dir: Path, capsys: pytest.CaptureFixture[str]):
    """Run one command; returns (exit code, stdout, stderr)."""

    def run(*args: str) -> tuple[int, str, str]:
        code = main([*args, "--data-dir", str(data_dir)])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


def write_csv(tmp_path: Path, *rows: str, encoding: str = "utf-8") -> str:
    path = tmp_path / f"customers-{encoding}.csv"
    path.write_bytes("\n".join((HEADER, *rows, "")).encode(encoding))
    return str(path)


def audit_rows(settings: Settings, action: str) -> list[dict[str, Any]]:
    async def go() -> list[dict[str, Any]]:
        db = await open_database(settings)
        try:
            async with db.read() as conn:
                rows = await conn.execute(select(audit_log).where(audit_log.c.action == action))
                return [dict(row._mapping) for row in rows]
        finally:
            await db.close()

    return asyncio.run(go())


def test_import_then_list_and_show_masked(certdesk, tmp_path: Path) -> None:
    code, out, err = certdesk("customers", "import", write_csv(tmp_path, *GOOD))
    assert (code, err) == (0, "")
    assert out.strip().endswith(": 3 added, 0 updated, 0 unchanged")

    code, out, _ = certdesk("customers", "import", write_csv(tmp_path, *GOOD))
    assert code == 0 and out.strip().endswith(": 0 added, 0 updated, 3 unchanged")

    code, out, err = certdesk("customers", "list")
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert [line.split()[0] for line in lines] == ["1234XXX75", "A120XXX53", "E200XXX25"]
    assert "0936XXX054" in out and "wa***@example.com" in out and "1020-XXX4338" in out
    assert "1020-XXX0001,1020-XXX0002" in out
    for value in FULL_VALUES:
        assert value not in out

    code, out, _ = certdesk("customers", "show", "a120786753")
    assert code == 0
    assert "id_number:  A120XXX53" in out and "birth_date: 761205" in out
    assert "name:       王三" in out
    for value in FULL_VALUES:
        assert value not in out


def test_json_shape(certdesk, tmp_path: Path) -> None:
    certdesk("customers", "import", write_csv(tmp_path, *GOOD))
    code, out, _ = certdesk("customers", "show", "12345675", "--json")
    assert code == 0
    assert json.loads(out) == {
        "id_number": "1234XXX75",
        "kind": "corporate",
        "name": "範例科技股份有限公司",
        "birth_date": "1120315",
        "mobile": None,
        "email": "i***@example.com",
        "accounts": ["1020-XXX0001", "1020-XXX0002"],
        "status": "active",
    }
    code, out, _ = certdesk("customers", "list", "--json")
    listed = json.loads(out)
    assert [entry["id_number"] for entry in listed] == ["1234XXX75", "A120XXX53", "E200XXX25"]
    assert listed[2]["mobile"] == "0900XXX004" and listed[2]["email"] is None


def test_unmasked_output_is_audited(certdesk, tmp_path: Path, settings: Settings) -> None:
    certdesk("customers", "import", write_csv(tmp_path, *GOOD))
    assert audit_rows(settings, "customers.unmasked") == []

    code, out, _ = certdesk("customers", "list", "--unmasked", "--json")
    assert code == 0
    assert json.loads(out)[1] == {
        "id_number": "A120786753",
        "kind": "individual",
        "name": "王三",
        "birth_date": "761205",
        "mobile": "0936123054",
        "email": "wang.san@example.com",
        "accounts": ["1020-0324338"],
        "status": "active",
    }
    code, out, _ = certdesk("customers", "show", "A120786753", "--unmasked")
    assert code == 0 and "A120786753" in out and "0936123054" in out

    records = audit_rows(settings, "customers.unmasked")
    assert [(r["subject"], json.loads(r["details"])) for r in records] == [
        ("customers", {"command": "list", "count": 3}),
        ("A120XXX53", {"command": "show"}),
    ]
    assert all(r["actor"].startswith("operator:") and r["channel"] == "cli" for r in records)
    imported = audit_rows(settings, "customers.imported")
    assert len(imported) == 1
    assert all(value not in imported[0]["details"] for value in FULL_VALUES)
    code, out, _ = certdesk("audit", "verify")
    assert code == 0 and "3 records" in out


def test_bad_file_imports_nothing_and_leaks_nothing(
    certdesk, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    rows = (
        GOOD[0],
        "A120786753,corporate,王三,761205,0936123054,wang.san@example.com,1020-0324338",
        "12345675,corporate,範例科技股份有限公司,20230315,,it@example,1020-8000001",
        "E200000025,individual,張雅婷,900704,0223456789,,",
    )
    code, out, err = certdesk("customers", "import", write_csv(tmp_path, *rows))
    assert code == 2 and out == ""
    assert err.splitlines() == [
        "line 3: id_number A120XXX53: also on line 2",
        "line 3: id_number A120XXX53: a corporate customer needs a Unified Business Number",
        "line 4: birth_date: looks like a Gregorian date; give the ROC date (year - 1911), "
        "e.g. 761205 for 1987-12-05",
        "line 4: email i***@example: the domain needs a dot and no empty parts (name@example.com)",
        "line 5: mobile XXX: not a Taiwanese mobile number (09XXXXXXXX or +886 9XXXXXXXX)",
        f"certdesk: error: {tmp_path / 'customers-utf-8.csv'}: 5 problems in the customer "
        "file; nothing imported",
    ]
    for value in (*FULL_VALUES, "0223456789", "20230315", "E200000025", "it@example"):
        assert value not in err
        assert value not in caplog.text

    code, out, _ = certdesk("customers", "list", "--json")
    assert (code, json.loads(out)) == (0, [])


def test_hidden_characters_are_refused_and_never_echoed(certdesk, tmp_path: Path) -> None:
    rows = (
        "A120786753,individual,王\u2028三,761205,0936123054,,",
        'E200000025,individual,=HYPERLINK("x"),900704,,a@\u202emoc.elpmaxe,',
    )
    code, out, err = certdesk("customers", "import", write_csv(tmp_path, *rows))
    assert code == 2 and out == ""
    reason = "contains control, bidirectional or invisible characters"
    assert err.splitlines()[:2] == [f"line 2: name: {reason}", f"line 3: email XXX: {reason}"]
    assert "\u202e" not in err and "\u2028" not in err


async def store_as_before_the_import_refused_it(settings: Settings, customer: Customer) -> None:
    db = await open_database(settings)
    try:
        async with db.write() as conn:
            await upsert_customers(conn, [customer], datetime.now(UTC))
    finally:
        await db.close()


def test_hidden_characters_stored_earlier_are_shown_escaped(certdesk, settings: Settings) -> None:
    """The import refuses them now; an entry stored before must not reverse the listing."""
    hostile = Customer(
        id_number="A120786753",
        kind=CustomerKind.INDIVIDUAL,
        name="王\u202e三\u2028",
        birth_date=date(1987, 12, 5),
        mobile="0936123054",
        email="a@\u202emoc.elpmaxe\x1b[2J",
        accounts=(),
    )
    asyncio.run(store_as_before_the_import_refused_it(settings, hostile))
    outputs = {}
    for extra in ((), ("--json",), ("--unmasked",), ("--unmasked", "--json")):
        for command in (("list",), ("show", "A120786753")):
            code, out, err = certdesk("customers", *command, *extra)
            assert (code, err) == (0, "")
            outputs[(*command, *extra)] = out
            assert not has_hidden(out.replace("\n", "")), out
            assert "王\\u202e三\\u2028" in out
    assert "a@\\u202emoc.elpmaxe\\u001b[2J" in outputs[("list", "--unmasked")]
    assert "XXX" in outputs[("list",)].split()  # the masked e-mail
    unmasked = json.loads(outputs[("show", "A120786753", "--unmasked", "--json")])
    assert (unmasked["name"], unmasked["email"]) == (hostile.name, hostile.email)


def test_big5_import_needs_its_encoding(certdesk, tmp_path: Path) -> None:
    path = write_csv(tmp_path, *GOOD, encoding="cp950")
    code, _, err = certdesk("customers", "import", path)
    assert code == 2
    assert "line 2: encoding: bytes that are not utf-8 (a Big5 export? use --encoding cp950)" in err
    code, out, _ = certdesk("customers", "import", path, "--encoding", "cp950")
    assert code == 0 and "3 added" in out
    _, out, _ = certdesk("customers", "show", "E200000025")
    assert "張雅婷" in out


def test_import_usage_errors(certdesk, tmp_path: Path) -> None:
    code, _, err = certdesk("customers", "import", str(tmp_path / "missing.csv"))
    assert code == 2 and err.startswith("certdesk: error: cannot read")
    assert len(err.splitlines()) == 1
    with pytest.raises(SystemExit) as refused:
        certdesk("customers", "import", write_csv(tmp_path), "--encoding", "big5")
    assert refused.value.code == 2


def test_show_unknown_and_invalid_ids(certdesk) -> None:
    code, out, err = certdesk("customers", "show", "A120786753")
    assert (code, out) == (2, "")
    assert err == "certdesk: error: A120XXX53: no such customer in the directory\n"
    code, _, err = certdesk("customers", "show", "A120786754")
    assert code == 2 and "A120786754" not in err and "A120XXX54" in err


def test_empty_directory_lists_nothing(certdesk) -> None:
    code, out, err = certdesk("customers", "list")
    assert (code, out) == (0, "") and "empty" in err


def test_demo_is_idempotent(certdesk, settings: Settings) -> None:
    count = len(demo_customers())
    code, out, _ = certdesk("customers", "demo")
    assert (code, out) == (0, f"demo customers: {count} added, 0 updated, 0 unchanged\n")
    code, out, _ = certdesk("customers", "demo")
    assert (code, out) == (0, f"demo customers: 0 added, 0 updated, {count} unchanged\n")
    _, out, _ = certdesk("customers", "list")
    assert len(out.splitlines()) == count
    assert "A120XXX53" in out and "王三" in out
    assert len(audit_rows(settings, "customers.demo_loaded")) == 2


# -- serve -------------------------------------------------------------------------------


async def serve_until_listening(
    settings: Settings, caplog: pytest.LogCaptureFixture, environ: dict[str, str]
) -> None:
    """Start `serve` in this event loop, wait for it to listen, stop it."""
    caplog.clear()
    task = asyncio.create_task(serve(settings, host="127.0.0.1", port=0))
    try:
        async with asyncio.timeout(20):
            while "CertDesk listening" not in caplog.text:
                if task.done():
                    task.result()
                await asyncio.sleep(0.02)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def stored_count(settings: Settings) -> int:
    db = await open_database(settings)
    try:
        async with db.read() as conn:
            return len(await list_customers(conn))
    finally:
        await db.close()


async def test_serve_loads_the_demo_set_on_first_start_in_dev_mode(
    settings: Settings,
    caplog: pytest.LogCaptureFixture,
    environ: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CERTDESK_CA_PASSPHRASE", environ["CERTDESK_CA_PASSPHRASE"])
    caplog.set_level(logging.INFO)
    assert settings.outbox_mode
    await serve_until_listening(settings, caplog, environ)
    assert f"demo customers loaded: {len(demo_customers())}" in caplog.text
    assert await stored_count(settings) == len(demo_customers())
    await serve_until_listening(settings, caplog, environ)
    assert "demo customers loaded: 0" in caplog.text


async def test_serve_with_a_real_sender_loads_no_demo(
    settings: Settings,
    caplog: pytest.LogCaptureFixture,
    environ: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CERTDESK_CA_PASSPHRASE", environ["CERTDESK_CA_PASSPHRASE"])
    caplog.set_level(logging.INFO)
    configured = dataclasses.replace(
        settings, smtp_host="127.0.0.1", smtp_from="certdesk@example.com"
    )
    await serve_until_listening(configured, caplog, environ)
    assert "demo customers" not in caplog.text
    assert await stored_count(settings) == 0
