"""A scripted incident drafts exactly the expected Markdown (golden file).

``BALLAST_UPDATE_GOLDEN=1`` rewrites the golden file from the current output; review the diff.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Clock
from tests.postmortem.conftest import config_for
from tests.postmortem.scripted import scripted_incident

GOLDEN = Path(__file__).with_name("golden")


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("BALLAST_UPDATE_GOLDEN") == "1":
        path.write_text(text, encoding="utf-8")
    assert path.is_file(), f"{path} missing; run with BALLAST_UPDATE_GOLDEN=1 to create it"
    assert text == path.read_text(encoding="utf-8")


@pytest.fixture
async def h(make_harness: Any, postmortem_folder: Path) -> Any:
    return await make_harness(api_token="api-token", config=config_for(postmortem_folder))


async def test_scripted_incident_matches_the_golden_file(
    h: Any, clock: Clock, postmortem_folder: Path
) -> None:
    incident = await scripted_incident(h, clock)
    await h.services.postmortems.drain()

    response = await h.client.get(f"/api/v1/incidents/{incident}/postmortem")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/markdown")
    check_golden("scripted-incident.md", response.text)

    # Drafted on resolve: stored and written under the folder, named by date and title.
    [written] = list(postmortem_folder.iterdir())
    assert written.name == f"2026-11-27-{incident}-search-failing-on-svc-a.md"
    stored = await h.services.postmortems.latest(incident)
    assert stored is not None
    assert not stored.polished
    assert stored.path == str(written)
    # The undo after the resolve is in the on-demand draft, not in the one made on resolve.
    assert "Undid Disable the tool" in response.text
    assert "Undid Disable the tool" not in stored.markdown
    assert written.read_text(encoding="utf-8") == stored.markdown


async def test_json_format_carries_markdown_and_facts(h: Any, clock: Clock) -> None:
    incident = await scripted_incident(h, clock)
    await h.services.postmortems.drain()
    body = (await h.client.get(f"/api/v1/incidents/{incident}/postmortem?format=json")).json()
    markdown = (await h.client.get(f"/api/v1/incidents/{incident}/postmortem")).text
    assert body["markdown"] == markdown
    phases = {p["name"]: p["seconds"] for p in body["facts"]["phases"]}
    assert phases == {"detect": 30.0, "acknowledge": 180.0, "mitigate": 0.0, "resolve": 1440.0}
    assert body["latest"]["polished"] is False
    assert [m["id"] for m in body["facts"]["mitigations"]] == ["disable-tool", "supervised"]
    assert body["file_name"] == f"2026-11-27-{incident}-search-failing-on-svc-a.md"


async def test_unknown_incident_is_404(h: Any) -> None:
    response = await h.client.get("/api/v1/incidents/999/postmortem")
    assert response.status_code == 404
    assert response.json()["detail"] == "incident 999 does not exist"
