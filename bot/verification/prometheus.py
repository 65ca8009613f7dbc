"""A small client of the Prometheus HTTP API (``/api/v1/query``, ``/api/v1/query_range``,
``/api/v1/query_exemplars``).

It never raises into an incident: a Prometheus that is down, slow or answers an error gives a
:class:`Reading` with no value and the reason, and the caller records ``unknown``. Values are
read from the API's real answer shapes (sample values are strings, so ``NaN`` and ``+Inf``
arrive intact and are reported as unknown, with why).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from bot.config import PrometheusConfig

_REASON_LIMIT = 300


@dataclass(frozen=True, slots=True)
class Reading:
    """One instant value of a query: ``value`` or, when it is unknown, ``reason``."""

    value: float | None
    reason: str | None = None

    @property
    def known(self) -> bool:
        return self.value is not None


@dataclass(frozen=True, slots=True)
class Series:
    """One series of a range query: its labels and (unix seconds, value) points."""

    labels: dict[str, str]
    points: list[tuple[float, float]]


@dataclass(frozen=True, slots=True)
class RangeReading:
    series: list[Series]
    reason: str | None = None


# The exemplar label that holds a trace id: OpenTelemetry's and the Prometheus client
# libraries' ``trace_id``, and the spellings Grafana and others use.
TRACE_ID_LABELS = ("trace_id", "traceID", "traceId", "trace-id")
# A trace id as the tracing systems write them: 16 or 32 hex digits (W3C: 32). Anything else
# in an exemplar label is not shown: it came from the application's metrics, not from us.
_TRACE_ID = re.compile(r"[0-9a-fA-F]{16}(?:[0-9a-fA-F]{16})?")


@dataclass(frozen=True, slots=True)
class Exemplar:
    """One exemplar with a trace id: which series it belongs to, when, and its value."""

    trace_id: str
    at: datetime
    value: float | None
    series: dict[str, str]


@dataclass(frozen=True, slots=True)
class ExemplarReading:
    exemplars: list[Exemplar]
    reason: str | None = None


class PrometheusError(Exception):
    """Why a query has no answer (carried as a reason, never raised to callers)."""


class PrometheusClient:
    """Queries one Prometheus; authentication secrets come from the environment."""

    def __init__(
        self, config: PrometheusConfig, http: httpx.AsyncClient, environ: Mapping[str, str]
    ) -> None:
        self._config = config
        self._http = http
        self._base = config.url.rstrip("/")
        self._headers: dict[str, str] = {}
        self._auth: httpx.BasicAuth | None = None
        if config.bearer_token_env is not None:
            self._headers["Authorization"] = f"Bearer {environ.get(config.bearer_token_env, '')}"
        if config.basic_auth is not None:
            password = environ.get(config.basic_auth.password_env, "")
            self._auth = httpx.BasicAuth(config.basic_auth.username, password)

    @property
    def url(self) -> str:
        return self._base

    @property
    def _timeout_param(self) -> str:
        """Prometheus's own query timeout, as a duration it parses (``2.0s`` is refused)."""
        return f"{max(1, int(self._config.timeout * 1000))}ms"

    async def query(self, expr: str, at: datetime | None = None) -> Reading:
        """The single value of ``expr`` at ``at`` (default: now), or unknown with the reason."""
        params = {"query": expr, "timeout": self._timeout_param}
        if at is not None:
            params["time"] = f"{at.timestamp():.3f}"
        try:
            data = await self._call("/api/v1/query", params)
            return _single_value(data)
        except PrometheusError as err:
            return Reading(None, _short(str(err)))

    async def query_range(
        self, expr: str, start: datetime, end: datetime, step_seconds: float
    ) -> RangeReading:
        params = {
            "query": expr,
            "start": f"{start.timestamp():.3f}",
            "end": f"{end.timestamp():.3f}",
            "step": f"{step_seconds:g}",
            "timeout": self._timeout_param,
        }
        try:
            data = await self._call("/api/v1/query_range", params)
            if data.get("resultType") != "matrix" or not isinstance(data.get("result"), list):
                raise PrometheusError(f"expected a matrix, got {data.get('resultType')!r}")
            return RangeReading([_series(item) for item in data["result"]])
        except PrometheusError as err:
            return RangeReading([], _short(str(err)))

    async def query_exemplars(self, expr: str, start: datetime, end: datetime) -> ExemplarReading:
        """The exemplars of ``expr``'s series between ``start`` and ``end`` that carry a trace
        id, newest first; none, with the reason, when Prometheus cannot answer (exemplar
        storage off answers an empty list, which is no error)."""
        params = {
            "query": expr,
            "start": f"{start.timestamp():.3f}",
            "end": f"{end.timestamp():.3f}",
        }
        try:
            data = await self._data("/api/v1/query_exemplars", params)
            if not isinstance(data, list):
                raise PrometheusError(f"expected a list of exemplars, got {type(data).__name__}")
            found = [exemplar for item in data for exemplar in _exemplars(item)]
        except PrometheusError as err:
            return ExemplarReading([], _short(str(err)))
        found.sort(key=lambda e: e.at, reverse=True)
        return ExemplarReading(found)

    async def _call(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        data = await self._data(path, params)
        if not isinstance(data, dict):
            raise PrometheusError("Prometheus answered success without data")
        return data

    async def _data(self, path: str, params: dict[str, str]) -> Any:
        try:
            response = await self._http.post(
                self._base + path,
                data=params,
                headers=self._headers,
                auth=self._auth if self._auth is not None else httpx.USE_CLIENT_DEFAULT,
                timeout=self._config.timeout,
            )
        except httpx.TimeoutException:
            raise PrometheusError(
                f"Prometheus at {self._base} did not answer in {self._config.timeout:g}s"
            ) from None
        except httpx.HTTPError as err:
            raise PrometheusError(
                f"cannot reach Prometheus at {self._base}: {type(err).__name__}: {err}"
            ) from None
        try:
            body = response.json()
        except ValueError:
            raise PrometheusError(
                f"Prometheus at {self._base} answered HTTP {response.status_code} without JSON"
            ) from None
        if not isinstance(body, dict):
            raise PrometheusError(f"Prometheus answered {type(body).__name__}, not an object")
        if body.get("status") != "success":
            kind = body.get("errorType") or "error"
            raise PrometheusError(
                f"Prometheus answered HTTP {response.status_code} {kind}: {body.get('error', '')}"
            )
        return body.get("data")


def _single_value(data: dict[str, Any]) -> Reading:
    kind, result = data.get("resultType"), data.get("result")
    if kind == "scalar" and isinstance(result, list):
        return _number(result)
    if kind == "vector" and isinstance(result, list):
        if not result:
            return Reading(None, "no data: the query returned no series")
        if len(result) > 1:
            return Reading(
                None,
                f"the query returned {len(result)} series; aggregate it to one "
                "(sum, max, avg …) so there is one value to judge",
            )
        item = result[0]
        if not isinstance(item, dict) or not isinstance(item.get("value"), list):
            return Reading(None, "a vector sample without a value")
        return _number(item["value"])
    return Reading(None, f"cannot judge a {kind!r} result; write a query with one number")


def _number(pair: list[Any]) -> Reading:
    """A ``[<unix seconds>, "<value>"]`` sample; NaN and ±Inf are unknown, with why."""
    try:
        value = float(pair[1])
    except (IndexError, TypeError, ValueError):
        return Reading(None, f"not a sample value: {_short(repr(pair))}")
    if math.isnan(value):
        return Reading(None, "the value is NaN (0/0: no traffic in the window?)")
    if math.isinf(value):
        return Reading(None, f"the value is {'+' if value > 0 else '-'}Inf (division by zero?)")
    return Reading(value)


def _series(item: Any) -> Series:
    if not isinstance(item, dict) or not isinstance(item.get("values"), list):
        raise PrometheusError("a matrix series without values")
    points: list[tuple[float, float]] = []
    for pair in item["values"]:
        try:
            value = float(pair[1])
            stamp = float(pair[0])
        except (IndexError, TypeError, ValueError):
            raise PrometheusError(f"not a sample: {_short(repr(pair))}") from None
        if math.isfinite(value):
            points.append((stamp, value))
    labels = item.get("metric") or {}
    return Series({str(k): str(v) for k, v in labels.items()}, points)


def _exemplars(item: Any) -> list[Exemplar]:
    """The exemplars of one series of ``query_exemplars`` that name a well-formed trace id."""
    if not isinstance(item, dict) or not isinstance(item.get("exemplars"), list):
        raise PrometheusError("an exemplar series without exemplars")
    raw_series = item.get("seriesLabels") or {}
    series = {str(k): str(v) for k, v in raw_series.items()} if isinstance(raw_series, dict) else {}
    out = []
    for exemplar in item["exemplars"]:
        if not isinstance(exemplar, dict) or not isinstance(exemplar.get("labels"), dict):
            continue
        labels = exemplar["labels"]
        trace_id = next((str(labels[n]) for n in TRACE_ID_LABELS if n in labels), None)
        if trace_id is None or not _TRACE_ID.fullmatch(trace_id):
            continue
        try:
            at = datetime.fromtimestamp(float(exemplar["timestamp"]), UTC)
        except (KeyError, TypeError, ValueError, OverflowError, OSError):
            continue
        try:
            value: float | None = float(exemplar["value"])
        except (KeyError, TypeError, ValueError):
            value = None
        out.append(Exemplar(trace_id.lower(), at, value, series))
    return out


def _short(text: str) -> str:
    return text if len(text) <= _REASON_LIMIT else text[: _REASON_LIMIT - 1] + "…"
