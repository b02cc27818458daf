"""Who a web request's client is (`bot.web.clients`): the peer, or behind the configured
reverse proxies the address they forwarded; never what a client claims for itself."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from bot.web.clients import client_address
from bot.web.keys import CORE
from certcore.config import load_settings


def request(remote: str | None, forwarded: str = "", proxies: str = "") -> web.Request:
    """A request from `remote` (None: a peer the transport does not name), to an app whose
    core's settings trust `proxies`."""
    app = web.Application()
    core: Any = SimpleNamespace(settings=load_settings(environ={}, trusted_proxies=proxies))
    app[CORE] = core
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    mocked = make_mocked_request("POST", "/api/chat/sessions", headers=headers, app=app)
    return mocked.clone(remote=remote) if remote is not None else mocked


@pytest.mark.parametrize(
    ("remote", "forwarded", "proxies", "client"),
    [
        ("203.0.113.7", "", "", "web:203.0.113.7"),
        ("203.0.113.7", "198.51.100.1", "", "web:203.0.113.7"),  # no proxy trusted: ignored
        ("10.0.0.2", "198.51.100.1", "10.0.0.0/8", "web:198.51.100.1"),
        ("10.0.0.2", "198.51.100.1, 10.0.0.9", "10.0.0.0/8", "web:198.51.100.1"),
        ("10.0.0.2", "6.6.6.6, 198.51.100.1", "10.0.0.0/8", "web:198.51.100.1"),  # spoofed hop
        ("203.0.113.7", "198.51.100.1", "10.0.0.0/8", "web:203.0.113.7"),  # not via the proxy
        ("10.0.0.2", "not-an-address", "10.0.0.0/8", "web:10.0.0.2"),
        ("10.0.0.2", "", "10.0.0.0/8", "web:10.0.0.2"),
        ("2001:db8:1:2:3:4:5:6", "", "", "web:2001:db8:1:2::/64"),
        ("::ffff:203.0.113.7", "", "", "web:203.0.113.7"),
        ("::1", "2001:db8::9", "::1", "web:2001:db8::/64"),
    ],
)
def test_the_client_of_a_request(remote: str, forwarded: str, proxies: str, client: str) -> None:
    assert client_address(request(remote, forwarded, proxies)) == client


def test_an_unknown_peer_is_no_client() -> None:
    assert client_address(request(None)) == ""
