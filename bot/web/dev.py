"""The development pages: where the one-time codes of dev mode can be read.

With no SMTP server and no SMS gateway configured (`settings.outbox_mode`), codes are stored in
the development outbox instead of being sent; `/dev/outbox` shows them to a person trying the
service, `/dev/outbox.json` to a script or a test. They exist only in dev mode — `create_app`
does not mount them otherwise, so a configured service answers 404 — and dev mode itself listens
only on loopback (`bot.serve`), since whoever reads these pages reads the codes.
"""

from __future__ import annotations

import html
from typing import Any

from aiohttp import web

from bot.web.keys import CORE
from certcore.clock import TAIPEI
from certcore.i18n import normalise_locale, translate
from certcore.notify import OutboxEntry, recent_outbox

SHOWN = 200
"""The newest messages the pages show."""

HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'"
    ),
}


def mount(app: web.Application) -> None:
    app.add_routes([web.get("/dev/outbox", outbox_page), web.get("/dev/outbox.json", outbox_json)])


async def _entries(request: web.Request) -> list[OutboxEntry]:
    """Oldest first, the newest `SHOWN`."""
    async with request.app[CORE].db.read() as conn:
        newest_first = await recent_outbox(conn, SHOWN)
    return list(reversed(newest_first))


def _as_json(entry: OutboxEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "channel": entry.medium.value,
        "to": entry.destination,
        "subject": entry.subject,
        "text": entry.body,
        "sent_at": entry.created_at.isoformat(),
    }


async def outbox_json(request: web.Request) -> web.Response:
    """`[{"channel": "sms"|"email", "to", "text", "sent_at"}, …]`, newest last."""
    entries = [_as_json(entry) for entry in await _entries(request)]
    return web.json_response(entries, headers=HEADERS)


async def outbox_page(request: web.Request) -> web.Response:
    """The outbox as a page a person reads, newest first, marked as development only."""
    locale = normalise_locale(request.query.get("lang") or request.headers.get("Accept-Language"))

    def t(key: str) -> str:
        return html.escape(translate(locale, f"webchat.dev.{key}"))

    rows = []
    for entry in reversed(await _entries(request)):
        sent = entry.created_at.astimezone(TAIPEI).strftime("%Y-%m-%d %H:%M:%S")
        body = entry.body if not entry.subject else f"{entry.subject}\n\n{entry.body}"
        rows.append(
            "<tr>"
            f"<td>{html.escape(sent)}</td>"
            f"<td>{html.escape(entry.medium.value)}</td>"
            f"<td>{html.escape(entry.destination)}</td>"
            f'<td class="outbox-text">{html.escape(body)}</td>'
            "</tr>"
        )
    table = (
        f"<table><thead><tr><th scope='col'>{t('sent_at')}</th><th scope='col'>{t('channel')}"
        f"</th><th scope='col'>{t('to')}</th><th scope='col'>{t('text')}</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
        if rows
        else f"<p>{t('empty')}</p>"
    )
    lang = "en" if locale == "en" else "zh-Hant-TW"
    page = f"""<!doctype html>
<html lang="{lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="5">
<meta name="robots" content="noindex">
<title>{t("title")}</title>
<link rel="stylesheet" href="/static/site.css">
<link rel="stylesheet" href="/static/dev.css">
</head>
<body>
<p class="dev-banner" role="alert">⚠ DEVELOPMENT ONLY · {t("banner")}</p>
<main class="dev">
<h1>{t("title")}</h1>
<p>{t("refresh")} <a href="/dev/outbox.json">{t("json")}</a> · <a href="/">{t("chat")}</a></p>
{table}
</main>
</body>
</html>
"""
    return web.Response(text=page, content_type="text/html", charset="utf-8", headers=HEADERS)
