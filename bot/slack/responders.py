"""Who may acknowledge, resolve, escalate or skip in Slack: the incident's responders.

Anyone in the workspace can type ``/ballast escalate`` (it pages) or click Resolve, so these
need a responder: an owner of the incident's runbook (the same owner check as running a
mitigation, user groups included), a member of one of ``slack.responder_groups`` (Slack user
groups, resolved with ``usergroups.users.list`` through the cached directory), or a user
listed in ``slack.responders``. Run, approve and undo keep the runbook's owner rules, applied
by the executor. The relation is also what ``docs/security.md``'s Slack permissions table
lists, one column each.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum

from bot.config import SlackConfig
from bot.errors import PolicyError
from bot.execution.policy import OwnerDirectory, is_owner
from bot.slack.text import mention


class Relation(StrEnum):
    """How a Slack user stands to an incident, strongest first."""

    OWNER = "owner"
    RESPONDER_GROUP = "responder group member"
    RESPONDERS = "slack.responders"
    OTHER = "other member"

    @property
    def is_responder(self) -> bool:
        return self is not Relation.OTHER


class NotAResponder(PolicyError):
    """A Slack user who may not acknowledge, resolve, escalate or skip this incident.

    ``str()`` is plain text (logs); ``markup`` is the same refusal as Slack mrkdwn, with real
    mentions built only from ids and escaped names, so listeners show it without escaping.
    """

    def __init__(self, plain: str, markup: str) -> None:
        super().__init__(plain)
        self.markup = markup


class Responders:
    """The responder rule, from ``slack:`` in ballast.yaml and the owner directory."""

    def __init__(self, config: SlackConfig, directory: OwnerDirectory) -> None:
        self._config = config
        self._directory = directory
        self._users = frozenset(config.responders)

    async def relation(self, user: str, owners: Sequence[str]) -> Relation:
        if await is_owner(user, owners, self._directory):
            return Relation.OWNER
        for group in self._config.responder_groups:
            if user in await self._directory.members(group):
                return Relation.RESPONDER_GROUP
        if user in self._users:
            return Relation.RESPONDERS
        return Relation.OTHER

    async def check(self, user: str, owners: Sequence[str], what: str, incident_id: int) -> None:
        """Raise :class:`NotAResponder` (a PolicyError) unless ``user`` is a responder."""
        if (await self.relation(user, owners)).is_responder:
            return
        groups = self._config.usergroup_ids
        plain = self._refusal(user, owners, self._config.responder_groups, what, incident_id)
        markup = self._refusal(
            mention(user, groups),
            [mention(owner, groups) for owner in owners],
            [_group_mention(group, groups) for group in self._config.responder_groups],
            what,
            incident_id,
        )
        raise NotAResponder(plain, markup)

    @staticmethod
    def _refusal(
        user: str, owners: Sequence[str], groups: Sequence[str], what: str, incident_id: int
    ) -> str:
        """Why, and whom to ask."""
        asked = [*owners, *groups]
        who = ", ".join(asked) if asked else "nobody is configured"
        return (
            f"{user} may not {what} #{incident_id}: that needs an owner of its runbook, a "
            "member of a responder group (slack.responder_groups) or someone in "
            f"slack.responders. Responders: {who}."
        )


def _group_mention(group: str, group_ids: dict[str, str]) -> str:
    """A responder group as a mention: by handle, or by id (``S0123``) as Slack shows it."""
    if group.startswith("@"):
        return mention(group, group_ids)
    return f"<!subteam^{group}>"
