"""Every certificate-center flow, by name; the engine looks flows up here."""

from __future__ import annotations

from dialogs.flows import (
    apply,
    check,
    delivery,
    environment,
    faq,
    guide,
    import_help,
    link,
    menu,
    query,
    rating,
    reminder,
    renew,
    revoke,
    settings,
    understand,
)
from dialogs.turn import Flow


def all_flows() -> dict[str, Flow]:
    flows = [
        menu.FLOW,
        link.FLOW,
        link.LOGOUT,
        query.FLOW,
        apply.FLOW,
        renew.FLOW,
        revoke.FLOW,
        delivery.FLOW,
        reminder.FLOW,
        rating.FLOW,
        check.FLOW,
        import_help.FLOW,
        environment.FLOW,
        guide.FLOW,
        faq.FLOW,
        settings.FLOW,
        understand.FLOW,
    ]
    return {flow.name: flow for flow in flows}
