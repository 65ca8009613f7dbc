"""Intake: turn each alert source's webhook payload into canonical :class:`Alert` objects."""

from bot.intake.alert import Alert, AlertBatch, AlertSource, AlertStatus

__all__ = ["Alert", "AlertBatch", "AlertSource", "AlertStatus"]
