"""The ``/ballast`` parser: every subcommand, every mistake, and no input that escapes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.slack.answers import render_ephemeral
from bot.slack.commands import (
    HELP,
    Ack,
    Command,
    CommandError,
    Controls,
    Escalate,
    Help,
    ListIncidents,
    Postmortem,
    Resolve,
    Run,
    Runbooks,
    Show,
    ShowRunbook,
    Undo,
    parse_command,
    usage,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", Help()),
        ("   ", Help()),
        ("help", Help()),
        ("HELP Run", Help("run")),
        ("help acknowledge", Help("ack")),
        ("list", ListIncidents()),
        ("ls", ListIncidents()),
        ("show 42", Show(42)),
        ("Show #42", Show(42)),
        ("  show\t#42  ", Show(42)),
        ("show\u00a042", Show(42)),  # Slack clients sometimes send non-breaking spaces
        ("ack 7", Ack(7)),
        ("ACKNOWLEDGE #7", Ack(7)),
        ("resolve 3", Resolve(3)),
        ("resolve #3 false alarm:  judge  was down", Resolve(3, "false alarm:  judge  was down")),
        ("run 4 rollback-prompt", Run(4, "rollback-prompt")),
        ("RUN #4 Rollback-Prompt", Run(4, "rollback-prompt")),
        ("undo 4 review-high-risk", Undo(4, "review-high-risk")),
        ("escalate #9", Escalate(9)),
        ("runbooks", Runbooks()),
        ("runbooks groundedness  drop", Runbooks("groundedness  drop")),
        (
            "runbook support-assistant/groundedness-drop",
            ShowRunbook("support-assistant/groundedness-drop"),
        ),
        ("controls", Controls()),
        ("controls Support-Assistant", Controls("support-assistant")),
        ("postmortem #12", Postmortem(12)),
    ],
)
def test_valid_commands(text: str, expected: Command) -> None:
    assert parse_command(text) == expected


@pytest.mark.parametrize(
    ("text", "problem", "usage_line"),
    [
        ("show", "`show` needs an incident ID.", "/ballast show ID"),
        ("show 42 43", "`show` does not take `43`.", "/ballast show ID"),
        (
            "show forty-two",
            "`forty-two` is not an incident ID; write `42` or `#42`.",
            "/ballast show ID",
        ),
        ("show #0", "`#0` is not an incident ID; write `42` or `#42`.", "/ballast show ID"),
        (
            "show 99999999999999999999",
            "`99999999999999999999` is not an incident ID; write `42` or `#42`.",
            "/ballast show ID",
        ),
        ("ack", "`ack` needs an incident ID.", "/ballast ack ID"),
        ("list everything", "`list` does not take `everything`.", "/ballast list"),
        (
            "run 4",
            "`run` needs a mitigation ID (e.g. `rollback-prompt`).",
            "/ballast run ID MITIGATION",
        ),
        ("run 4 a b", "`run` does not take `b`.", "/ballast run ID MITIGATION"),
        (
            "undo 4 not_a/slug",
            "`not_a/slug` is not a mitigation ID (e.g. `rollback-prompt`).",
            "/ballast undo ID MITIGATION",
        ),
        (
            "runbook",
            "`runbook` needs a runbook ID (see `/ballast runbooks`).",
            "/ballast runbook RUNBOOK_ID",
        ),
        ("controls a.b", "`a.b` is not a service name.", "/ballast controls [SERVICE]"),
        ("controls a b", "`controls` does not take `b`.", "/ballast controls [SERVICE]"),
        ("help nope", "There is no command `nope`.", "/ballast help [COMMAND]"),
        ("postmortem 1 2", "`postmortem` does not take `2`.", "/ballast postmortem ID"),
    ],
)
def test_mistakes_answer_with_usage_and_help(text: str, problem: str, usage_line: str) -> None:
    with pytest.raises(CommandError) as caught:
        parse_command(text)
    assert str(caught.value) == f"{problem}\nUsage: `{usage_line}`\n\n{HELP}"
    assert caught.value.usage == usage_line


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("deploy 42", "Unknown command `deploy`."),
        ("lsit", "Unknown command `lsit`. Did you mean `list`?"),
        ("Shwo 4", "Unknown command `Shwo`. Did you mean `show`?"),
        ("<!channel> `boom`", "Unknown command `&lt;!channel&gt;`."),
    ],
)
def test_unknown_input_answers_with_help(text: str, problem: str) -> None:
    with pytest.raises(CommandError) as caught:
        parse_command(text)
    assert str(caught.value) == f"{problem}\n\n{HELP}"


def test_user_input_echoed_back_is_escaped_and_short() -> None:
    with pytest.raises(CommandError) as caught:
        parse_command("show <@U123>" + "x" * 500)
    assert caught.value.problem.startswith("`&lt;@U123&gt;xxx")
    assert "…" in caught.value.problem
    assert len(caught.value.problem) < 120
    with pytest.raises(CommandError, match="characters long"):
        parse_command("x" * 5_000)
    with pytest.raises(CommandError, match="keep it under 2000"):
        parse_command("resolve 1 " + "r" * 2_001)


def test_help_lists_every_subcommand_and_fits_one_section() -> None:
    for name in (
        "help", "list", "show", "ack", "resolve", "run", "undo", "escalate", "runbooks",
        "runbook", "controls", "postmortem",
    ):  # fmt: skip
        assert f"`/ballast {name}" in HELP
    assert len(HELP) < 3000
    assert (
        usage("acknowledge") == "`/ballast ack ID` — acknowledge: you are on it (stops escalation)"
    )
    # The longest error answer still renders as one ephemeral message within Block Kit limits.
    with pytest.raises(CommandError) as caught:
        parse_command("run 1 " + "Ü" * 3_000)
    message = render_ephemeral(str(caught.value))
    assert len(message.blocks) <= 2
    assert all(len(b["text"]["text"]) <= 3000 for b in message.blocks)


def outcome(text: str) -> Command | CommandError:
    """What the listener gets: a command, or an error to show; anything else is a bug."""
    try:
        return parse_command(text)
    except CommandError as err:
        return err


@given(st.text(max_size=300))
def test_any_text_parses_or_raises_command_error(text: str) -> None:
    result = outcome(text)
    if isinstance(result, CommandError):
        assert str(result).endswith(HELP)
    else:
        assert isinstance(
            result,
            Help | ListIncidents | Show | Ack | Resolve | Run | Undo | Escalate | Runbooks
            | ShowRunbook | Controls | Postmortem,
        )  # fmt: skip


words = st.sampled_from(
    ["help", "list", "show", "ack", "resolve", "run", "undo", "escalate", "runbooks", "runbook",
     "controls", "postmortem", "#1", "42", "#", "-1", "rollback-prompt", "a/b", "x.y", "", "\t",
     "\u00a0", "\n", "`", "<!here>", "ÄÖ", "İ", "0", "#007"]
)  # fmt: skip


@given(st.lists(words, max_size=6).map(" ".join))
def test_near_miss_commands_parse_or_raise_command_error(text: str) -> None:
    result = outcome(text)
    assert not isinstance(result, CommandError) or HELP in str(result)


@given(
    st.integers(min_value=1, max_value=10**18 - 1),
    st.booleans(),
    st.sampled_from(["show", "SHOW", "Show"]),
)
def test_incident_ids_with_or_without_hash(number: int, hashed: bool, name: str) -> None:
    assert parse_command(f"{name} {'#' if hashed else ''}{number}") == Show(number)
