"""憑證查詢: the portal's table of the customer's certificate, and the next possible action."""

from __future__ import annotations

from certcore.clock import taipei_text
from certcore.masking import mask_id
from certcore.pki import CertificateRecord, CertificateStatus
from dialogs.flows.common import (
    go_to_chosen_flow,
    linked_customer,
)
from dialogs.messages import Table
from dialogs.turn import Flow, Step, Turn

NEXT_ACTIONS: dict[CertificateStatus, tuple[str, ...]] = {
    CertificateStatus.VALID: ("revoke",),
    CertificateStatus.RENEWAL_DUE: ("renew", "revoke"),
    CertificateStatus.EXPIRED: ("apply",),
    CertificateStatus.REVOKED: ("apply",),
}


def certificate_table(turn: Turn, record: CertificateRecord) -> Table:
    """One row as the portal shows it: masked ID, serial, validity, status, renewal window."""
    settings = turn.services.settings
    status = record.status(turn.now, settings.renewal_window_days)
    assert status is not None
    window = record.renewal_window(settings.renewal_window_days)
    return Table(
        title=turn.t("query.table.title"),
        columns=(
            turn.t("query.column.id"),
            turn.t("query.column.serial"),
            turn.t("query.column.validity"),
            turn.t("query.column.status"),
            turn.t("query.column.window"),
        ),
        rows=(
            (
                mask_id(record.customer_id),
                record.serial,
                f"{taipei_text(record.not_before)} ~ {taipei_text(record.not_after)}",
                turn.t(f"status.{status.value}"),
                f"{taipei_text(window.start)} ~ {taipei_text(window.end)}",
            ),
        ),
    )


async def show(turn: Turn) -> None:
    customer = await linked_customer(turn)
    if customer is None:  # the directory no longer has this customer: link again
        turn.conversation.customer_id = None
        await turn.start("link", then="query")
        return
    records = await turn.services.certificates.issued_of(customer.id_number)
    if not records:
        turn.ask(
            "query.empty",
            [("apply", "query.action.apply"), ("menu", "query.action.menu")],
            name=customer.name,
        )
        return
    latest = records[0]
    status = latest.status(turn.now, turn.services.settings.renewal_window_days)
    assert status is not None
    turn.say("query.heading", name=customer.name)
    turn.send(certificate_table(turn, latest))
    actions = [(a, f"query.action.{a}") for a in NEXT_ACTIONS[status]] + [
        ("menu", "query.action.menu")
    ]
    turn.ask(f"query.next.{status.value}", actions)


FLOW = Flow(
    name="query",
    first_step="choose",
    needs_link=True,
    steps={"choose": Step(show, go_to_chosen_flow)},
)
