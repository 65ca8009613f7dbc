"""Sign-in and sign-out: a named token pasted once, or OIDC (authorization code with PKCE).

The token is checked exactly as a bearer token is (digest compared in constant time) and
forgotten: the session keeps the token's name and a prefix of its digest, never the token.
OIDC sends the browser to the provider with a fresh ``state``, ``nonce`` and PKCE verifier kept
in the signed session; the callback swaps the code for an ID token at the token endpoint and
verifies it with the API's own OIDC verifier (JWKS signature, issuer, audience, expiry), then
checks the nonce. A trusted proxy needs no sign-in: its header names the person each time.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from typing import Annotated, Any
from urllib.parse import urlencode

import httpx
import jwt
from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response

from bot.api.principals import count_failure
from bot.api.services import services_of
from bot.auth.authenticator import AuthFailure
from bot.auth.config import OidcConfig
from bot.web.forms import checked_form, safe_next
from bot.web.identity import who_of_oidc, who_of_token
from bot.web.pages import PREFIX, base_url, codec_of, render, session_of, set_session, viewer_of
from bot.web.sessions import Session

router = APIRouter(prefix=PREFIX, include_in_schema=False)


def _login_page(request: Request, next_path: str, error: str | None, status_code: int) -> Response:
    auth = services_of(request).auth
    oidc = auth.config.oidc
    return render(
        request,
        "login.html",
        {
            "next": next_path,
            "error": error,
            "oidc": oidc is not None and oidc.client_id is not None and auth.oidc is not None,
            "proxy": auth.proxy is not None,
        },
        status_code=status_code,
    )


@router.get("/login")
async def login_form(request: Request, next: Annotated[str | None, Query()] = None) -> Response:
    """The sign-in page (open: it is how one gets in)."""
    if await viewer_of(request) is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    return _login_page(request, safe_next(next), None, 200)


@router.post("/login")
async def login(request: Request) -> Response:
    """A named token (or BALLAST_API_TOKEN) in exchange for a session."""
    form = await checked_form(request)
    target = safe_next(form.get("next"))
    who = who_of_token(services_of(request).auth, form.get("token", ""))
    if who is None:
        count_failure(request, "unknown_token")
        return _login_page(request, target, "That token is not one this server knows.", 401)
    response = RedirectResponse(target, status_code=303)
    set_session(request, response, Session().signed_in(who, codec_of(request).now()))
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    """End the session (a form with the CSRF token, so no page can sign you out)."""
    await checked_form(request)
    response = RedirectResponse(PREFIX + "/login", status_code=303)
    set_session(request, response, None)
    return response


def _oidc_login(request: Request) -> OidcConfig:
    config = services_of(request).auth.config.oidc
    if config is None or config.client_id is None or services_of(request).auth.oidc is None:
        raise AuthFailure("not_configured", "OIDC sign-in is not configured (auth.oidc.client_id)")
    return config


def _challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _callback_url(request: Request) -> str:
    return base_url(request) + PREFIX + "/login/oidc/callback"


@router.get("/login/oidc")
async def oidc_start(request: Request, next: Annotated[str | None, Query()] = None) -> Response:
    """Off to the identity provider, with state, nonce and a PKCE challenge (S256)."""
    try:
        config = _oidc_login(request)
    except AuthFailure as err:
        return _login_page(request, safe_next(next), str(err), 404)
    pending = {
        "s": secrets.token_urlsafe(24),
        "n": secrets.token_urlsafe(24),
        "v": secrets.token_urlsafe(48),
        "next": safe_next(next),
    }
    assert config.authorization_url is not None
    assert config.client_id is not None
    query = urlencode(
        {
            "response_type": "code",
            "client_id": config.client_id,
            "redirect_uri": _callback_url(request),
            "scope": " ".join(config.scopes),
            "state": pending["s"],
            "nonce": pending["n"],
            "code_challenge": _challenge(pending["v"]),
            "code_challenge_method": "S256",
        }
    )
    separator = "&" if "?" in config.authorization_url else "?"
    response = RedirectResponse(config.authorization_url + separator + query, status_code=303)
    session = session_of(request)
    session.pending = pending
    session.expires = codec_of(request).now() + 600
    set_session(request, response, session)
    return response


@router.get("/login/oidc/callback")
async def oidc_callback(
    request: Request,
    code: Annotated[str | None, Query(max_length=4096)] = None,
    state: Annotated[str | None, Query(max_length=512)] = None,
    error: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    """Back from the provider: check state, swap the code (with the PKCE verifier), verify."""
    session = session_of(request)
    pending = session.pending or {}
    target = safe_next(pending.get("next"))
    try:
        config = _oidc_login(request)
        if error:
            raise AuthFailure("provider_error", f"the identity provider said: {error}")
        if not code or not state or not secrets.compare_digest(state, pending.get("s", "")):
            raise AuthFailure("bad_state", "the sign-in expired or did not start here; try again")
        id_token = await _exchange(request, config, code, pending["v"])
        auth = services_of(request).auth
        assert auth.oidc is not None
        principal = await auth.oidc(id_token)
        claims: dict[str, Any] = jwt.decode(id_token, options={"verify_signature": False})
        if not secrets.compare_digest(str(claims.get("nonce", "")), pending.get("n", "")):
            raise AuthFailure("bad_nonce", "the ID token's nonce is not this sign-in's")
    except AuthFailure as err:
        count_failure(request, err.reason)
        session.pending = None
        return _login_page(request, target, f"Sign-in failed: {err}", 401)
    response = RedirectResponse(target, status_code=303)
    set_session(
        request, response, Session().signed_in(who_of_oidc(principal), codec_of(request).now())
    )
    return response


async def _exchange(request: Request, config: OidcConfig, code: str, verifier: str) -> str:
    """The token endpoint's ID token for ``code``."""
    assert config.token_url is not None
    assert config.client_id is not None
    services = services_of(request)
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": _callback_url(request),
        "client_id": config.client_id,
        "code_verifier": verifier,
    }
    secret = services.settings.oidc_client_secret
    if secret is not None:
        form["client_secret"] = secret.get_secret_value()
    try:
        answer = await services.http.post(config.token_url, data=form, timeout=10.0)
        answer.raise_for_status()
        id_token = answer.json().get("id_token")
    except (httpx.HTTPError, ValueError, AttributeError) as err:
        raise AuthFailure(
            "token_endpoint", f"the token endpoint did not answer ({type(err).__name__})"
        ) from None
    if not isinstance(id_token, str):
        raise AuthFailure("token_endpoint", "the token endpoint sent no id_token")
    return id_token
