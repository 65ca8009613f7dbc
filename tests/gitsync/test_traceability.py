"""Each incident records the commit its runbook was matched under, and links the file there.

Through the real server (SQLite and PostgreSQL): alerts in by webhook, the engine opens the
incidents, the API shows ``runbook_revision`` and ``runbook_url``; the Slack message and the
postmortem draft link the runbook file at that commit.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bot.config import BallastConfig, GitSourceConfig, RunbooksConfig
from bot.postmortem.draft import render_draft
from bot.postmortem.facts import collect_facts
from bot.slack.incident_message import render_incident
from bot.slack.view import build_view
from tests.gitsync.remote import GitRemote, runbook

WEB_URL = "https://git.example.com/ops/runbooks/blob/{commit}/{path}?runbook={id}"
FILE = "runbooks/check out#1.yaml"  # a space and a '#': percent-encoded in the link
ENCODED = "runbooks/check%20out%231.yaml"


def alert(name: str) -> dict[str, Any]:
    return {"labels": {"alertname": name, "service": "checkout"}}


async def test_incidents_record_and_link_the_commit_they_were_matched_under(
    make_harness: Any, remote: GitRemote, tmp_path: Path
) -> None:
    team_template = (
        "# Team postmortem for #{{ facts.incident_id }} at {{ facts.runbook_revision }}\n"
    )
    first = remote.commit({FILE: runbook(), "runbooks/_postmortem.md.j2": team_template})
    source = GitSourceConfig(url=remote.file_url, path="runbooks", workdir=tmp_path / "w")
    config = BallastConfig(runbooks=RunbooksConfig(git=source, web_url=WEB_URL))
    h = await make_harness(config)

    opened = await h.client.post("/webhooks/generic", json={"alerts": [alert("HighErrorRate")]})
    assert opened.status_code == 200
    await h.settle()
    second = remote.commit({"runbooks/latency.yaml": runbook("checkout/latency", alertname="Slow")})
    assert (await h.client.post("/api/v1/runbooks/reload")).status_code == 200
    await h.client.post("/webhooks/generic", json={"alerts": [alert("Slow")]})
    await h.settle()

    incidents = (await h.client.get("/api/v1/incidents")).json()["incidents"]
    by_runbook = {i["runbook_id"]: i for i in incidents}
    old = await h.client.get(f"/api/v1/incidents/{by_runbook['checkout/high-error-rate']['id']}")
    old_detail = old.json()
    assert old_detail["runbook_revision"] == first, "matched before the second commit went live"
    assert old_detail["runbook_url"] == (
        f"https://git.example.com/ops/runbooks/blob/{first}/{ENCODED}"
        "?runbook=checkout%2Fhigh-error-rate"
    )
    new_id = by_runbook["checkout/latency"]["id"]
    new_detail = (await h.client.get(f"/api/v1/incidents/{new_id}")).json()
    assert new_detail["runbook_revision"] == second
    assert new_detail["runbook_url"].startswith(
        f"https://git.example.com/ops/runbooks/blob/{second}/runbooks/latency.yaml"
    )

    # The Slack message links the runbook file at the incident's commit.
    from bot.incidents.detail import load_incident_detail

    s = h.services
    detail = await load_incident_detail(s.db, s.catalog, s.registry, old_detail["id"])
    runbook_now = s.catalog.current.runbooks[detail.runbook_id]
    message = render_incident(build_view(detail, runbook_now))
    footer = str(message.blocks)
    assert f"<{old_detail['runbook_url'].replace('&', '&amp;')}|`{first[:12]}`>" in footer

    # So does the postmortem draft.
    facts = await collect_facts(s.db, s.catalog, s.registry, old_detail["id"])
    draft = render_draft(facts).markdown
    assert f"at commit [`{first[:12]}`]({old_detail['runbook_url']})" in draft
    # The server drafts with the team template the repository holds at the live commit.
    served = await s.postmortems.draft(old_detail["id"])
    assert served.markdown.startswith(f"# Team postmortem for #{old_detail['id']} at {first}")


async def test_a_folder_catalog_records_no_revision(make_harness: Any) -> None:
    h = await make_harness()
    labels = {
        "alertname": "ToolCallFailureRate",
        "service": "support-assistant",
        "tool": "x",
        "env": "prod",
    }
    await h.client.post("/webhooks/generic", json={"alerts": [{"labels": labels}]})
    await h.settle()
    [incident] = (await h.client.get("/api/v1/incidents")).json()["incidents"]
    detail = (await h.client.get(f"/api/v1/incidents/{incident['id']}")).json()
    assert detail["runbook_id"] is not None
    assert detail["runbook_revision"] is None
    assert detail["runbook_url"] is None
