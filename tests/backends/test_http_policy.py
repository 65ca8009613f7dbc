"""The http_request allowlist and ``${ENV}`` secret expansion."""

from __future__ import annotations

import pytest

from actions.clients.http_policy import AllowlistHttpPolicy
from actions.errors import FinalError

POLICY = AllowlistHttpPolicy(
    ["api.example.com", "*.internal.example.net", "10.0.0.7", "::1"],
    {"API_TOKEN": "tok-SECRET-1", "EMPTY": "", "MISSING_TOKEN_IS_ALLOWED": ""},
    allowed_secrets={"API_TOKEN", "EMPTY", "MISSING_TOKEN"},
)


@pytest.mark.parametrize(
    "url",
    [
        "https://api.example.com/v1/x",
        "http://API.Example.com./v1",
        "https://flags.internal.example.net/kill",
        "https://a.b.internal.example.net:8443/kill",
        "http://10.0.0.7:8080/",
        "http://[::1]:9000/",
    ],
)
def test_allowed(url: str) -> None:
    POLICY.check_url(url)


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("https://evil.com/", "evil.com"),
        ("https://api.example.com.evil.com/", "api.example.com.evil.com"),
        ("https://internal.example.net/", "internal.example.net"),  # `*.` is subdomains only
        ("https://xinternal.example.net/", "xinternal.example.net"),
        ("https://example.com/", "example.com"),
    ],
)
def test_refused_names_host_and_where_to_allow_it(url: str, host: str) -> None:
    with pytest.raises(FinalError) as caught:
        POLICY.check_url(url)
    assert str(caught.value) == (
        f"host {host!r} is not allowed for http_request; add it (or a `*.` pattern covering it) "
        "to `http.allowed_hosts` in ballast.yaml (allowed now: api.example.com, "
        "*.internal.example.net, 10.0.0.7, ::1)"
    )


def test_refused_scheme_and_credentials() -> None:
    with pytest.raises(FinalError, match="scheme 'ftp' is not allowed"):
        POLICY.check_url("ftp://api.example.com/x")
    with pytest.raises(FinalError, match=r"must not carry credentials"):
        POLICY.check_url("https://user:pw@api.example.com/")


def test_userinfo_trick_is_judged_by_the_real_host() -> None:
    with pytest.raises(FinalError, match="must not carry credentials"):
        POLICY.check_url("https://api.example.com@evil.com/")


def test_empty_allowlist_refuses_everything() -> None:
    with pytest.raises(FinalError, match=r"\(allowed now: \(none\)\)"):
        AllowlistHttpPolicy([], {}).check_url("https://api.example.com/")


def test_bad_allowlist_entry_is_a_config_error() -> None:
    with pytest.raises(ValueError, match=r"entry 'https://api\.example\.com' is not a host name"):
        AllowlistHttpPolicy(["https://api.example.com"], {})
    with pytest.raises(ValueError, match="is not a host name"):
        AllowlistHttpPolicy(["api.*.example.com"], {})


def test_secrets_expand_from_the_environment() -> None:
    assert POLICY.expand_secrets("Bearer ${API_TOKEN}") == "Bearer tok-SECRET-1"
    assert POLICY.expand_secrets("${API_TOKEN}:${EMPTY}") == "tok-SECRET-1:"
    assert POLICY.expand_secrets("literal $${API_TOKEN} and $5") == "literal ${API_TOKEN} and $5"
    assert POLICY.expand_secrets("$$$${API_TOKEN} $$") == "$${API_TOKEN} $"


def test_no_secret_expands_unless_allowed() -> None:
    """The default (issue 14): no ``http.allowed_secrets``, no secret at all."""
    policy = AllowlistHttpPolicy([], {"BALLAST_API_TOKEN": "t"})
    with pytest.raises(FinalError, match="not on the list of secrets"):
        policy.expand_secrets("Bearer ${BALLAST_API_TOKEN}")


@pytest.mark.parametrize(
    "url",
    ["http://xn--ls8h.example/", "http://xn--zz.com/", "http://☃.example/", "http://a%2Fb.x/"],
)
def test_urls_whose_host_is_no_name_are_refused_as_action_errors(url: str) -> None:
    with pytest.raises(FinalError, match="host"):
        AllowlistHttpPolicy(["*.example", "*.com", "*.x"], {}).check_url(url)


def test_unknown_secret_names_the_variable() -> None:
    with pytest.raises(FinalError) as caught:
        POLICY.expand_secrets("Bearer ${MISSING_TOKEN}")
    assert str(caught.value) == (
        "environment variable MISSING_TOKEN (referenced as ${MISSING_TOKEN}) is not set "
        "in Ballast's environment"
    )
    with pytest.raises(FinalError, match=r"\$\{not valid\} is not a valid environment variable"):
        POLICY.expand_secrets("${not valid}")


def test_secrets_can_be_limited_to_a_list() -> None:
    policy = AllowlistHttpPolicy(
        [], {"API_TOKEN": "t", "BALLAST_DB": "d"}, allowed_secrets={"API_TOKEN"}
    )
    assert policy.expand_secrets("${API_TOKEN}") == "t"
    with pytest.raises(FinalError) as caught:
        policy.expand_secrets("${BALLAST_DB}")
    assert str(caught.value) == (
        "environment variable BALLAST_DB is not on the list of secrets http_request may use; "
        "add it to `http.allowed_secrets` in ballast.yaml"
    )
