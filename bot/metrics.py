"""Ballast's own Prometheus metrics, on a registry per app (so tests can build many apps)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.alerts_received = Counter(
            "ballast_alerts_received",
            "Alerts received by webhook, by source and result (stored, duplicate, rejected).",
            ["source", "result"],
            registry=self.registry,
        )
        self.webhook_requests = Counter(
            "ballast_webhook_requests",
            "Webhook requests by source and HTTP status code.",
            ["source", "code"],
            registry=self.registry,
        )
        self.alerts_processed = Counter(
            "ballast_alerts_processed",
            "Stored alerts processed by the incident engine, by outcome.",
            ["outcome"],
            registry=self.registry,
        )
        self.inbox_pruned = Counter(
            "ballast_inbox_pruned",
            "Processed alert states deleted by the inbox's retention (inbox.retention).",
            registry=self.registry,
        )
        self.alerts_unmatched = Counter(
            "ballast_alerts_unmatched",
            "Alerts that matched no runbook and went to a triage incident.",
            registry=self.registry,
        )
        self.incidents = Gauge(
            "ballast_incidents",
            "Incidents by state.",
            ["state"],
            registry=self.registry,
        )
        self.inbox_lag = Gauge(
            "ballast_inbox_lag_seconds",
            "Age of the oldest stored alert not yet processed (0 when the inbox is empty).",
            registry=self.registry,
        )
        self.inbox_pending = Gauge(
            "ballast_inbox_pending",
            "Stored alerts not yet processed.",
            registry=self.registry,
        )
        self.alert_values_altered = Counter(
            "ballast_alert_values_altered",
            "Label and annotation values intake changed instead of refusing the alert, by reason "
            "(truncated: over its length limit; unstorable_character: NUL or a lone surrogate "
            "replaced with U+FFFD). Each alert lists its changes in its ballast_intake annotation.",
            ["reason"],
            registry=self.registry,
        )
        self.webhook_latency = Histogram(
            "ballast_webhook_duration_seconds",
            "Time from webhook request received to response, by source.",
            ["source"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=self.registry,
        )
        self.auth_failures = Counter(
            "ballast_auth_failures",
            "Requests refused by authentication or authorization, by endpoint and reason.",
            ["endpoint", "reason"],
            registry=self.registry,
        )
        self.insecure_allow_anonymous = Gauge(
            "ballast_insecure_allow_anonymous",
            "1 when ballast serve --insecure-allow-anonymous opened webhooks, OFREP or /metrics "
            "to anyone, or serves a network address with no way in.",
            registry=self.registry,
        )
        self.catalog_reloads = Counter(
            "ballast_catalog_reloads",
            "Runbook catalog reloads, by result (ok, refused).",
            ["result"],
            registry=self.registry,
        )
        self.runbooks_git_syncs = Counter(
            "ballast_runbooks_git_syncs",
            "Runbook syncs from git, by result (live: a new commit went live, unchanged, "
            "refused: the ref points at an invalid commit, failed: git or the remote failed).",
            ["result"],
            registry=self.registry,
        )
        self.runbooks_git_refused_commits = Counter(
            "ballast_runbooks_git_refused_commits",
            "Commits of the runbook ref refused as invalid (each counted once).",
            registry=self.registry,
        )
        self.runbooks_git_refused = Gauge(
            "ballast_runbooks_git_refused",
            "1 while the runbook ref points at a refused commit (an older one is live).",
            registry=self.registry,
        )
        self.runbooks_git_live_since = Gauge(
            "ballast_runbooks_git_live_since_seconds",
            "When the live runbook commit went live (Unix time).",
            registry=self.registry,
        )
        self.engine_errors = Counter(
            "ballast_engine_errors",
            "Stored alerts whose processing failed and was set aside.",
            registry=self.registry,
        )
