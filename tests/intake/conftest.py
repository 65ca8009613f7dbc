"""Parametrisation over every payload fixture file of a kind (see :mod:`.payload_fixtures`)."""

from __future__ import annotations

import pytest

from .payload_fixtures import fixture_files, fixture_name

FIXTURE_SETS = {
    "alertmanager_file": ("alertmanager*/*",),
    "grafana_file": ("grafana/*",),
    "datadog_file": ("datadog/*",),
    "opsgenie_file": ("opsgenie/*",),
    "pagerduty_file": ("pagerduty/*",),
}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A test that takes ``alertmanager_file`` (etc.) runs once per file of that kind."""
    for argument, patterns in FIXTURE_SETS.items():
        if argument in metafunc.fixturenames:
            files = fixture_files(*patterns)
            assert files, f"no fixture files match {patterns}"
            metafunc.parametrize(argument, files, ids=[fixture_name(path) for path in files])
