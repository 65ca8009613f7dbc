"""A postmortem draft published into its incident's thread: the head, then the Markdown."""

from __future__ import annotations

from bot.postmortem.draft import Draft
from bot.slack.postmortem_thread import PostmortemThread, chunks
from tests.slack_delivery.conftest import INCIDENTS, Rig, message


def draft(incident: int, markdown: str) -> Draft:
    return Draft(incident, "Groundedness low", "Resolved in 12 min.", markdown, "default")


async def test_the_draft_goes_to_the_thread_in_order_once_per_key(rig: Rig) -> None:
    incident = await rig.incident()
    await rig.enqueue(
        lambda s: rig.outbox.post_incident_message(s, incident, INCIDENTS.id, message("v1"))
    )
    await rig.settle()
    thread = PostmortemThread(rig.outbox)
    markdown = "\n".join(f"line {n} " + "x" * 90 for n in range(80))  # ~7,800 characters
    for _ in range(2):  # the same key twice (a retried transaction): posted once
        async with rig.db.transaction() as session:
            assert await thread.publish_draft(session, draft(incident, markdown), "postmortem:1")
    await rig.settle()
    [top] = rig.slack.messages(INCIDENTS.id)
    replies = [reply["text"] for reply in top["replies"]]
    assert replies[0] == (
        f":memo: *Groundedness low* — postmortem draft from the timeline "
        f"(`ballast postmortem {incident}`)\nResolved in 12 min."
    )
    bodies = replies[1:]
    assert len(bodies) == 3
    assert all(b.startswith("```\n") and b.endswith("\n```") for b in bodies)
    assert "\n".join(b[4:-4] for b in bodies) == markdown


async def test_no_thread_no_post(rig: Rig) -> None:
    incident = await rig.incident()
    async with rig.db.transaction() as session:
        posted = await PostmortemThread(rig.outbox).publish_draft(
            session, draft(incident, "# x"), "postmortem:2"
        )
    assert posted is False
    assert await rig.rows() == []


def test_chunks_cut_at_line_ends_and_split_long_lines() -> None:
    assert chunks("a\nbb\nccc\n", 5) == ["a\nbb", "ccc"]
    assert chunks("x" * 12, 5) == ["xxxxx", "xxxxx", "xx"]
    assert chunks("", 5) == []
    text = "\n".join(["y" * 3] * 10)
    assert all(len(piece) <= 8 for piece in chunks(text, 8))
    assert "\n".join(chunks(text, 8)) == text
