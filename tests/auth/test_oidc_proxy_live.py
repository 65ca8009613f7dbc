"""OIDC bearer tokens and the trusted proxy header against a real ``ballast serve``, with a
local JWKS server and keys made here: only a valid token from the right issuer, for the right
audience, signed by a published key, gets in; a proxy header only from the proxy's address."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.e2e.processes import wait_until
from tests.principals import POST_ALERTS, READ, roster_yaml

pytestmark = pytest.mark.slow

ISSUER = "https://idp.example.test"
AUDIENCE = "ballast"


class Jwks:
    """A JWKS endpoint on loopback publishing one RSA key (kid "k1")."""

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        body = json.dumps({"keys": [{**public, "kid": "k1", "use": "sig", "alg": "RS256"}]})

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.end_headers()
                self.wfile.write(body.encode())

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/jwks.json"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def token(self, key: Any = None, kid: str = "k1", alg: str = "RS256", **claims: Any) -> str:
        now = int(time.time())
        payload = {"iss": ISSUER, "aud": AUDIENCE, "exp": now + 300, "iat": now}
        payload.update({"email": "alice@example.test", **claims})
        return jwt.encode(payload, key or self.key, algorithm=alg, headers={"kid": kid})


@pytest.fixture
def jwks() -> Iterator[Jwks]:
    server = Jwks()
    yield server
    server.server.shutdown()
    server.server.server_close()


def config(tmp_path: Path, jwks: Jwks, trusted: str) -> str:
    oidc = {
        "issuer": ISSUER,
        "audience": AUDIENCE,
        "jwks_url": jwks.url,
        "users": {"alice@example.test": "U0OWNER1"},
    }
    proxy = {"enabled": True, "trusted_addresses": [trusted], "users": {"bob@example.test": "U0B"}}
    path = tmp_path / "oidc.yaml"
    roster = json.loads(roster_yaml().removeprefix("auth: "))
    path.write_text("auth: " + json.dumps({**roster, "oidc": oidc, "proxy": proxy}) + "\n")
    return str(path)


def get(url: str, **headers: str) -> httpx.Response:
    return httpx.get(f"{url}/api/v1/incidents", headers=headers, timeout=10)


def test_oidc_tokens(make_server: Any, tmp_path: Path, jwks: Jwks) -> None:
    server = make_server(BALLAST_CONFIG=config(tmp_path, jwks, "127.0.0.0/8"))
    server.start()
    good = get(server.url, authorization=f"Bearer {jwks.token()}")
    assert good.status_code == 200, good.text
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    refused = {
        "expired": jwks.token(exp=int(time.time()) - 3600),
        "wrong audience": jwks.token(aud="someone-else"),
        "wrong issuer": jwks.token(iss="https://evil.test"),
        "unknown key id": jwks.token(kid="k9"),
        "signed by another key": jwks.token(key=other_key),
        "alg none": jwt.encode(
            {"iss": ISSUER, "aud": AUDIENCE, "exp": int(time.time()) + 300, "email": "a@b"},
            None,
            algorithm="none",
            headers={"kid": "k1"},
        ),
        "HMAC with the public key": jwks.token(
            key="not-a-secret-at-all-but-long-enough-32b", alg="HS256"
        ),
    }
    for what, token in refused.items():
        response = get(server.url, authorization=f"Bearer {token}")
        assert response.status_code == 401, (what, response.text)
    logs = server.logs()
    assert all(token not in logs for token in refused.values())
    assert jwks.token().split(".")[2] not in logs

    # The person is the mapped Slack user: acknowledging is recorded as them, via OIDC.
    alert = {"labels": {"alertname": "ToolFailing", "service": "svc-a"}}
    posted = httpx.post(
        f"{server.url}/webhooks/generic", json={"alerts": [alert]}, headers=POST_ALERTS, timeout=5
    )
    assert posted.status_code == 200
    wait_until(lambda: get(server.url, **READ).json()["incidents"], 10, "the incident")
    acked = httpx.post(
        f"{server.url}/api/v1/incidents/1/acknowledge",
        json={},
        headers={"authorization": f"Bearer {jwks.token()}"},
        timeout=10,
    )
    assert acked.status_code == 200, acked.text
    assert acked.json()["acknowledged_by"] == "U0OWNER1"
    [entry] = [t for t in acked.json()["timeline"] if t["kind"] == "acknowledged"]
    assert entry["details"]["auth"] == {
        "principal": "alice@example.test",
        "method": "oidc",
        "person": "U0OWNER1",
    }


def test_trusted_proxy_header(make_server: Any, tmp_path: Path, jwks: Jwks) -> None:
    server = make_server(BALLAST_CONFIG=config(tmp_path, jwks, "127.0.0.1/32"))
    server.start()
    assert get(server.url, **{"X-Forwarded-Email": "bob@example.test"}).status_code == 200
    assert get(server.url, **{"X-Auth-Request-Email": "bob@example.test"}).status_code == 200
    assert get(server.url).status_code == 401


def test_proxy_header_from_elsewhere_is_ignored(
    make_server: Any, tmp_path: Path, jwks: Jwks
) -> None:
    server = make_server(BALLAST_CONFIG=config(tmp_path, jwks, "10.0.0.0/8"))
    server.start()
    assert get(server.url, **{"X-Forwarded-Email": "bob@example.test"}).status_code == 401
