"""Every certificate-center flow, by name; the engine looks flows up here."""

from __future__ import annotations

from dialogs.flows import link, menu, query
from dialogs.turn import Flow


def all_flows() -> dict[str, Flow]:
    flows = [menu.FLOW, link.FLOW, link.LOGOUT, query.FLOW]
    return {flow.name: flow for flow in flows}
