"""A real Prometheus (module-scoped: it takes a second or two to start) and a clock that
follows real time, since Prometheus holds samples at the times they were really scraped."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import Clock, need_binary
from tests.verification.prometheus_server import Exporter, PrometheusUnderTest, running


class LiveClock(Clock):
    """Real time plus whatever the test advanced it by."""

    def __init__(self) -> None:
        super().__init__()
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, **delta: float) -> None:
        self.offset += timedelta(**delta)


@pytest.fixture
def clock() -> LiveClock:
    return LiveClock()


@pytest.fixture(scope="module")
def prometheus_pair(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[PrometheusUnderTest, Exporter]]:
    binary = need_binary("prometheus")
    yield from running(binary, tmp_path_factory.mktemp("prometheus"))


@pytest.fixture
def prometheus(prometheus_pair: tuple[PrometheusUnderTest, Exporter]) -> PrometheusUnderTest:
    return prometheus_pair[0]


@pytest.fixture
def exporter(prometheus_pair: tuple[PrometheusUnderTest, Exporter]) -> Exporter:
    return prometheus_pair[1]


@pytest.fixture
def runbooks_dir() -> Path:
    return Path(__file__).with_name("runbooks")
