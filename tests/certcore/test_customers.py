"""The customer directory: field rules, the back-office CSV parser, the import and the demo set.

Parsing is pure, so most tests are tables of file text and the exact problem lines an
operator would read; the import tests run over SQLite in a throw-away data directory.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import select, update

from certcore.audit import Actor, verify_chain
from certcore.clock import FrozenClock
from certcore.config import Settings
from certcore.core import open_database
from certcore.customers import (
    Customer,
    CustomerFileRejected,
    CustomerKind,
    CustomerStatus,
    InvalidField,
    ParsedFile,
    demo_customers,
    import_customer_file,
    load_demo_customers,
    normalise_account,
    normalise_email,
    normalise_mobile,
    parse_customer_file,
    upsert_demo_customers,
)
from certcore.customers.directory import get_customer, list_customers, upsert_customers
from certcore.identity import IdKind, classify_id, format_roc_date
from certcore.masking import mask_id
from certcore.storage import Database
from certcore.storage.schema import audit_log, customers

TODAY = date(2026, 11, 24)
HEADER = "id_number,kind,name,birth_date,mobile,email,accounts"
GOOD_ROWS = (
    "A120786753,individual,王三,761205,0936123054,wang.san@example.com,1020-0324338",
    "12345675,corporate,範例科技股份有限公司,1120315,+886 936-000-111,it@Example.COM,"
    "1020-8000001;1020-8000002",
    "A800000014,individual,Alex Example,880808,886900000007,,5810-0000007",
    "AC00000129,individual,Maria Example,700101,,maria@example.org,",
    'h120000013,individual,"林, 志豪",０６８０９２０,+8860900000003,zh@example.com,1020-1234567;',
)


def csv_bytes(*rows: str, encoding: str = "utf-8", header: str = HEADER) -> bytes:
    return "\r\n".join((header, *rows, "")).encode(encoding)


def parse(data: bytes, *, encoding: str = "utf-8", today: date = TODAY) -> ParsedFile:
    return parse_customer_file(data, encoding=encoding, today=today)


def problems_of(*rows: str, today: date = TODAY) -> list[str]:
    parsed = parse(csv_bytes(*rows), today=today)
    assert parsed.customers == ()
    return [str(problem) for problem in parsed.problems]


# -- field rules -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "0936123054",
        "0936-123-054",
        "0936 123 054",
        "+886936123054",
        "+886 936 123 054",
        "+886-936-123-054",
        "+8860936123054",
        "886936123054",
        "00886936123054",
        "０９３６１２３０５４",
        " 0936123054 ",
    ],
)
def test_mobile_spellings_normalise(text: str) -> None:
    assert normalise_mobile(text) == "0936123054"


@pytest.mark.parametrize(
    "text",
    ["", "0223456789", "093612305", "09361230541", "+1 415 555 0100", "0936abc054", "936123054"],
)
def test_non_mobile_numbers_are_rejected(text: str) -> None:
    with pytest.raises(InvalidField) as caught:
        normalise_mobile(text)
    assert text.strip() == "" or text not in str(caught.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("wang.san@example.com", "wang.san@example.com"),
        (" Wang.San@Example.COM ", "Wang.San@example.com"),
        ("a+tag@mail.example.org", "a+tag@mail.example.org"),
        ("ａｂ＠example.com", "ab@example.com"),
    ],
)
def test_plausible_emails_are_accepted(text: str, expected: str) -> None:
    assert normalise_email(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "wang.example.com",
        "a@b@example.com",
        "wang san@example.com",
        "@example.com",
        "wang@localhost",
        "wang@example.",
        "wang@.example.com",
        "wang@example..com",
        "a@example.com;b@example.com",
        "x" * 250 + "@example.com",
    ],
)
def test_implausible_emails_are_rejected(text: str) -> None:
    with pytest.raises(InvalidField):
        normalise_email(text)


@pytest.mark.parametrize("text", ["1020-0324338", " 1020-0324338 ", "１０２０－０３２４３３８"])
def test_account_format(text: str) -> None:
    assert normalise_account(text) == "1020-0324338"


@pytest.mark.parametrize(
    "text", ["10200324338", "102-0324338", "1020-032433", "1020-03243380", "A020-0324338", ""]
)
def test_bad_account_format(text: str) -> None:
    with pytest.raises(InvalidField):
        normalise_account(text)


def test_customer_repr_is_masked() -> None:
    text = repr(demo_customers()[0])
    assert "A120XXX53" in text and "0936XXX054" in text and "wa***@example.com" in text
    for secret in ("A120786753", "0936123054", "wang.san", "王三", "0324338"):
        assert secret not in text


# -- parsing -----------------------------------------------------------------------------


def test_good_file() -> None:
    parsed = parse(csv_bytes(*GOOD_ROWS))
    assert parsed.problems == ()
    wang, company, alex, maria, lin = parsed.customers
    assert wang == Customer(
        id_number="A120786753",
        kind=CustomerKind.INDIVIDUAL,
        name="王三",
        birth_date=date(1987, 12, 5),
        mobile="0936123054",
        email="wang.san@example.com",
        accounts=("1020-0324338",),
        status=CustomerStatus.ACTIVE,
    )
    assert company.kind is CustomerKind.CORPORATE
    assert company.birth_date == date(2023, 3, 15)  # 1120315: 7 digits
    assert company.mobile == "0936000111"
    assert company.email == "it@example.com"
    assert company.accounts == ("1020-8000001", "1020-8000002")
    assert (alex.mobile, alex.email) == ("0900000007", None)
    assert (maria.mobile, maria.email, maria.accounts) == (None, "maria@example.org", ())
    # Lower case ID, quoted name with a comma, full-width date, trunk 0 after +886.
    assert lin.id_number == "H120000013"
    assert lin.name == "林, 志豪"
    assert lin.birth_date == date(1979, 9, 20)
    assert lin.mobile == "0900000003"
    assert lin.accounts == ("1020-1234567",)


def test_header_only_file_is_empty_not_wrong() -> None:
    assert parse(csv_bytes()) == ParsedFile((), ())


def test_blank_lines_are_skipped_but_counted() -> None:
    data = f"{HEADER}\n\n{GOOD_ROWS[0]}\n\nnot,enough\n".encode()
    assert [str(p) for p in parse(data).problems] == ["line 5: row: 2 fields, expected 7"]


def test_several_bad_rows_are_all_reported_in_order_and_nothing_is_parsed() -> None:
    rows = (
        GOOD_ROWS[0],
        "A120786754,individual,王小明,800101,0900000001,,1020-0000001",
        GOOD_ROWS[1],
        "A123456789,individual,,19870231,0223456789,not-an-address,10200000001",
        "A123456789,individual,陳美玲,1151224,,,",
        "F223456786,person,陳美玲,000101,0900000002,,",
    )
    assert problems_of(*rows) == [
        "line 3: id_number A120XXX54: check digit does not match",
        "line 5: name: missing",
        "line 5: birth_date: looks like a Gregorian date; give the ROC date (year - 1911), "
        "e.g. 761205 for 1987-12-05",
        "line 5: mobile XXX: not a Taiwanese mobile number (09XXXXXXXX or +886 9XXXXXXXX)",
        "line 5: email XXX: must contain exactly one @",
        "line 5: accounts 1020-XXX0001: not an account number BBBB-NNNNNNN "
        "(4-digit branch, 7 digits)",
        "line 6: id_number A123XXX89: also on line 5",
        "line 6: birth_date: in the future",
        "line 6: mobile/email: both missing; at least one is needed",
        "line 7: kind 'person': must be individual or corporate",
        "line 7: birth_date: ROC year 0 does not exist",
    ]


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        (
            "12345675,individual,範例科技,1120315,,it@example.com,",
            "line 2: id_number 1234XXX75: a Unified Business Number belongs to a corporate "
            "customer",
        ),
        (
            "A120786753,corporate,王三,761205,0936123054,,",
            "line 2: id_number A120XXX53: a corporate customer needs a Unified Business Number",
        ),
        (
            "A800000014,corporate,Alex,880808,0936123054,,",
            "line 2: id_number A800XXX14: a corporate customer needs a Unified Business Number",
        ),
        (
            "A12078675,individual,王三,761205,0936123054,,",
            "line 2: id_number A120XXX75: wrong length (10 characters, or 8 digits for a UBN)",
        ),
        (
            "AZ20786753,individual,王三,761205,0936123054,,",
            "line 2: id_number AZ20XXX53: not a national ID, resident number or Unified "
            "Business Number",
        ),
        ("  ,individual,王三,761205,0936123054,,", "line 2: id_number: missing"),
        (
            "A120786753,INDIVIDUAL-X,王三,761205,0936123054,,",
            "line 2: kind: must be individual or corporate",
        ),
        ("A120786753,individual,王三,,0936123054,,", "line 2: birth_date: missing"),
        ("A120786753,individual,王三,760231,0936123054,,", "line 2: birth_date: not a real date"),
        (
            "A120786753,individual,王三,7612,0936123054,,",
            "line 2: birth_date: must be 6 or 7 digits (ROC date, e.g. 761205 or 1120315)",
        ),
        (
            "A120786753,individual,王三,76年12月5日,0936123054,,",
            "line 2: birth_date: not a ROC date (6 or 7 digits, e.g. 761205 or 1120315)",
        ),
        (
            "A120786753,individual,王三,761205,0936123054,,1020-0324338;1020-032",
            "line 2: accounts XXX: not an account number BBBB-NNNNNNN (4-digit branch, 7 digits)",
        ),
        ("A120786753,individual,王三,761205,0936123054,,,", "line 2: row: 8 fields, expected 7"),
    ],
)
def test_row_problems(row: str, expected: str) -> None:
    assert problems_of(row) == [expected]


def test_kind_is_case_insensitive() -> None:
    (customer,) = parse(csv_bytes("A120786753,Individual,王三,761205,0936123054,,")).customers
    assert customer.kind is CustomerKind.INDIVIDUAL


def test_gregorian_birth_date_gets_a_hint_without_the_value() -> None:
    (line,) = problems_of("A120786753,individual,王三,19871205,0936123054,,")
    assert "Gregorian" in line and "ROC" in line
    assert "19871205" not in line


def test_duplicate_id_in_a_file() -> None:
    assert problems_of(
        GOOD_ROWS[0],
        GOOD_ROWS[2],
        "a120786753,individual,王三,761205,0936123054,,",
    ) == ["line 4: id_number A120XXX53: also on line 2"]


def test_duplicate_accounts_on_one_row_collapse() -> None:
    (customer,) = parse(
        csv_bytes("A120786753,individual,王三,761205,0936123054,,1020-0324338; 1020-0324338")
    ).customers
    assert customer.accounts == ("1020-0324338",)


def test_old_resident_numbers_stop_being_accepted_after_2030() -> None:
    row = "AC00000129,individual,Maria Example,700101,,maria@example.org,"
    assert parse(csv_bytes(row), today=date(2030, 12, 31)).problems == ()
    assert problems_of(row, today=date(2031, 1, 1)) == [
        "line 2: id_number AC00XXX29: old-form resident numbers expired on 2030-12-31"
    ]


@pytest.mark.parametrize(
    "header",
    [
        "id_number,kind,name,birth_date,mobile,email",
        "id,kind,name,birth_date,mobile,email,accounts",
        GOOD_ROWS[0],
    ],
)
def test_wrong_header(header: str) -> None:
    problems = [str(p) for p in parse(csv_bytes(GOOD_ROWS[0], header=header)).problems]
    assert problems == [
        "line 1: header: must be exactly id_number,kind,name,birth_date,mobile,email,accounts"
    ]


def test_empty_file() -> None:
    assert [str(p) for p in parse(b"").problems] == [
        "line 1: header: must be exactly id_number,kind,name,birth_date,mobile,email,accounts"
    ]


def test_header_tolerates_spaces_and_line_endings() -> None:
    data = b" id_number , kind,name,birth_date,mobile,email,accounts\n" + GOOD_ROWS[0].encode()
    assert len(parse(data).customers) == 1


def test_broken_quoting_is_a_problem_not_a_crash() -> None:
    (problem,) = parse(
        csv_bytes(GOOD_ROWS[0], 'A123456789,individual,"王小明"x,800101,,,')
    ).problems
    assert str(problem).startswith("line 3: csv: ")


def test_utf8_bom_is_accepted() -> None:
    parsed = parse(b"\xef\xbb\xbf" + csv_bytes(*GOOD_ROWS))
    assert len(parsed.customers) == len(GOOD_ROWS)


def test_big5_export_with_chinese_names() -> None:
    rows = (
        "A120786753,individual,王三,761205,0936123054,,1020-0324338",
        "12345675,corporate,範例科技股份有限公司,1120315,,it@example.com,",
        "F223456786,individual,陳美玲,850315,0900000002,,",
    )
    data = csv_bytes(*rows, encoding="cp950")
    parsed = parse(data, encoding="cp950")
    assert [c.name for c in parsed.customers] == ["王三", "範例科技股份有限公司", "陳美玲"]
    # The same bytes read as UTF-8: every line with Chinese in it, with a hint.
    assert [str(p) for p in parse(data).problems] == [
        f"line {n}: encoding: bytes that are not utf-8 (a Big5 export? use --encoding cp950)"
        for n in (2, 3, 4)
    ]


def test_utf8_file_read_as_cp950_is_refused_rather_than_garbled() -> None:
    for data in (csv_bytes(*GOOD_ROWS), b"\xef\xbb\xbf" + csv_bytes(GOOD_ROWS[2])):
        assert [str(p) for p in parse(data, encoding="cp950").problems] == [
            "line 1: encoding: the file is UTF-8, not cp950: drop --encoding cp950"
        ]


def test_undecodable_cp950_bytes() -> None:
    data = csv_bytes(GOOD_ROWS[2]) + b"A120786753,individual,\x80\xff,761205,,a@example.com,\n"
    assert [str(p) for p in parse(data, encoding="cp950").problems] == [
        "line 3: encoding: bytes that are not cp950 (a user-defined 造字 character? "
        "replace it with a standard one)"
    ]


@pytest.mark.parametrize("name", ["王\u200b三", "王\x07三", "王\ue000三", " ", "王" * 121])
def test_bad_names(name: str) -> None:
    (line,) = problems_of(f"A120786753,individual,{name},761205,0936123054,,")
    assert line.startswith("line 2: name: ")


HIDDEN = {
    "line-separator": "\u2028",
    "paragraph-separator": "\u2029",
    "left-to-right-embedding": "\u202a",
    "right-to-left-override": "\u202e",
    "right-to-left-isolate": "\u2067",
    "pop-directional-isolate": "\u2069",
    "zero-width-space": "\u200b",
    "zero-width-joiner": "\u200d",
    "byte-order-mark": "\ufeff",
    "tag-letter": "\U000e0041",
    "escape": "\x1b",
    "c1-control-sequence-introducer": "\x9b",
    "hangul-filler": "\u3164",
}


@pytest.mark.parametrize("char", list(HIDDEN.values()), ids=list(HIDDEN))
def test_hidden_characters_in_names_and_emails_are_refused(char: str) -> None:
    """Shown, they make a value read other than it is: `a***@‮moc.elpmaxe`."""
    lines = problems_of(
        f"A120786753,individual,王{char}三,761205,0936123054,,",
        f"E200000025,individual,張雅婷,900704,,wang@{char}moc.elpmaxe,",
        f"A800000014,individual,Alex,880808,,wa{char}ng.san@example.com,",
    )
    reason = "contains control, bidirectional or invisible characters"
    assert lines == [
        f"line 2: name: {reason}",
        f"line 3: email XXX: {reason}",
        f"line 4: email XXX: {reason}",
    ]
    assert not any(ch == char for line in lines for ch in line)


def test_unsupported_encoding_is_a_programming_error() -> None:
    with pytest.raises(ValueError):
        parse(b"", encoding="latin-1")


def test_problem_lines_never_show_personal_values() -> None:
    secrets = {
        "id": "A123456789",
        "mobile": "0912345678",
        "email": "private.person@example.com",
        "account": "9876-5432109",
        "name": "秘密人",
    }
    rows = (
        # A good ID on rows whose other fields are wrong, and wrong values of every kind.
        f"{secrets['id']},corporate,{secrets['name']},19800101,{secrets['mobile']}x,"
        f"{secrets['email'].removesuffix('.com')},{secrets['account']}0",
        f"{secrets['id']},individual,{secrets['name']},800101,{secrets['mobile']},"
        f"{secrets['email']},{secrets['account']}",
        f"{secrets['id']},individual,{secrets['name']},800101,{secrets['mobile']},,",
        "A123456788,individual,x,800101,,x@example.com,",
    )
    lines = problems_of(*rows)
    assert len(lines) >= 5
    text = "\n".join(lines)
    for value in (*secrets.values(), "A123456788", "19800101", "private.person"):
        assert value not in text
    assert "A123XXX89" in text and "pr***@example" in text


# -- the import --------------------------------------------------------------------------


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[Database]:
    opened = await open_database(settings)
    try:
        yield opened
    finally:
        await opened.close()


async def run_import(db: Database, data: bytes, clock: FrozenClock, encoding: str = "utf-8"):
    return await import_customer_file(
        db, data, encoding=encoding, clock=clock, actor=Actor("operator:test", "cli")
    )


async def audit_records(db: Database, action: str) -> list[dict[str, Any]]:
    async with db.read() as conn:
        rows = await conn.execute(select(audit_log).where(audit_log.c.action == action))
        return [dict(row._mapping) for row in rows]


async def test_import_then_reimport_is_idempotent(db: Database, clock: FrozenClock) -> None:
    data = csv_bytes(*GOOD_ROWS)
    first = await run_import(db, data, clock)
    assert (first.added, first.updated, first.unchanged) == (5, 0, 0)
    async with db.read() as conn:
        stored = await list_customers(conn)
        wang = await get_customer(conn, "a120786753")
    assert [c.id_number for c in stored] == sorted(c.id_number for c in parse(data).customers)
    assert wang == parse(data).customers[0]

    clock.advance(hours=1)
    second = await run_import(db, data, clock)
    assert (second.added, second.updated, second.unchanged) == (0, 0, 5)
    async with db.read() as conn:
        updated_at = (await conn.execute(select(customers.c.updated_at))).scalars().all()
    assert set(updated_at) == {datetime(2026, 11, 24, 2, 0, tzinfo=UTC)}

    records = await audit_records(db, "customers.imported")
    assert [json.loads(r["details"])["added"] for r in records] == [5, 0]
    details = json.loads(records[0]["details"])
    assert details.keys() == {"added", "updated", "unchanged", "encoding", "sha256"}
    assert records[0]["actor"] == "operator:test" and records[0]["subject"] == "customers"
    async with db.read() as conn:
        assert await verify_chain(conn) == 2


async def test_changed_row_updates_the_customer(db: Database, clock: FrozenClock) -> None:
    await run_import(db, csv_bytes(*GOOD_ROWS), clock)
    changed = (
        GOOD_ROWS[0]
        .replace("0936123054", "0936999888")
        .replace("1020-0324338", "1020-0324338;5810-1111111")
    )
    clock.advance(days=1)
    summary = await run_import(db, csv_bytes(changed, *GOOD_ROWS[1:]), clock)
    assert (summary.added, summary.updated, summary.unchanged) == (0, 1, 4)
    async with db.read() as conn:
        wang = await get_customer(conn, "A120786753")
        row = (
            await conn.execute(select(customers).where(customers.c.id_number == "A120786753"))
        ).one()
    assert wang is not None
    assert wang.mobile == "0936999888"
    assert wang.accounts == ("1020-0324338", "5810-1111111")
    assert row.updated_at > row.created_at


async def test_import_keeps_an_operators_suspension(db: Database, clock: FrozenClock) -> None:
    await run_import(db, csv_bytes(*GOOD_ROWS), clock)
    async with db.write() as conn:
        await conn.execute(
            update(customers)
            .where(customers.c.id_number == "A120786753")
            .values(status=CustomerStatus.SUSPENDED.value)
        )
    changed = GOOD_ROWS[0].replace("wang.san@", "san.wang@")
    summary = await run_import(db, csv_bytes(changed), clock)
    assert summary.updated == 1
    async with db.read() as conn:
        wang = await get_customer(conn, "A120786753")
    assert wang is not None and wang.status is CustomerStatus.SUSPENDED
    assert wang.email == "san.wang@example.com"


async def test_a_bad_file_imports_nothing(db: Database, clock: FrozenClock) -> None:
    await run_import(db, csv_bytes(GOOD_ROWS[0]), clock)
    bad = csv_bytes(GOOD_ROWS[0].replace("王三", "王三三"), *GOOD_ROWS[1:], "x,y")
    with pytest.raises(CustomerFileRejected) as caught:
        await run_import(db, bad, clock)
    assert [str(p) for p in caught.value.problems] == ["line 7: row: 2 fields, expected 7"]
    assert str(caught.value) == "1 problem in the customer file; nothing imported"
    async with db.read() as conn:
        stored = await list_customers(conn)
    assert [(c.id_number, c.name) for c in stored] == [("A120786753", "王三")]
    assert len(await audit_records(db, "customers.imported")) == 1


async def test_big5_import(db: Database, clock: FrozenClock) -> None:
    data = csv_bytes("F223456786,individual,陳美玲,850315,0900000002,,", encoding="cp950")
    summary = await run_import(db, data, clock, encoding="cp950")
    assert summary.added == 1
    async with db.read() as conn:
        customer = await get_customer(conn, "F223456786")
    assert customer is not None and customer.name == "陳美玲"


async def test_upsert_refuses_the_same_id_twice(db: Database, clock: FrozenClock) -> None:
    wang = demo_customers()[0]
    async with db.write() as conn:
        with pytest.raises(ValueError):
            await upsert_customers(conn, [wang, wang], clock())


# -- the demo set ------------------------------------------------------------------------


def test_demo_set_covers_every_case() -> None:
    demo = demo_customers()
    assert len(demo) >= 10
    assert len({c.id_number for c in demo}) == len(demo)
    kinds = {c.id_number: classify_id(c.id_number) for c in demo}
    assert None not in kinds.values()
    assert {IdKind.NATIONAL_ID, IdKind.RESIDENT_NEW, IdKind.RESIDENT_OLD, IdKind.UBN} <= set(
        kinds.values()
    )
    assert any(
        c.kind is CustomerKind.CORPORATE and len(format_roc_date(c.birth_date)) == 7 for c in demo
    )
    assert any(len(c.accounts) >= 2 and c.kind is CustomerKind.INDIVIDUAL for c in demo)
    assert any(c.mobile and not c.email for c in demo)
    assert any(c.email and not c.mobile for c in demo)
    assert all(c.email is None or c.email.endswith(("@example.com", "@example.org")) for c in demo)
    (wang,) = [c for c in demo if c.name == "王三"]
    assert mask_id(wang.id_number) == "A120XXX53"
    assert format_roc_date(wang.birth_date) == "761205"
    assert wang.accounts == ("1020-0324338",)
    assert wang.mobile is not None and wang.mobile.startswith("0936")
    assert wang.mobile.endswith("054")


def test_demo_set_passes_the_import_rules() -> None:
    """Written out as a back-office file, the demo set parses back to itself (status aside)."""
    demo = demo_customers()
    rows = [
        ",".join(
            (
                c.id_number,
                c.kind.value,
                c.name,
                format_roc_date(c.birth_date),
                c.mobile or "",
                c.email or "",
                ";".join(c.accounts),
            )
        )
        for c in demo
    ]
    parsed = parse(csv_bytes(*rows, encoding="cp950"), encoding="cp950")
    assert parsed.problems == ()
    assert all(a.same_data(b) for a, b in zip(parsed.customers, demo, strict=True))


async def test_load_demo_only_into_an_empty_directory(db: Database, clock: FrozenClock) -> None:
    assert await load_demo_customers(db, clock()) == len(demo_customers())
    assert await load_demo_customers(db, clock()) == 0
    async with db.read() as conn:
        stored = await list_customers(conn)
        suspended = [c for c in stored if c.status is CustomerStatus.SUSPENDED]
    assert len(stored) == len(demo_customers()) and len(suspended) == 1


async def test_load_demo_leaves_an_imported_directory_alone(
    db: Database, clock: FrozenClock
) -> None:
    await run_import(db, csv_bytes(GOOD_ROWS[2]), clock)
    assert await load_demo_customers(db, clock()) == 0
    async with db.read() as conn:
        assert len(await list_customers(conn)) == 1


async def test_upsert_demo_restores_the_set(db: Database, clock: FrozenClock) -> None:
    await run_import(db, csv_bytes(GOOD_ROWS[0].replace("王三", "王三豐")), clock)
    summary = await upsert_demo_customers(db, clock(), actor=Actor("operator:test", "cli"))
    assert (summary.added, summary.updated) == (len(demo_customers()) - 1, 1)
    again = await upsert_demo_customers(db, clock(), actor=Actor("operator:test", "cli"))
    assert (again.added, again.updated, again.unchanged) == (0, 0, len(demo_customers()))
    assert len(await audit_records(db, "customers.demo_loaded")) == 2
