"""Importing the back office's customer file (CSV) into the directory.

Parsing is pure (bytes, encoding and today in; customers or problems out) so every rule is
tested without a database. The import is all-or-nothing: one bad row and nothing is written,
because a half-imported directory is harder to reason about than yesterday's. Problems name
the line and field but only ever show masked values, since operator output ends up in logs.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Final

from certcore.audit import Actor, AuditTrail
from certcore.clock import TAIPEI, Clock
from certcore.customers.directory import (
    Customer,
    CustomerKind,
    ImportSummary,
    InvalidField,
    customer_kind_for,
    normalise_account,
    normalise_email,
    normalise_mobile,
    normalise_name,
    upsert_customers,
)
from certcore.errors import InvalidInput
from certcore.identity import (
    OLD_RESIDENT_LAST_VALID_DAY,
    IdKind,
    IdProblem,
    RocDateError,
    RocDateProblem,
    classify_id,
    id_problem,
    normalise_id,
    parse_roc_date,
)
from certcore.masking import mask_account, mask_email, mask_id, mask_mobile
from certcore.storage import Database

HEADER: Final = ("id_number", "kind", "name", "birth_date", "mobile", "email", "accounts")
SUPPORTED_ENCODINGS: Final = ("utf-8", "cp950")
ACCOUNT_SEPARATOR: Final = ";"
AUDIT_ACTION: Final = "customers.imported"

_ID_REASONS: Final = {
    IdProblem.WRONG_LENGTH: "wrong length (10 characters, or 8 digits for a UBN)",
    IdProblem.BAD_FORMAT: "not a national ID, resident number or Unified Business Number",
    IdProblem.BAD_CHECKSUM: "check digit does not match",
}
_DATE_REASONS: Final = {
    RocDateProblem.EMPTY: "missing",
    RocDateProblem.NOT_DIGITS: "not a ROC date (6 or 7 digits, e.g. 761205 or 1120315)",
    RocDateProblem.GREGORIAN: (
        "looks like a Gregorian date; give the ROC date (year - 1911), e.g. 761205 for 1987-12-05"
    ),
    RocDateProblem.WRONG_LENGTH: "must be 6 or 7 digits (ROC date, e.g. 761205 or 1120315)",
    RocDateProblem.YEAR_ZERO: "ROC year 0 does not exist",
    RocDateProblem.NOT_A_DATE: "not a real date",
    RocDateProblem.IN_FUTURE: "in the future",
}
# What a non-personal value may look like to be echoed in a problem (the `kind` column).
_ECHO_MAX: Final = 20


@dataclass(frozen=True)
class ImportProblem:
    """One thing wrong with the file; `value` is already masked, or empty when withheld."""

    line: int
    """1-based, the header being line 1, as an editor shows it."""
    field: str
    value: str
    reason: str

    def __str__(self) -> str:
        shown = f" {self.value}" if self.value else ""
        return f"line {self.line}: {self.field}{shown}: {self.reason}"


@dataclass(frozen=True)
class ParsedFile:
    customers: tuple[Customer, ...]
    """Empty whenever there is a problem: the file is taken whole or not at all."""
    problems: tuple[ImportProblem, ...]


class CustomerFileRejected(InvalidInput):
    code = "customer_file_rejected"

    def __init__(self, problems: tuple[ImportProblem, ...]) -> None:
        count = len(problems)
        super().__init__(
            f"{count} problem{'s' if count != 1 else ''} in the customer file; nothing imported"
        )
        self.problems = problems


# -- parsing (pure) ----------------------------------------------------------------------


def parse_customer_file(data: bytes, *, encoding: str = "utf-8", today: date) -> ParsedFile:
    """Read a back-office export. `encoding` is "utf-8" (a BOM is fine) or "cp950" (Big5)."""
    if encoding not in SUPPORTED_ENCODINGS:
        raise ValueError(f"encoding must be one of {', '.join(SUPPORTED_ENCODINGS)}")
    problems = _encoding_problems(data, encoding)
    if problems:
        return ParsedFile((), tuple(problems))
    text = data.decode("utf-8-sig" if encoding == "utf-8" else encoding)
    return _parse_text(text, today)


def _encoding_problems(data: bytes, encoding: str) -> list[ImportProblem]:
    """Every line that does not decode, and the classic mix-up of the two encodings.

    Lines can be decoded one by one because a newline byte never occurs inside a character
    in UTF-8 or in Big5 (whose second bytes are 0x40-0x7E and 0xA1-0xFE).
    """
    if encoding == "cp950" and _is_utf8_text(data):
        return [_problem(1, "encoding", "", "the file is UTF-8, not cp950: drop --encoding cp950")]
    hint = (
        " (a Big5 export? use --encoding cp950)"
        if encoding == "utf-8"
        # Python's cp950 has no mapping for Big5's user-defined area (造字, 0xFA40-0xFEFE).
        else " (a user-defined 造字 character? replace it with a standard one)"
    )
    problems = []
    for number, raw in enumerate(data.split(b"\n"), start=1):
        codec = "utf-8-sig" if encoding == "utf-8" and number == 1 else encoding
        try:
            raw.decode(codec)
        except UnicodeDecodeError:
            problems.append(
                _problem(number, "encoding", "", f"bytes that are not {encoding}{hint}")
            )
    return problems


def _is_utf8_text(data: bytes) -> bool:
    """UTF-8 with a BOM or non-ASCII characters: Big5 text is practically never valid UTF-8."""
    if data.startswith(codecs.BOM_UTF8):
        return True
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return not data.isascii()


def _parse_text(text: str, today: date) -> ParsedFile:
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    problems: list[ImportProblem] = []
    parsed: list[Customer] = []
    first_line_of: dict[str, int] = {}
    try:
        header = next(reader, None)
        if header is None or tuple(cell.strip() for cell in header) != HEADER:
            # The header's content is not echoed: without one, line 1 is a customer's data.
            expected = ",".join(HEADER)
            return ParsedFile((), (_problem(1, "header", "", f"must be exactly {expected}"),))
        end = reader.line_num
        for row in reader:
            line, end = end + 1, reader.line_num
            if not any(cell.strip() for cell in row):
                continue  # blank lines, such as a trailing one, carry nothing
            customer, row_problems = _parse_row(line, row, today)
            # Duplicates count even on rows with other problems, so one fix round suffices.
            id_number = _valid_id(row)
            if id_number is not None and id_number in first_line_of:
                earlier = first_line_of[id_number]
                duplicate = _problem(
                    line, "id_number", mask_id(id_number), f"also on line {earlier}"
                )
                row_problems.insert(0, duplicate)
            elif id_number is not None:
                first_line_of[id_number] = line
            problems.extend(row_problems)
            if customer is not None:
                parsed.append(customer)
    except csv.Error as exc:
        # Quoting is broken beyond this point; what the csv module says holds no field values.
        problems.append(_problem(reader.line_num, "csv", "", str(exc)))
    if problems:
        return ParsedFile((), tuple(problems))
    return ParsedFile(tuple(parsed), ())


def _parse_row(
    line: int, cells: list[str], today: date
) -> tuple[Customer | None, list[ImportProblem]]:
    """One data row: the customer, or None and every problem found in it, in column order."""
    if len(cells) != len(HEADER):
        return None, [_problem(line, "row", "", f"{len(cells)} fields, expected {len(HEADER)}")]
    raw = dict(zip(HEADER, (cell.strip() for cell in cells), strict=True))
    problems: list[ImportProblem] = []

    def field(
        name: str, value: str, mask: Callable[[str], str], check: Callable[[str], str]
    ) -> str | None:
        try:
            return check(value)
        except InvalidField as exc:
            problems.append(_problem(line, name, mask(value) if value else "", str(exc)))
            return None

    kind = _parse_kind(raw["kind"])
    id_number = _parse_id(line, raw["id_number"], kind, today, problems)
    if kind is None:
        problems.append(
            _problem(line, "kind", _echo(raw["kind"]), "must be individual or corporate")
        )
    name = field("name", raw["name"], lambda _: "", normalise_name)
    birth_date = _parse_birth_date(line, raw["birth_date"], today, problems)
    mobile = (
        field("mobile", raw["mobile"], mask_mobile, normalise_mobile) if raw["mobile"] else None
    )
    email = field("email", raw["email"], mask_email, normalise_email) if raw["email"] else None
    if not raw["mobile"] and not raw["email"]:
        problems.append(_problem(line, "mobile/email", "", "both missing; at least one is needed"))
    accounts: list[str] = []
    for item in raw["accounts"].split(ACCOUNT_SEPARATOR):
        if item.strip():
            account = field("accounts", item.strip(), mask_account, normalise_account)
            if account is not None and account not in accounts:
                accounts.append(account)
    if problems:
        return None, problems
    assert id_number is not None and kind is not None and name is not None
    assert birth_date is not None
    return (
        Customer(
            id_number=id_number,
            kind=kind,
            name=name,
            birth_date=birth_date,
            mobile=mobile,
            email=email,
            accounts=tuple(accounts),
        ),
        [],
    )


def _valid_id(cells: list[str]) -> str | None:
    """The row's ID in canonical form if it passes its checksum, whatever else is wrong."""
    id_number = normalise_id(cells[0]) if cells else ""
    return id_number if classify_id(id_number) is not None else None


def _parse_kind(value: str) -> CustomerKind | None:
    try:
        return CustomerKind(value.lower())
    except ValueError:
        return None


def _parse_id(
    line: int,
    value: str,
    kind: CustomerKind | None,
    today: date,
    problems: list[ImportProblem],
) -> str | None:
    """The canonical ID, if it is valid, fits the customer kind and is still in force."""
    id_number = normalise_id(value)
    if not id_number:
        problems.append(_problem(line, "id_number", "", "missing"))
        return None
    shown = mask_id(id_number)
    id_kind = classify_id(id_number)
    if id_kind is None:
        reason = _ID_REASONS[id_problem(id_number) or IdProblem.BAD_FORMAT]
        problems.append(_problem(line, "id_number", shown, reason))
        return None
    if kind is not None and customer_kind_for(id_kind) is not kind:
        reason = (
            "a corporate customer needs a Unified Business Number"
            if kind is CustomerKind.CORPORATE
            else "a Unified Business Number belongs to a corporate customer"
        )
        problems.append(_problem(line, "id_number", shown, reason))
        return None
    if id_kind is IdKind.RESIDENT_OLD and today > OLD_RESIDENT_LAST_VALID_DAY:
        reason = f"old-form resident numbers expired on {OLD_RESIDENT_LAST_VALID_DAY}"
        problems.append(_problem(line, "id_number", shown, reason))
        return None
    return id_number


def _parse_birth_date(
    line: int, value: str, today: date, problems: list[ImportProblem]
) -> date | None:
    """The date, or a problem that never echoes it: a birth date is personal data."""
    try:
        return parse_roc_date(value, today=today)
    except RocDateError as exc:
        problems.append(_problem(line, "birth_date", "", _DATE_REASONS[exc.problem]))
        return None


def _echo(value: str) -> str:
    """A non-personal value worth showing (a mistyped kind), or nothing if it looks like data."""
    if value.isascii() and value.isalpha() and len(value) <= _ECHO_MAX:
        return repr(value)
    return ""


def _problem(line: int, field: str, value: str, reason: str) -> ImportProblem:
    return ImportProblem(line=line, field=field, value=value, reason=reason)


# -- the import (I/O) --------------------------------------------------------------------


async def import_customer_file(
    db: Database,
    data: bytes,
    *,
    encoding: str,
    clock: Clock,
    actor: Actor,
) -> ImportSummary:
    """Parse, then upsert in one transaction with one audit record; raises CustomerFileRejected.

    The audit record holds the counts and the file's SHA-256 (to tell which file it was),
    never a customer's data.
    """
    now = clock()
    parsed = parse_customer_file(data, encoding=encoding, today=now.astimezone(TAIPEI).date())
    if parsed.problems:
        raise CustomerFileRejected(parsed.problems)
    async with db.write() as conn:
        summary = await upsert_customers(conn, parsed.customers, now)
        await AuditTrail(clock).append(
            conn,
            actor,
            action=AUDIT_ACTION,
            subject="customers",
            details={
                "added": summary.added,
                "updated": summary.updated,
                "unchanged": summary.unchanged,
                "encoding": encoding,
                "sha256": hashlib.sha256(data).hexdigest(),
            },
        )
    return summary
