"""Postmortem drafts from what really happened: facts → template → (optional polish) → delivery.

``facts`` reads the incident, its journal, its runbook and the control history; ``draft``
renders them with a sandboxed Jinja2 template; ``polish`` may let a language model reword the
summary, checked fact by fact; ``service`` drafts on resolve and on demand and delivers.
"""

from bot.postmortem.draft import Draft, render_draft, summary_of
from bot.postmortem.facts import collect_facts
from bot.postmortem.models import PostmortemFacts
from bot.postmortem.polish import check_polish, facts_in, polish_summary
from bot.postmortem.service import PostmortemService

__all__ = [
    "Draft",
    "PostmortemFacts",
    "PostmortemService",
    "check_polish",
    "collect_facts",
    "facts_in",
    "polish_summary",
    "render_draft",
    "summary_of",
]
