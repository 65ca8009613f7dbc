"""OIDC sign-in (authorization code with PKCE) against a small provider built here: its own
RSA key, JWKS, authorization and token endpoints on loopback. The provider checks the PKCE
verifier against the challenge, as a real one does; Ballast checks state, the ID token (the
API's verifier: signature, issuer, audience, expiry) and the nonce."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from bot.config import BallastConfig
from tests.web.helpers import TOOL_ALERT

ISSUER = "https://idp.example.test"
CLIENT = "ballast-console"


class Provider:
    """An OIDC provider on loopback: /authorize hands out a code bound to the PKCE challenge,
    nonce and redirect URI; /token swaps it once for an ID token when the verifier matches."""

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        jwks = json.dumps({"keys": [{**public, "kid": "k1", "use": "sig", "alg": "RS256"}]})
        self.codes: dict[str, dict[str, str]] = {}
        self.email = "alice@example.test"
        self.nonce: str | None = None  # overrides the nonce put in the ID token
        self.verifier: str | None = None  # overrides the PKCE verifier Ballast sent
        self.token_requests: list[dict[str, str]] = []
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def _send(self, code: int, body: str, **headers: str) -> None:
                self.send_response(code)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body.encode())

            def do_GET(self) -> None:
                url = urlsplit(self.path)
                if url.path == "/jwks.json":
                    self._send(200, jwks, **{"content-type": "application/json"})
                    return
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                code = secrets.token_urlsafe(16)
                provider.codes[code] = query
                back = (
                    query["redirect_uri"] + "?" + urlencode({"code": code, "state": query["state"]})
                )
                self._send(302, "", location=back)

            def do_POST(self) -> None:
                length = int(self.headers["content-length"])
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                provider.token_requests.append(form)
                if provider.verifier is not None:
                    form["code_verifier"] = provider.verifier
                asked = provider.codes.pop(form.get("code", ""), None)
                if asked is None or not provider.pkce_ok(asked, form):
                    self._send(400, json.dumps({"error": "invalid_grant"}))
                    return
                nonce = provider.nonce if provider.nonce is not None else asked["nonce"]
                body = json.dumps({"id_token": provider.id_token(nonce), "token_type": "Bearer"})
                self._send(200, body, **{"content-type": "application/json"})

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @staticmethod
    def pkce_ok(asked: dict[str, str], form: dict[str, str]) -> bool:
        digest = hashlib.sha256(form.get("code_verifier", "").encode()).digest()
        challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
        return (
            asked.get("code_challenge_method") == "S256"
            and asked.get("code_challenge") == challenge
            and asked.get("client_id") == form.get("client_id") == CLIENT
            and asked.get("redirect_uri") == form.get("redirect_uri")
        )

    def id_token(self, nonce: str) -> str:
        now = int(time.time())
        claims = {"iss": ISSUER, "aud": CLIENT, "exp": now + 300, "iat": now}
        claims |= {"email": self.email, "nonce": nonce}
        return jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": "k1"})


@pytest.fixture
def provider() -> Iterator[Provider]:
    server = Provider()
    yield server
    server.server.shutdown()
    server.server.server_close()


def oidc_config(provider: Provider) -> BallastConfig:
    return BallastConfig.model_validate(
        {
            "auth": {
                "oidc": {
                    "issuer": ISSUER,
                    "audience": CLIENT,
                    "jwks_url": provider.url + "/jwks.json",
                    "client_id": CLIENT,
                    "authorization_url": provider.url + "/authorize",
                    "token_url": provider.url + "/token",
                    "users": {"alice@example.test": "U0OWNER1"},
                }
            },
            "teams": {"@oncall": ["U0OWNER2"]},
        }
    )


async def _to_provider(browser: httpx.AsyncClient) -> dict[str, str]:
    login = await browser.get("/ui/login?next=/ui/incidents")
    assert "Sign in with your identity provider" in login.text
    started = await browser.get("/ui/login/oidc?next=/ui/incidents")
    assert started.status_code == 303
    return {k: v[0] for k, v in parse_qs(urlsplit(started.headers["location"]).query).items()}


async def _back_from(browser: httpx.AsyncClient, asked: dict[str, str], provider: Provider) -> Any:
    """The provider's redirect (a real HTTP call to it) followed back into Ballast."""
    async with httpx.AsyncClient() as outside:
        answer = await outside.get(provider.url + "/authorize?" + urlencode(asked))
    back = urlsplit(answer.headers["location"])
    assert back.netloc == "ballast.test"
    return await browser.get(back.path + "?" + back.query)


async def test_sign_in_with_pkce_and_act_as_the_person(
    make_harness: Any, provider: Provider
) -> None:
    h = await make_harness(config=oidc_config(provider))
    await h.client.post("/webhooks/generic", json={"alerts": [TOOL_ALERT]})
    await h.settle()
    browser = h.anonymous
    asked = await _to_provider(browser)
    assert asked["code_challenge_method"] == "S256"
    assert asked["client_id"] == CLIENT
    assert asked["redirect_uri"] == "http://ballast.test/ui/login/oidc/callback"
    assert asked["scope"] == "openid email"
    landed = await _back_from(browser, asked, provider)
    assert landed.status_code == 303, landed.text
    assert landed.headers["location"] == "/ui/incidents"
    page = await browser.get("/ui/incidents/1")
    assert "Signed in as <strong>alice@example.test</strong>" in page.text
    assert 'action="/ui/incidents/1/run"' in page.text  # a responder (the default roles)
    sent = provider.token_requests[-1]
    assert sent["grant_type"] == "authorization_code"
    assert "client_secret" not in sent  # a public client: PKCE alone


async def test_a_replayed_or_forged_callback_is_refused(
    make_harness: Any, provider: Provider
) -> None:
    h = await make_harness(config=oidc_config(provider), oidc_client_secret="s3cret")
    browser = h.anonymous
    asked = await _to_provider(browser)
    forged = await browser.get("/ui/login/oidc/callback?code=x&state=not-the-state")
    assert forged.status_code == 401
    assert "did not start here" in forged.text
    said_no = await browser.get("/ui/login/oidc/callback?error=access_denied")
    assert said_no.status_code == 401
    assert "access_denied" in said_no.text
    # A verifier that does not match the challenge (as if the code were stolen): no ID token.
    provider.verifier = "not-the-verifier"
    asked = await _to_provider(browser)
    refused = await _back_from(browser, asked, provider)
    provider.verifier = None
    assert refused.status_code == 401
    assert "token endpoint" in refused.text
    assert provider.token_requests[-1]["client_secret"] == "s3cret"
    # An ID token whose nonce is another sign-in's.
    provider.nonce = "someone-elses"
    asked = await _to_provider(browser)
    wrong_nonce = await _back_from(browser, asked, provider)
    assert wrong_nonce.status_code == 401
    assert "nonce" in wrong_nonce.text
    assert (await browser.get("/ui/incidents")).status_code == 303  # still signed out


async def test_without_a_client_id_there_is_no_oidc_sign_in(make_harness: Any) -> None:
    h = await make_harness()
    browser = h.anonymous
    assert "identity provider" not in (await browser.get("/ui/login")).text
    answer = await browser.get("/ui/login/oidc")
    assert answer.status_code == 404
    assert "not configured" in answer.text
