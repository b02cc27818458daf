"""Whole flows over Telegram, as a customer walks them: updates posted to the real webhook, the
bot's answers read from the fake Bot API (texts, inline keyboards, URL buttons, documents,
deleted messages)."""

from __future__ import annotations

import logging

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from bot.web import CHANNELS, ENGINE
from certcore.audit import Actor
from certcore.pki import MAX_FILE_BYTES, certificates_of
from dialogs import EventKind, Inbound
from tests.bot.telegram.conftest import BIRTH, CHAT, CUSTOMER, PUBLIC_URL, Telegram
from tests.fakes.telegram_api import Sent

MENU = "menu.prompt"


HOLDING = ("query.heading", "query.table.title*", "query.next.valid")
"""What 憑證查詢 answers a customer holding a valid certificate."""


async def link(tg: Telegram, chat: int = CHAT, then: tuple[str, ...] = ("query.empty",)) -> None:
    """/start, then 憑證查詢 links the chat: ID number, birth date, a code by SMS; then the
    query's answer (`then`) and the main menu again."""
    await tg.text(chat, "/start")
    tg.expect(chat, "welcome", MENU)
    await tg.tap(chat, "query")
    tg.expect(chat, "link.id.prompt")
    id_message = await tg.text(chat, CUSTOMER)
    tg.expect(chat, "verify.birth_date.prompt")
    birth_message = await tg.text(chat, BIRTH)
    tg.expect(chat, "verify.destination.prompt")
    # The messages holding the ID number and the birth date were deleted once read.
    deleted = {message_id for _, message_id in tg.fake.deleted}
    assert id_message["message"]["message_id"] in deleted
    assert birth_message["message"]["message_id"] in deleted
    await tg.tap(chat, "sms")
    tg.expect(chat, "verify.send.prompt")
    await tg.tap(chat, "send")
    tg.expect(chat, "verify.send.done", "verify.code.prompt")
    await tg.code(chat)
    tg.expect(chat, "verify.code.accepted", "link.done", *then)
    await tg.tap(chat, "menu")
    tg.expect(chat, MENU)


async def verified(tg: Telegram, chat: int, consent_key: str) -> None:
    """Consent, birth date, SMS code: the steps every identity flow shares once linked."""
    tg.expect(chat, consent_key)
    await tg.tap(chat, "agree")
    tg.expect(chat, "verify.birth_date.prompt")
    await tg.text(chat, BIRTH)
    tg.expect(chat, "verify.destination.prompt")
    await tg.tap(chat, "sms")
    tg.expect(chat, "verify.send.prompt")
    await tg.tap(chat, "send")
    tg.expect(chat, "verify.send.done", "verify.code.prompt")
    await tg.code(chat)


def token_of(sent: Sent) -> str:
    urls = sent.urls
    assert len(urls) == 1 and urls[0].startswith(f"{PUBLIC_URL}/d/"), sent.raw
    return urls[0].rpartition("/")[2]


async def test_linking_then_query_and_the_menu_keyboard(telegram_app) -> None:
    tg = await telegram_app()
    await link(tg)
    # Every button's data is an opaque key within Telegram's 64 bytes.
    data = [d for sent in tg.fake.sent for d in sent.callback_data]
    assert data and all(len(d.encode()) <= 64 for d in data)
    await tg.tap(CHAT, "query")
    tg.expect(CHAT, "query.empty")
    await tg.text(CHAT, "/menu")  # the command is the engine's global word
    tg.expect(CHAT, "flow.left", MENU)
    # Every callback query was answered, each exactly once (the fake refuses a second).
    answers = tg.fake.called("answerCallbackQuery")
    assert len(answers) == 5 and all(call.status == 200 for call in answers)


async def test_application_through_the_download_link(telegram_app) -> None:
    tg = await telegram_app()
    await link(tg)
    await tg.tap(CHAT, "apply")
    await verified(tg, CHAT, "apply.consent")
    tg.expect(CHAT, "apply.ready")
    records: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record.getMessage())

    keeper = Keep(level=logging.DEBUG)
    logging.getLogger().addHandler(keeper)
    try:
        await tg.tap(CHAT, "issue")
    finally:
        logging.getLogger().removeHandler(keeper)
    (delivery,) = tg.expect(CHAT, "apply.delivery")
    token = token_of(delivery)
    # The link's one-time token is a secret: the client's logs show the call, not the token.
    assert any("/d/<token>" in r for r in records)
    assert not [r for r in records if token in r]
    # The download page's part: the password set there, the file handed over, the chat told.
    await tg.core.deliveries.fulfil(token, "abc123", actor=Actor("customer", "web"))
    await tg.server.app[CHANNELS].dispatch(
        Inbound(f"telegram:{CHAT}", f"download:{token[:8]}", EventKind.DELIVERED, choice=token)
    )
    sent = tg.expect(CHAT, "delivery.done.apply", "delivery.next")
    assert "憑證申請完成" in sent[0].text


async def test_application_delivered_as_a_document(telegram_app) -> None:
    tg = await telegram_app(telegram_delivery="document")
    await link(tg)
    await tg.tap(CHAT, "apply")
    await verified(tg, CHAT, "apply.consent")
    tg.expect(CHAT, "apply.ready")
    await tg.tap(CHAT, "issue")
    delivery, _ = tg.expect(CHAT, "apply.delivery", "telegram.export.prompt")
    token_of(delivery)  # the download link stays as the fallback
    typed = [
        await tg.text(CHAT, "abc"),  # too short
        await tg.text(CHAT, "abc12345"),
        await tg.text(CHAT, "abc99999"),  # not the same
        await tg.text(CHAT, "Secret42"),
        await tg.text(CHAT, "Secret42"),
    ]
    sent = tg.expect(
        CHAT,
        "telegram.export.invalid",
        "telegram.export.again",
        "telegram.export.mismatch",
        "telegram.export.again",
        "telegram.export.issuing",
        "telegram.export.caption",
        "delivery.done.apply",
        "delivery.next",
    )
    # Every message with a password in it was deleted the moment it was read.
    deleted = {message_id for _, message_id in tg.fake.deleted}
    assert {u["message"]["message_id"] for u in typed} <= deleted
    document = sent[5]
    assert document.document is not None and document.raw.get("protect_content") is True
    filename, content = document.document
    assert filename.startswith(CUSTOMER) and filename.endswith(".pfx")
    key, certificate, _ = pkcs12.load_key_and_certificates(content, b"Secret42")
    assert key is not None and certificate is not None
    assert CUSTOMER in certificate.subject.rfc4514_string()
    # Nothing of the password reached the chat's messages from the bot.
    assert not any("Secret42" in s.text for s in tg.fake.sent)


async def offered_document(tg: Telegram) -> Sent:
    """Link, apply, and reach the export password's prompt (returned)."""
    await link(tg)
    await tg.tap(CHAT, "apply")
    await verified(tg, CHAT, "apply.consent")
    tg.expect(CHAT, "apply.ready")
    await tg.tap(CHAT, "issue")
    _, prompt = tg.expect(CHAT, "apply.delivery", "telegram.export.prompt")
    return prompt


async def test_document_mode_the_cancel_button_leaves_the_link(telegram_app) -> None:
    tg = await telegram_app(telegram_delivery="document")
    prompt = await offered_document(tg)
    update = tg.fake.callback(CHAT, prompt.callback_data[0], message=prompt)
    assert await tg.send(update) == 200
    tg.expect(CHAT, "telegram.export.cancelled")
    # What is typed next is an ordinary message again, not a password (and not deleted).
    typed = await tg.text(CHAT, "/menu")
    tg.expect(CHAT, MENU)
    assert typed["message"]["message_id"] not in {m for _, m in tg.fake.deleted}


async def test_renewal_inside_the_window(telegram_app, clock) -> None:
    tg = await telegram_app()
    await tg.core.certificates.issue(CUSTOMER, "abc123", actor=Actor("operator:t", "cli"))
    await link(tg, then=HOLDING)
    clock.advance(days=350)  # inside the renewal window, the last 30 days
    await tg.tap(CHAT, "renew")
    await verified(tg, CHAT, "renew.consent")
    tg.expect(CHAT, "renew.ready")
    await tg.tap(CHAT, "renew")
    (delivery,) = tg.expect(CHAT, "renew.delivery")
    token = token_of(delivery)
    await tg.core.deliveries.fulfil(token, "abc123", actor=Actor("customer", "web"))
    await tg.server.app[CHANNELS].dispatch(
        Inbound(f"telegram:{CHAT}", "download:renew", EventKind.DELIVERED, choice=token)
    )
    tg.expect(CHAT, "delivery.done.renew", "delivery.superseded", "delivery.next")


async def test_revocation(telegram_app) -> None:
    tg = await telegram_app()
    await tg.core.certificates.issue(CUSTOMER, "abc123", actor=Actor("operator:t", "cli"))
    await link(tg, then=HOLDING)
    await tg.tap(CHAT, "revoke")
    await verified(tg, CHAT, "revoke.consent")
    tg.expect(CHAT, "verify.code.accepted", "revoke.reason.prompt")
    await tg.tap(CHAT, "keyCompromise")
    tg.expect(CHAT, "revoke.confirm.prompt")
    await tg.tap(CHAT, "confirm")
    tg.expect(CHAT, "revoke.done")
    # The revocation is a slow step: the typing sign was shown before it.
    assert any(c.params.get("action") == "typing" for c in tg.fake.called("sendChatAction"))
    await tg.tap(CHAT, "menu")
    tg.expect(CHAT, MENU)
    await tg.tap(CHAT, "query")
    tg.expect(CHAT, "query.heading", "query.table.title*", "query.next.revoked")


async def test_certificate_check_by_document(telegram_app) -> None:
    tg = await telegram_app()
    issued = await tg.core.certificates.issue(CUSTOMER, "abc123", actor=Actor("operator:t", "cli"))
    await link(tg, then=HOLDING)
    async with tg.core.db.read() as conn:
        (record,) = [r for r in await certificates_of(conn, CUSTOMER) if r.der is not None]
    assert record.serial == issued.record.serial and record.der is not None
    pem = x509.load_der_x509_certificate(record.der).public_bytes(serialization.Encoding.PEM)
    assert await tg.send(tg.fake.document(CHAT, pem, "mine.pem")) == 200
    sent = tg.expect(CHAT, "check.heading", "query.table.title*", "check.next.valid")
    assert sent[1].raw.get("parse_mode") == "HTML"
    assert len(tg.fake.called("getFile")) == 1


async def test_an_oversized_document_is_refused_without_download(telegram_app) -> None:
    tg = await telegram_app()
    await tg.text(CHAT, "/start")
    tg.expect(CHAT, "welcome", MENU)
    update = tg.fake.document(CHAT, b"x" * 100, "huge.cer", file_size=MAX_FILE_BYTES + 1)
    assert await tg.send(update) == 200
    tg.expect(CHAT, "telegram.file.too_large")
    assert not tg.fake.called("getFile")


async def test_english_speaker_and_commands(telegram_app) -> None:
    tg = await telegram_app()
    await tg.text(CHAT, "/start", language="en")
    tg.expect(CHAT, "welcome", MENU, locale="en")
    await tg.text(CHAT, "/help", language="en")
    tg.expect(CHAT, "help.step.menu", MENU, locale="en")
    place = tg.fake.message(
        CHAT, None, language="en", location={"latitude": 25.0, "longitude": 121.5}
    )
    assert await tg.send(place) == 200
    tg.expect(CHAT, "telegram.unsupported", locale="en")
    conversation = await tg.server.app[ENGINE].store.find(f"telegram:{CHAT}")
    assert conversation is not None and conversation.locale == "en"


async def test_document_mode_three_failures_end_the_entry(telegram_app) -> None:
    tg = await telegram_app(telegram_delivery="document")
    await offered_document(tg)
    for typed in ("ab", "中文密碼", "abcd1234", "abcd9999"):
        await tg.text(CHAT, typed)
    tg.expect(
        CHAT,
        "telegram.export.invalid",
        "telegram.export.invalid",
        "telegram.export.again",
        "telegram.export.gave_up",  # the third failure: a mismatch
    )
    # The ID number and two birth dates (linking, applying), and the four tries, deleted.
    assert len(tg.fake.deleted) == 3 + 4
    typed = await tg.text(CHAT, "abcd1235")  # not a password any more: an ordinary message
    assert tg.new(CHAT)
    assert typed["message"]["message_id"] not in {m for _, m in tg.fake.deleted}
    assert not tg.fake.called("sendDocument")


async def test_document_mode_after_the_window_nothing_is_issued(telegram_app, clock) -> None:
    tg = await telegram_app(telegram_delivery="document")
    await offered_document(tg)
    await tg.text(CHAT, "abcd1234")
    tg.expect(CHAT, "telegram.export.again")
    clock.advance(minutes=16)
    await tg.text(CHAT, "abcd1234")
    tg.expect(CHAT, "telegram.export.expired")
    assert not tg.fake.called("sendDocument")
    assert len(tg.fake.deleted) == 3 + 2


async def test_a_restart_mid_flow_continues_where_it_was(telegram_app) -> None:
    """The conversation lives in the database: a new process (engine, channel, lanes) over the
    same database takes the next update where the last one left the chat."""
    first = await telegram_app()
    await first.text(CHAT, "/start")
    first.expect(CHAT, "welcome", MENU)
    await first.tap(CHAT, "query")
    first.expect(CHAT, "link.id.prompt")
    await first.server.close()  # the app's cleanup: lanes finished, client closed
    second = await telegram_app()
    second.seen = dict(first.seen)
    await second.text(CHAT, CUSTOMER)
    second.expect(CHAT, "verify.birth_date.prompt")
