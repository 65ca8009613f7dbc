"""``POST /webhooks/git``: a push to the runbook repository syncs at once, not at the next poll.

Each host proves the delivery with BALLAST_GIT_WEBHOOK_SECRET its own way, checked here in
constant time (:func:`hmac.compare_digest`) against the raw body as received:

* GitHub: ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256(secret, body)>`` (Gitea and Forgejo
  send it too);
* Gitea, Forgejo, Gogs: ``X-Gitea-Signature`` / ``X-Forgejo-Signature`` /
  ``X-Gogs-Signature``: the same HMAC as bare hex;
* GitLab: ``X-Gitlab-Token``: the secret itself.

Closed by default: without the secret every request is refused (``--insecure-allow-anonymous``
does not open it: anyone could make every replica fetch). A push to the configured ref wakes
the syncer (202), and the other replicas' through PostgreSQL ``NOTIFY``; other events
(GitHub's ``ping``, tag pushes) and pushes to other refs are answered 200 with the reason
they are ignored, so the host shows the delivery as received.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time

from fastapi import FastAPI, HTTPException, Request, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from bot.api.direct import add_direct_route
from bot.api.principals import count_failure
from bot.api.services import Services, services_of
from bot.api.webhooks import BodyTooLarge, read_bounded
from bot.store.notifications import Channel, notify

log = logging.getLogger(__name__)

SOURCE = "git"
HMAC_HEADERS = ("x-gitea-signature", "x-forgejo-signature", "x-gogs-signature")
EVENT_HEADERS = (
    "x-github-event",
    "x-gitea-event",
    "x-forgejo-event",
    "x-gogs-event",
    "x-gitlab-event",
)
PUSH_EVENTS = frozenset({"push", "push hook"})


class GitPushReceipt(BaseModel):
    """What the host's delivery log shows: whether a sync started, or why not."""

    sync: bool
    ref: str | None = None
    after: str | None = None
    ignored: str | None = None


def hmac_hex(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(headers: dict[str, str], body: bytes, secret: str) -> str | None:
    """None when the delivery carries a valid proof of ``secret``; otherwise why not."""
    token = headers.get("x-gitlab-token")
    if token is not None:
        return None if hmac.compare_digest(token.encode(), secret.encode()) else "wrong_secret"
    expected = hmac_hex(secret, body)
    github = headers.get("x-hub-signature-256")
    if github is not None:
        given = github.strip()
        if not given.startswith("sha256="):
            return "wrong_secret"
        return None if _same_hex(given.removeprefix("sha256="), expected) else "wrong_secret"
    for name in HMAC_HEADERS:
        if name in headers:
            return None if _same_hex(headers[name].strip(), expected) else "wrong_secret"
    return "missing"


def _same_hex(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.lower().encode(), expected.encode())


async def git_push_webhook(request: Request) -> JSONResponse:
    """A push event from GitHub, GitLab, Gitea or Forgejo: sync the runbooks now."""
    services = services_of(request)
    started = time.perf_counter()
    code = 500
    try:
        response = await _handle(request, services)
        code = response.status_code
        return response
    except HTTPException as err:
        code = err.status_code
        raise
    finally:
        services.metrics.webhook_requests.labels(SOURCE, str(code)).inc()
        services.metrics.webhook_latency.labels(SOURCE).observe(time.perf_counter() - started)


async def _handle(request: Request, services: Services) -> JSONResponse:
    secret = services.settings.git_webhook_secret
    if secret is None:
        count_failure(request, "not_configured")
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail="git webhooks are closed: set BALLAST_GIT_WEBHOOK_SECRET (or its _FILE) "
            "and give the same secret to the repository's webhook",
        )
    try:
        body = await read_bounded(request, services.settings.max_body_bytes)
    except BodyTooLarge:
        raise HTTPException(
            status.HTTP_413_CONTENT_TOO_LARGE,
            detail=f"body is larger than {services.settings.max_body_bytes} bytes "
            "(BALLAST_MAX_BODY_BYTES); send only push events",
        ) from None
    headers = {name.lower(): value for name, value in request.headers.items()}
    problem = verify(headers, body, secret.get_secret_value())
    if problem is not None:
        count_failure(request, problem)
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail="missing or wrong signature: the webhook's secret must be "
            "BALLAST_GIT_WEBHOOK_SECRET (GitHub/Gitea/Forgejo sign with it, GitLab sends it "
            "as X-Gitlab-Token)",
        )
    syncer = services.syncer
    if syncer is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            detail="runbooks are not read from git here: set runbooks.git in ballast.yaml",
        )
    event = next((headers[name] for name in EVENT_HEADERS if name in headers), None)
    if event is not None and event.strip().lower() not in PUSH_EVENTS:
        return _ignored(f"{event} events are not pushes")
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return JSONResponse({"detail": "body is not JSON"}, status_code=400)
    ref = data.get("ref") if isinstance(data, dict) else None
    if not isinstance(ref, str):
        return JSONResponse({"detail": "a push event has a string 'ref'"}, status_code=422)
    after = data.get("after")
    after = after if isinstance(after, str) else None
    wanted = syncer.source.full_ref
    if ref != wanted:
        return _ignored(f"push to {ref}, not to {wanted}", ref=ref, after=after)
    log.info("runbooks: push to %s (%s): syncing now", ref, after or "?")
    syncer.wake()
    await _tell_other_replicas(services)
    receipt = GitPushReceipt(sync=True, ref=ref, after=after)
    return JSONResponse(receipt.model_dump(), status_code=202)


async def _tell_other_replicas(services: Services) -> None:
    """The host calls one replica; the others sync at once too (PostgreSQL ``NOTIFY``), not at
    their next poll. Best effort: if the database is away they still converge by polling."""
    try:
        async with asyncio.timeout(services.store_timeout):
            async with services.db.transaction() as session:
                await notify(session, Channel.RUNBOOKS_PUSHED)
    except Exception as err:
        log.warning("runbooks: could not tell the other replicas about the push: %s", err)


def _ignored(why: str, *, ref: str | None = None, after: str | None = None) -> JSONResponse:
    receipt = GitPushReceipt(sync=False, ref=ref, after=after, ignored=why)
    return JSONResponse(receipt.model_dump(), status_code=200)


def install(app: FastAPI) -> None:
    add_direct_route(
        app,
        "/webhooks/git",
        git_push_webhook,
        methods=["POST"],
        response_model=GitPushReceipt,
        tags=["webhooks"],
    )
