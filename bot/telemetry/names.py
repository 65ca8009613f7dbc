"""Span and attribute names, in one place so dashboards and tests can rely on them.

docs/observability.md lists them. Ballast's own attributes are under ``ballast.``; HTTP
client spans use the OpenTelemetry semantic conventions (``http.request.method``,
``server.address``, ``http.response.status_code``).
"""

from __future__ import annotations

TRACER = "ballast"

# Attributes.
INCIDENT_ID = "ballast.incident.id"
RUNBOOK_ID = "ballast.runbook.id"
MITIGATION_ID = "ballast.mitigation.id"
CONTROL_KEY = "ballast.control.key"
ACTION = "ballast.action"
ALERT_SOURCE = "ballast.alert.source"
ALERTS_RECEIVED = "ballast.alerts.received"
ALERTS_STORED = "ballast.alerts.stored"
ALERTS_PROCESSED = "ballast.alerts.processed"
INCIDENT_CHANGE = "ballast.incident.change"
POLICY_EXECUTE = "ballast.policy.execute"
POLICY_APPROVALS_NEEDED = "ballast.policy.approvals_needed"
EXECUTION_STATE = "ballast.execution.state"
ACTOR = "ballast.actor"
SLACK_METHOD = "ballast.slack.method"
TIMER_KIND = "ballast.timer.kind"

# Spans, in the order an alert meets them.
WEBHOOK = "webhook"  # "webhook alertmanager": the request, parent of the store
INBOX_STORE = "inbox.store"
ENGINE_BATCH = "engine.batch"  # linked to each webhook whose rows it processed
INCIDENT = "incident"  # "incident opened": child of the batch, one per incident changed
AUTO_MITIGATIONS = "mitigation.auto"  # a new incident's auto mitigations, child of its span
MITIGATION = "mitigation.run"
MITIGATION_UNDO = "mitigation.undo"  # on request or by its undo_after timer
POLICY = "policy.decide"
ACTION_APPLY = "action.apply"
SLACK_ANNOUNCE = "slack.announce"
SLACK_CONSOLE = "slack.console"  # without Slack credentials: the line printed instead
TIMER = "timer"  # "timer verify": one fired timer (escalate, remind, auto_undo, verify)
SLACK_DELIVERY = "slack.deliver"  # child of the span that queued the outbox row
