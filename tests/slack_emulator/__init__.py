"""A local Slack for tests: a Web API emulator on loopback, and signed Request URL payloads.

- ``SlackEmulator`` (server.py): answers the Web API methods Ballast uses, records every call,
  enforces Slack's rate limits (limits.py) and Block Kit limits (block_kit.py), and returns
  Slack's documented error shapes; serves ``response_url``s and file upload URLs.
- ``RequestSigner`` (signing.py): bodies and headers exactly as Slack sends them to
  ``/slack/events``, correctly signed, stale, or badly signed.
- payloads.py: slash command forms, ``block_actions`` payloads, Events API envelopes.
"""

from .limits import DEFAULT_LIMITS, TIER_2, TIER_3, TIER_4, Limit, RateLimiter, Scope
from .payloads import (
    DEFAULT_TEAM,
    SlackChannel,
    SlackTeam,
    SlackUser,
    app_mention_event,
    block_actions_payload,
    click,
    event_callback,
    find_button,
    slash_command_form,
    url_verification,
)
from .recording import Call
from .server import DEFAULT_CHANNEL, ResponseUrlPost, SlackEmulator
from .signing import STALE_AFTER, RequestSigner, SignedRequest, compute_signature

__all__ = [
    "DEFAULT_CHANNEL",
    "DEFAULT_LIMITS",
    "DEFAULT_TEAM",
    "STALE_AFTER",
    "TIER_2",
    "TIER_3",
    "TIER_4",
    "Call",
    "Limit",
    "RateLimiter",
    "RequestSigner",
    "ResponseUrlPost",
    "Scope",
    "SignedRequest",
    "SlackChannel",
    "SlackEmulator",
    "SlackTeam",
    "SlackUser",
    "app_mention_event",
    "block_actions_payload",
    "click",
    "compute_signature",
    "event_callback",
    "find_button",
    "slash_command_form",
    "url_verification",
]
