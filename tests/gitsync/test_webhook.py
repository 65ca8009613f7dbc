"""``POST /webhooks/git``: signed pushes from GitHub, GitLab, Gitea and Forgejo sync at once.

The server runs its real sync loop with an hour-long poll, so only the webhook can make a push
go live within the test's few seconds. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import pytest

from bot.api.git_webhook import hmac_hex, verify
from bot.config import BallastConfig, GitSourceConfig, RunbooksConfig
from tests.conftest import REPO
from tests.gitsync.remote import GitRemote, runbook

FIXTURES = REPO / "tests" / "fixtures" / "git"
SECRET = "It's a Secret to Everybody"


def test_github_documented_test_vector() -> None:
    """docs.github.com "Validating webhook deliveries": this secret and body give this value."""
    signature = "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    assert hmac_hex(SECRET, b"Hello, World!") == signature
    assert verify({"x-hub-signature-256": f"sha256={signature}"}, b"Hello, World!", SECRET) is None
    assert verify({"x-hub-signature-256": f"sha256={signature}"}, b"Hello, World?", SECRET)
    assert verify({"x-hub-signature-256": signature}, b"Hello, World!", SECRET)  # no prefix
    assert verify({}, b"Hello, World!", SECRET) == "missing"


def payload(name: str, commit: str, ref: str = "refs/heads/main") -> bytes:
    data = json.loads((FIXTURES / name).read_text())
    data["after"] = commit
    data["ref"] = ref
    return json.dumps(data).encode()


def github(body: bytes, secret: str = SECRET, event: str = "push") -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
        "X-Hub-Signature-256": f"sha256={digest}",
    }


def gitea(body: bytes, secret: str = SECRET, header: str = "X-Gitea-Signature") -> dict[str, str]:
    event = "X-Forgejo-Event" if "Forgejo" in header else "X-Gitea-Event"
    return {event: "push", header: hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()}


def gitlab(_body: bytes, secret: str = SECRET) -> dict[str, str]:
    return {"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": secret}


async def serve(make_harness: Any, remote: GitRemote, tmp_path: Path, **settings: Any) -> Any:
    source = GitSourceConfig(url=remote.file_url, path="runbooks", workdir=tmp_path / "w")
    config = BallastConfig(runbooks=RunbooksConfig(git=source.model_copy(update={})))
    settings.setdefault("git_webhook_secret", SECRET)
    harness = await make_harness(config, **settings)
    assert harness.services.syncer.loop.poll_interval == 60
    harness.services.syncer.loop.poll_interval = 3600  # only the webhook syncs within the test
    harness.services.syncer.wake()  # let the running rest start over with the new interval
    return harness


async def revision(h: Any) -> str:
    return str((await h.client.get("/api/v1/runbooks")).json()["revision"])


async def live_at(h: Any, commit: str, within: float = 10) -> None:
    for _ in range(int(within / 0.05)):
        if await revision(h) == commit:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{commit} did not go live within {within}s")


@pytest.mark.parametrize(
    ("fixture", "sign"),
    [
        ("github-push.json", github),
        ("gitlab-push.json", gitlab),
        ("gitea-push.json", gitea),
        ("gitea-push.json", lambda body: gitea(body, header="X-Forgejo-Signature")),
    ],
    ids=["github", "gitlab", "gitea", "forgejo"],
)
async def test_a_signed_push_goes_live_at_once(
    make_harness: Any, remote: GitRemote, tmp_path: Path, fixture: str, sign: Any
) -> None:
    remote.commit({"runbooks/checkout.yaml": runbook()})
    h = await serve(make_harness, remote, tmp_path)
    await asyncio.sleep(0.2)  # the loop is resting with the hour-long poll
    pushed = remote.commit({"runbooks/checkout.yaml": runbook(title="Pushed")})
    body = payload(fixture, pushed)

    answer = await h.anonymous.post("/webhooks/git", content=body, headers=sign(body))

    assert answer.status_code == 202, answer.text
    assert answer.json() == {
        "sync": True,
        "ref": "refs/heads/main",
        "after": pushed,
        "ignored": None,
    }
    await live_at(h, pushed)


async def test_forged_and_unsigned_pushes_are_refused(
    make_harness: Any, remote: GitRemote, tmp_path: Path
) -> None:
    first = remote.commit({"runbooks/checkout.yaml": runbook()})
    h = await serve(make_harness, remote, tmp_path)
    await asyncio.sleep(0.2)
    pushed = remote.commit({"runbooks/checkout.yaml": runbook(title="Pushed")})
    body = payload("github-push.json", pushed)
    signed = github(body)
    tampered = body.replace(b"Runbook Author", b"Someone Else")
    attempts = [
        (body, github(body, secret="not the secret")),
        (tampered, signed),  # a valid signature of another body
        (body, gitea(body, secret="guess")),
        (body, gitlab(body, secret="guess")),
        (body, {"X-GitHub-Event": "push"}),
    ]
    for content, headers in attempts:
        answer = await h.anonymous.post("/webhooks/git", content=content, headers=headers)
        assert answer.status_code == 401, (headers, answer.text)
    await asyncio.sleep(0.5)
    assert await revision(h) == first, "a refused delivery must not sync"
    metrics = (await h.client.get("/metrics")).text
    assert 'ballast_webhook_requests_total{code="401",source="git"} 5.0' in metrics


async def test_other_refs_and_events_are_ignored(
    make_harness: Any, remote: GitRemote, tmp_path: Path
) -> None:
    first = remote.commit({"runbooks/checkout.yaml": runbook()})
    h = await serve(make_harness, remote, tmp_path)
    await asyncio.sleep(0.2)
    remote.commit({"runbooks/checkout.yaml": runbook(title="Pushed")})
    other = payload("github-push.json", "0" * 40, ref="refs/heads/feature")
    answer = await h.anonymous.post("/webhooks/git", content=other, headers=github(other))
    assert answer.status_code == 200
    assert answer.json()["sync"] is False
    assert answer.json()["ignored"] == "push to refs/heads/feature, not to refs/heads/main"
    ping = (FIXTURES / "github-ping.json").read_bytes()
    answer = await h.anonymous.post(
        "/webhooks/git", content=ping, headers=github(ping, event="ping")
    )
    assert answer.status_code == 200
    assert answer.json()["ignored"] == "ping events are not pushes"
    tag = payload("gitlab-push.json", "1" * 40, ref="refs/tags/v1")
    answer = await h.anonymous.post(
        "/webhooks/git", content=tag, headers={**gitlab(tag), "X-Gitlab-Event": "Tag Push Hook"}
    )
    assert answer.json()["ignored"] == "Tag Push Hook events are not pushes"
    await asyncio.sleep(0.5)
    assert await revision(h) == first


async def test_closed_without_a_secret(
    make_harness: Any, remote: GitRemote, tmp_path: Path
) -> None:
    remote.commit({"runbooks/checkout.yaml": runbook()})
    h = await serve(
        make_harness, remote, tmp_path, git_webhook_secret=None, insecure_allow_anonymous=True
    )
    body = payload("github-push.json", "1" * 40)
    for headers in (github(body, secret=""), {}, gitlab(body, secret="")):
        answer = await h.anonymous.post("/webhooks/git", content=body, headers=headers)
        assert answer.status_code == 401
        assert "BALLAST_GIT_WEBHOOK_SECRET" in answer.json()["detail"]


async def test_a_folder_server_answers_404_to_a_valid_push(make_harness: Any) -> None:
    h = await make_harness(git_webhook_secret=SECRET)
    body = payload("github-push.json", "1" * 40)
    answer = await h.anonymous.post("/webhooks/git", content=body, headers=github(body))
    assert answer.status_code == 404
    assert "runbooks.git" in answer.json()["detail"]


async def test_a_push_to_one_replica_syncs_the_others_at_once(
    make_harness: Any, database_kind: str, remote: GitRemote, tmp_path: Path
) -> None:
    """The host calls one replica; on PostgreSQL the others hear of it (NOTIFY) and sync too,
    though their poll is an hour away. (SQLite has one process: nothing to tell.)"""
    if database_kind != "postgres":
        pytest.skip("replicas tell each other through PostgreSQL LISTEN/NOTIFY")
    remote.commit({"runbooks/checkout.yaml": runbook()})
    one = await serve(make_harness, remote, tmp_path / "one")
    two = await serve(make_harness, remote, tmp_path / "two")
    for _ in range(200):
        if one.services.feed.listening and two.services.feed.listening:
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)  # the syncs the (re)connections started are over
    pushed = remote.commit({"runbooks/checkout.yaml": runbook(title="Pushed")})
    body = payload("github-push.json", pushed)

    answer = await one.anonymous.post("/webhooks/git", content=body, headers=github(body))

    assert answer.status_code == 202
    await live_at(two, pushed)
    await live_at(one, pushed)
