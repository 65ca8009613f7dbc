"""What ``ballast serve`` requires before it answers other machines, decided without a server.

``tests/auth/test_ways_in_live.py`` runs the rule against a real ``ballast serve``; here every
kind of address is checked, since a host taken for loopback by mistake is a server that starts
on the network with no way in asked for.
"""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.auth.exposure import anonymous_endpoints, exposure_problems, is_loopback
from bot.settings import Settings


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "127.0.0.2", "127.255.255.254", "::1", "[::1]", "localhost", "ip6-localhost"],
)
def test_loopback_addresses_and_names_need_nothing_set(host: str) -> None:
    assert is_loopback(host)
    assert exposure_problems(host, webhook_token_set=False, api_configured=False) == []


@pytest.mark.parametrize(
    "host",
    [
        "0.0.0.0",
        "::",
        "[::]",
        "10.0.0.5",
        "192.168.1.1",
        "::ffff:10.0.0.1",
        "ballast.internal",
        "localhost.evil.example",
        "127.0.0.1.nip.io",
        "LOCALHOST ",
        "",
    ],
)
def test_every_other_host_is_taken_as_reachable(host: str) -> None:
    assert not is_loopback(host)


@given(st.ip_addresses())
def test_an_address_is_loopback_exactly_when_the_standard_library_says_so(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address,
) -> None:
    assert is_loopback(str(address)) is address.is_loopback
    if address.version == 6:
        assert is_loopback(f"[{address}]") is address.is_loopback


def test_a_network_address_with_no_way_in_names_both_settings() -> None:
    problems = exposure_problems("0.0.0.0", webhook_token_set=False, api_configured=False)
    assert len(problems) == 2
    assert "BALLAST_WEBHOOK_TOKEN" in problems[0]
    assert "BALLAST_API_TOKEN" in problems[1]
    assert "ballast tokens create" in problems[1]


def test_a_webhook_token_alone_still_leaves_the_api_closed_to_everyone() -> None:
    problems = exposure_problems("0.0.0.0", webhook_token_set=True, api_configured=False)
    assert len(problems) == 1
    assert "the API has no way in" in problems[0]


def test_an_api_token_is_a_way_in_for_webhooks_too() -> None:
    # A named token with the automation role can post alerts: nothing is missing.
    assert exposure_problems("10.0.0.5", webhook_token_set=False, api_configured=True) == []


def test_nothing_is_opened_unless_anonymous_access_is_asked_for() -> None:
    settings = Settings(
        insecure_allow_anonymous=False, webhook_token=None, ofrep_token=None, metrics_token=None
    )
    assert anonymous_endpoints(settings) == []


def test_anonymous_access_opens_only_the_endpoints_whose_token_is_unset() -> None:
    every = Settings(
        insecure_allow_anonymous=True, webhook_token=None, ofrep_token=None, metrics_token=None
    )
    opened = anonymous_endpoints(every)
    assert [line.split(" ", 1)[0] for line in opened] == ["webhooks", "OFREP", "/metrics"]
    assert "auto mitigations" in opened[0]

    some = Settings(
        insecure_allow_anonymous=True,
        webhook_token="w" * 32,
        ofrep_token=None,
        metrics_token="m" * 32,
    )
    assert [line.split(" ", 1)[0] for line in anonymous_endpoints(some)] == ["OFREP"]

    none = Settings(
        insecure_allow_anonymous=True,
        webhook_token="w" * 32,
        ofrep_token="o" * 32,
        metrics_token="m" * 32,
    )
    assert anonymous_endpoints(none) == []
