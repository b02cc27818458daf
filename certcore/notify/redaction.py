"""Making a gateway's words safe to log and to put into an exception.

Gateways echo what they were sent: an SMTP server names the refused address in full, an SMS
gateway puts the number in a section header. Every operator detail therefore passes through
`scrub`, which swaps each known secret (password, user name, message body) and the destination
for a placeholder or its mask, and folds the text into one short line.
"""

from __future__ import annotations

from collections.abc import Mapping

MAX_DETAIL_CHARS = 200
SECRET = "***"
BODY = "[message]"


def scrub(text: str, replacements: Mapping[str, str]) -> str:
    """`text` on one line, at most MAX_DETAIL_CHARS long, with every key replaced by its value.

    Longer keys go first, so that a body containing the destination is replaced whole.
    """
    for needle in sorted((key for key in replacements if key), key=len, reverse=True):
        text = text.replace(needle, replacements[needle])
    line = " ".join(text.split())
    if len(line) > MAX_DETAIL_CHARS:
        line = line[: MAX_DETAIL_CHARS - 1] + "…"
    return line
