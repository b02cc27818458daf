"""The console's HTML: the login form, the queue, a conversation, the canned replies.

Server-rendered strings, as the download page is (`bot.web.download_page`): every value is
escaped where it enters the markup (`esc`), the catalogue's texts included. No inline script or
style (the CSP forbids both): `/agent/static/agent.js` polls the live parts and swaps in the
fragments the server rendered with these same functions (`queue_rows`, `status_block`,
`transcript_block`), so there is one way a row or a line is drawn, and it is escaped. Every
POST form carries the session's CSRF token (`hidden_csrf`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bot.agent.summary import Customer, Line, QueueItem
from bot.agent.words import Words
from bot.web.download_page import esc
from certcore.clock import taipei_text
from certcore.handoff import NOTE_MAX, CannedReply, Handoff, HandoffState

STATIC = "/agent/static"
ROOT = "/agent"
QUEUE_COLUMNS = ("state", "channel", "customer", "reason", "summary", "agent", "unread", "since")


@dataclass(frozen=True)
class Chrome:
    """What every page around its body shows: who is logged in, the token, the live URL."""

    words: Words
    agent: str | None = None
    csrf: str = ""
    live: str = ""


def layout(chrome: Chrome, title: str, body: str, *, flash: str = "", error: str = "") -> str:
    w = chrome.words
    nav = ""
    if chrome.agent is not None:
        nav = (
            '<nav class="nav">'
            f'<a href="{ROOT}/">{esc(w.t("agent.nav.queue"))}</a>'
            f'<a href="{ROOT}/canned">{esc(w.t("agent.nav.canned"))}</a>'
            f'<span class="who">{esc(w.t("agent.nav.signed_in", name=chrome.agent))}</span>'
            f'<form method="post" action="{ROOT}/logout" class="inline">'
            f"{hidden_csrf(chrome.csrf)}"
            f'<button type="submit" class="link">{esc(w.t("agent.nav.logout"))}</button>'
            "</form>"
            "</nav>"
        )
    notices = ""
    if flash:
        notices += f'<p class="flash" role="status">{esc(flash)}</p>'
    if error:
        notices += f'<p class="error" role="alert">{esc(error)}</p>'
    live = f' data-live="{esc(chrome.live)}"' if chrome.live else ""
    return (
        "<!doctype html>"
        f'<html lang="{w.html_lang}">'
        "<head>"
        '<meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="referrer" content="no-referrer">'
        '<meta name="robots" content="noindex, nofollow">'
        f"<title>{esc(title)} – {esc(w.t('agent.brand'))}</title>"
        '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">'
        f'<link rel="stylesheet" href="{STATIC}/agent.css">'
        f'<script src="{STATIC}/agent.js" defer></script>'
        "</head>"
        f"<body{live}>"
        '<header class="bar">'
        f'<span class="brand">{esc(w.t("agent.brand"))}</span>'
        f"{nav}"
        f'<a class="lang" href="?lang={w.other}">{esc(w.t("agent.lang.other"))}</a>'
        "</header>"
        f'<main id="main"><h1>{esc(title)}</h1>{notices}{body}</main>'
        "</body></html>"
    )


def hidden_csrf(token: str) -> str:
    return f'<input type="hidden" name="csrf" value="{esc(token)}">' if token else ""


def message_body(w: Words, text: str) -> str:
    """A page that only says something, with the way back to the queue."""
    return (
        f'<p class="message">{esc(text)}</p>'
        f'<p><a href="{ROOT}/">{esc(w.t("agent.nav.queue"))}</a></p>'
    )


# -- login ------------------------------------------------------------------------------------


def login_body(w: Words, csrf: str) -> str:
    return (
        f'<form method="post" action="{ROOT}/login" class="login" autocomplete="on">'
        f"{hidden_csrf(csrf)}"
        f'<label for="name">{esc(w.t("agent.login.name"))}</label>'
        '<input id="name" name="name" autocomplete="username" required maxlength="64" '
        'autocapitalize="none" spellcheck="false">'
        f'<label for="password">{esc(w.t("agent.login.password"))}</label>'
        '<input id="password" name="password" type="password" autocomplete="current-password" '
        'required maxlength="1024">'
        f'<button type="submit">{esc(w.t("agent.login.submit"))}</button>'
        "</form>"
        f'<p class="hint">{esc(w.t("agent.login.hint"))}</p>'
    )


# -- the queue --------------------------------------------------------------------------------


def queue_body(w: Words, items: Sequence[QueueItem]) -> str:
    head = "".join(
        f'<th scope="col">{esc(w.t(f"agent.queue.col.{h}"))}</th>' for h in QUEUE_COLUMNS
    )
    return (
        f'<p class="hint">{esc(w.t("agent.queue.hint"))}</p>'
        '<table class="queue"><thead><tr>'
        f"{head}"
        "</tr></thead>"
        f'<tbody id="queue-rows" data-part="queue-rows">{queue_rows(w, items)}</tbody>'
        "</table>"
    )


def queue_rows(w: Words, items: Sequence[QueueItem]) -> str:
    if not items:
        return f'<tr class="empty"><td colspan="8">{esc(w.t("agent.queue.empty"))}</td></tr>'
    return "".join(_queue_row(w, item) for item in items)


def _queue_row(w: Words, item: QueueItem) -> str:
    handoff = item.handoff
    href = f"{ROOT}/c/{handoff.id}"
    recent = "".join(f"<li>{esc(text)}</li>" for text in item.recent)
    summary = ""
    if item.bot_said:
        summary += f'<p class="bot-said">{esc(w.t("agent.queue.bot_said", text=item.bot_said))}</p>'
    if recent:
        summary += f'<ul class="recent">{recent}</ul>'
    unread = f'<span class="badge">{item.unread}</span>' if item.unread else "0"
    return (
        f'<tr class="{esc(handoff.state.value)}" data-handoff="{handoff.id}">'
        f'<td><a href="{href}">{esc(_state(w, handoff))}</a></td>'
        f"<td>{esc(channel_name(w, item.channel))}</td>"
        f"<td>{customer_cell(w, item.customer)}</td>"
        f"<td>{esc(w.t(f'agent.reason.{handoff.reason.value}'))}</td>"
        f"<td>{summary}</td>"
        f"<td>{esc(handoff.agent or '–')}</td>"
        f'<td class="unread">{unread}</td>'
        f"<td>{esc(taipei_text(handoff.requested_at)[5:16])}</td>"
        "</tr>"
    )


def _state(w: Words, handoff: Handoff) -> str:
    return w.t(f"agent.state.{handoff.state.value}")


def channel_name(w: Words, channel: str) -> str:
    known = ("web", "line", "telegram", "console")
    return w.t(f"agent.channel.{channel}") if channel in known else channel


def customer_cell(w: Words, customer: Customer | None) -> str:
    if customer is None:
        return f'<span class="muted">{esc(w.t("agent.customer.unlinked"))}</span>'
    certificates = "".join(
        f'<li class="cert {esc(c.status)}">'
        f"{esc(w.t('agent.customer.certificate', serial=c.serial, until=c.not_after))} "
        f"<strong>{esc(w.t(f'status.{c.status}'))}</strong></li>"
        for c in customer.certificates
    )
    if not certificates:
        certificates = f'<li class="muted">{esc(w.t("agent.customer.no_certificate"))}</li>'
    name = f" {esc(customer.name)}" if customer.name else ""
    return (
        f'<span class="id">{esc(customer.id_masked)}</span>{name}'
        f'<ul class="certs">{certificates}</ul>'
    )


# -- a conversation ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ConversationView:
    item: QueueItem
    lines: Sequence[Line]
    notes: Sequence[Line]
    canned: Sequence[CannedReply]
    me: str
    csrf: str


def conversation_body(w: Words, view: ConversationView) -> str:
    handoff = view.item.handoff
    action = f"{ROOT}/c/{handoff.id}"
    return (
        '<div class="conversation">'
        '<section class="side">'
        f'<div id="status" data-part="status">{status_block(w, view.item, view.me)}</div>'
        f'<div id="actions" data-part="actions">{actions_block(w, view)}</div>'
        f"<h2>{esc(w.t('agent.notes.title'))}</h2>"
        f'<p class="hint">{esc(w.t("agent.notes.private"))}</p>'
        f'<ul class="notes" id="notes" data-part="notes">{notes_block(w, view.notes)}</ul>'
        f'<form method="post" action="{action}/note" class="note">'
        f"{hidden_csrf(view.csrf)}"
        f'<label for="note">{esc(w.t("agent.notes.add"))}</label>'
        f'<textarea id="note" name="text" rows="3" maxlength="{NOTE_MAX}" required></textarea>'
        f'<button type="submit">{esc(w.t("agent.notes.submit"))}</button>'
        "</form>"
        "</section>"
        '<section class="chat">'
        f"<h2>{esc(w.t('agent.transcript.title'))}</h2>"
        f'<ol class="transcript" id="transcript" data-part="transcript">'
        f"{transcript_block(w, view.lines)}</ol>"
        f"{_reply_form(w, view, action)}"
        "</section>"
        "</div>"
    )


def status_block(w: Words, item: QueueItem, me: str) -> str:
    handoff = item.handoff
    holder = handoff.agent or "–"
    if handoff.state is HandoffState.ACTIVE and handoff.agent == me:
        holding = w.t("agent.status.yours")
    elif handoff.state is HandoffState.ACTIVE:
        holding = w.t("agent.status.other", name=holder)
    elif handoff.state is HandoffState.WAITING:
        holding = w.t("agent.status.waiting")
    else:
        holding = w.t("agent.status.ended")
    rows = (
        (w.t("agent.queue.col.state"), esc(_state(w, handoff))),
        (w.t("agent.queue.col.channel"), esc(channel_name(w, item.channel))),
        (w.t("agent.queue.col.customer"), customer_cell(w, item.customer)),
        (w.t("agent.queue.col.reason"), esc(w.t(f"agent.reason.{handoff.reason.value}"))),
        (w.t("agent.queue.col.agent"), esc(holder)),
        (w.t("agent.queue.col.since"), esc(taipei_text(handoff.requested_at))),
    )
    cells = "".join(f"<dt>{esc(label)}</dt><dd>{value}</dd>" for label, value in rows)
    return f'<p class="holding">{esc(holding)}</p><dl class="facts">{cells}</dl>'


def actions_block(w: Words, view: ConversationView) -> str:
    handoff = view.item.handoff
    action = f"{ROOT}/c/{handoff.id}"
    buttons = []
    if handoff.state is HandoffState.WAITING:
        buttons.append(_button(view.csrf, f"{action}/claim", w.t("agent.action.claim"), "claim"))
    if handoff.state is HandoffState.ACTIVE and handoff.agent == view.me:
        buttons.append(_button(view.csrf, f"{action}/return", w.t("agent.action.return"), "return"))
        buttons.append(_button(view.csrf, f"{action}/close", w.t("agent.action.close"), "close"))
    return f'<div class="actions">{"".join(buttons)}</div>' if buttons else ""


def _button(csrf: str, action: str, label: str, name: str) -> str:
    return (
        f'<form method="post" action="{esc(action)}" class="inline">{hidden_csrf(csrf)}'
        f'<button type="submit" id="{name}" class="{name}">{esc(label)}</button></form>'
    )


def _reply_form(w: Words, view: ConversationView, action: str) -> str:
    handoff = view.item.handoff
    if not (handoff.state is HandoffState.ACTIVE and handoff.agent == view.me):
        return f'<p class="hint">{esc(w.t("agent.reply.claim_first"))}</p>'
    options = "".join(
        f'<option value="{reply.id}" data-text="{esc(reply.text)}">{esc(reply.title)}</option>'
        for reply in view.canned
    )
    picker = ""
    if options:
        picker = (
            f'<label for="canned">{esc(w.t("agent.reply.canned"))}</label>'
            f'<select id="canned" data-fills="reply">'
            f'<option value="">{esc(w.t("agent.reply.canned_none"))}</option>{options}</select>'
        )
    return (
        f'<form method="post" action="{action}/reply" class="reply">'
        f"{hidden_csrf(view.csrf)}"
        f"{picker}"
        f'<label for="reply">{esc(w.t("agent.reply.label"))}</label>'
        f'<textarea id="reply" name="text" rows="4" maxlength="{NOTE_MAX}" required></textarea>'
        f'<button type="submit" id="send">{esc(w.t("agent.reply.submit"))}</button>'
        "</form>"
    )


def transcript_block(w: Words, lines: Sequence[Line]) -> str:
    if not lines:
        return f'<li class="muted">{esc(w.t("agent.transcript.empty"))}</li>'
    return "".join(_line(w, line) for line in lines)


def _line(w: Words, line: Line) -> str:
    if line.who == "customer":
        who = w.t("agent.transcript.customer")
    elif line.who == "agent":
        who = w.t("agent.transcript.agent", name=line.author or "")
    else:
        who = w.t("agent.transcript.bot")
    return (
        f'<li class="line {esc(line.who)}"><span class="at">{esc(line.at)}</span> '
        f'<span class="who">{esc(who)}</span>'
        f'<span class="text">{esc(line.text)}</span></li>'
    )


def notes_block(w: Words, notes: Sequence[Line]) -> str:
    if not notes:
        return f'<li class="muted">{esc(w.t("agent.notes.empty"))}</li>'
    return "".join(
        f'<li><span class="at">{esc(n.at)}</span> <span class="who">{esc(n.author or "")}</span>'
        f'<span class="text">{esc(n.text)}</span></li>'
        for n in notes
    )


# -- canned replies ---------------------------------------------------------------------------


def canned_body(w: Words, replies: Sequence[CannedReply], csrf: str) -> str:
    rows = "".join(
        "<li>"
        f'<strong class="title">{esc(reply.title)}</strong>'
        f'<span class="text">{esc(reply.text)}</span>'
        f'<span class="muted">{esc(reply.created_by)}</span>'
        f'<form method="post" action="{ROOT}/canned/{reply.id}/remove" class="inline">'
        f"{hidden_csrf(csrf)}"
        f'<button type="submit" class="link">{esc(w.t("agent.canned.remove"))}</button></form>'
        "</li>"
        for reply in replies
    )
    if not rows:
        rows = f'<li class="muted">{esc(w.t("agent.canned.empty"))}</li>'
    return (
        f'<ul class="canned">{rows}</ul>'
        f"<h2>{esc(w.t('agent.canned.add'))}</h2>"
        f'<form method="post" action="{ROOT}/canned" class="canned-add">'
        f"{hidden_csrf(csrf)}"
        f'<label for="title">{esc(w.t("agent.canned.title_label"))}</label>'
        '<input id="title" name="title" required maxlength="80">'
        f'<label for="text">{esc(w.t("agent.canned.text_label"))}</label>'
        f'<textarea id="text" name="text" rows="3" required maxlength="{NOTE_MAX}"></textarea>'
        f'<button type="submit">{esc(w.t("agent.canned.submit"))}</button>'
        "</form>"
    )
