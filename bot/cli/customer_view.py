"""How the operator commands show directory entries: masked unless asked otherwise.

The JSON shape is the back office's own (ROC compact birth date, accounts as a list), so an
operator can compare an entry with the line of the file it came from.

Control, bidirectional and zero-width characters are shown as escapes (`\u202e`), in the
table and in the JSON alike: the import refuses them, but an entry stored before it did must
not reverse or hide what the operator reads. The project writes no CSV, so a name beginning
with `=`, `+`, `-` or `@` cannot become a spreadsheet formula through CertDesk's own output.
"""

from __future__ import annotations

import json
import unicodedata
from typing import Any

from certcore.customers import Customer, ImportSummary
from certcore.identity import format_roc_date
from certcore.masking import escape_hidden, mask_account, mask_email, mask_id, mask_mobile

_TABLE_COLUMNS = (
    ("id_number", 10),
    ("kind", 10),
    ("name", 22),
    ("birth_date", 7),
    ("mobile", 10),
    ("email", 28),
)


def customer_fields(customer: Customer, *, unmasked: bool = False) -> dict[str, Any]:
    """The entry as the JSON output's object; ID, mobile, e-mail and accounts masked."""
    mobile, email = customer.mobile, customer.email
    return {
        "id_number": customer.id_number if unmasked else mask_id(customer.id_number),
        "kind": customer.kind.value,
        "name": customer.name,
        "birth_date": format_roc_date(customer.birth_date),
        "mobile": mobile if unmasked or mobile is None else mask_mobile(mobile),
        "email": email if unmasked or email is None else mask_email(email),
        "accounts": list(
            customer.accounts if unmasked else (mask_account(a) for a in customer.accounts)
        ),
        "status": customer.status.value,
    }


def table_line(fields: dict[str, Any]) -> str:
    """One line of `customers list`, aligned for CJK names too (they are two columns wide)."""
    cells = [_pad(escape_hidden(str(fields[key] or "-")), width) for key, width in _TABLE_COLUMNS]
    cells.append(escape_hidden(",".join(fields["accounts"])) or "-")
    cells.append(fields["status"])
    return "  ".join(cells)


def detail_lines(fields: dict[str, Any]) -> list[str]:
    """`customers show`: one "label: value" line per field."""
    return [
        f"{key + ':':<12}"
        + escape_hidden(", ".join(value) if isinstance(value, list) else str(value or "-"))
        for key, value in fields.items()
    ]


def json_text(value: Any) -> str:
    """The `--json` output: readable CJK, hidden characters escaped (still the same JSON)."""
    text = json.dumps(value, ensure_ascii=False, indent=2)
    # json.dumps escapes a newline inside a string, so each raw one is the indentation's.
    return "\n".join(escape_hidden(line) for line in text.split("\n"))


def _pad(text: str, width: int) -> str:
    shown = sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)
    return text + " " * max(width - shown, 0)


def summary_text(summary: ImportSummary) -> str:
    return f"{summary.added} added, {summary.updated} updated, {summary.unchanged} unchanged"
