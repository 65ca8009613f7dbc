"""The OpenAPI document, completed where FastAPI cannot see: what each operation can answer.

FastAPI documents what it solves itself: path and query parameters, JSON bodies of declared
models, 200 and its own 422. The webhooks read their bodies themselves (``DirectRoute``), the
errors come from handlers and ``HTTPException``, and tokens are checked in code; so this module
adds, once, when the document is first asked for:

- the request bodies of the webhooks, from the intake's own wire models (and the OFREP
  evaluation context);
- the security schemes (``webhookToken``, ``webhookBasic``, ``apiToken`` — a principal's
  token, see docs/security.md —, ``ofrepToken``, ``ofrepApiKey``, ``metricsToken``) and which
  operations take which: none is open;
- every status each operation can return (400 401 403 404 409 413 415 422 503, 202, 304) with
  its body. Ballast's own 422s say ``{"detail": "text"}`` where FastAPI's say
  ``{"detail": [errors]}``: the error body allows both.

``tests/api/test_schemathesis.py`` holds a live server to this document.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

from bot.intake.alertmanager import AlertmanagerWebhook
from bot.intake.datadog import DatadogWebhook
from bot.intake.generic import GenericAlert, GenericBatch
from bot.intake.grafana import GrafanaWebhook
from bot.intake.opsgenie import OpsgenieWebhook
from bot.intake.pagerduty import PagerDutyWebhook

_ERROR = {"$ref": "#/components/schemas/ErrorBody"}
_OFREP_ERROR = {"$ref": "#/components/schemas/OfrepError"}

_ERROR_BODY = {
    "title": "ErrorBody",
    "type": "object",
    "properties": {
        "detail": {
            "anyOf": [
                {"type": "string"},
                {"type": "array", "items": {"$ref": "#/components/schemas/ValidationError"}},
            ],
            "description": "What is wrong and how to fix it; a list for schema errors.",
        },
        "field": {
            "anyOf": [{"type": "string"}, {"type": "null"}],
            "description": "Webhooks: the path of the bad field in the body sent.",
        },
    },
    "required": ["detail"],
}
_OFREP_ERROR_BODY = {
    "title": "OfrepError",
    "type": "object",
    "properties": {
        "key": {"type": "string"},
        "errorCode": {"type": "string"},
        "errorDetails": {"type": "string"},
    },
    "required": ["errorCode"],
}
_VALIDATION_ERROR = {
    "title": "ValidationError",
    "type": "object",
    "properties": {
        "loc": {"type": "array", "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]}},
        "msg": {"type": "string"},
        "type": {"type": "string"},
    },
    "required": ["loc", "msg", "type"],
}
_OFREP_CONTEXT = {
    "type": "object",
    "properties": {"context": {"type": "object"}},
    "description": "The evaluation context (unused: every key has one value).",
}

_MEANING = {
    "202": "Recorded; waiting for another owner's approval",
    "304": "Not modified (If-None-Match matched the ETag)",
    "400": "Not JSON, or a body that cannot be read",
    "401": "Missing or wrong bearer token",
    "403": "The actor may not do this (owner and two-person rules)",
    "404": "No such incident, mitigation, key or flag",
    "409": "The current state forbids it",
    "413": "Body larger than the limit",
    "415": "Not a JSON body",
    "422": "Well-formed but invalid: the message names the field",
    "503": "The database or control store is unavailable; retry later",
}

# A push event as GitHub, GitLab, Gitea and Forgejo send it: only these fields are read.
_GIT_PUSH: dict[str, Any] = {
    "type": "object",
    "required": ["ref"],
    "properties": {
        "ref": {"type": "string", "description": "The pushed ref, e.g. refs/heads/main"},
        "after": {"type": "string", "description": "The commit the ref points at now"},
    },
    "additionalProperties": True,
}

_WEBHOOKS: dict[str, type[BaseModel]] = {
    "/webhooks/alertmanager": AlertmanagerWebhook,
    "/webhooks/grafana": GrafanaWebhook,
    "/webhooks/pagerduty": PagerDutyWebhook,
    "/webhooks/datadog": DatadogWebhook,
    "/webhooks/opsgenie": OpsgenieWebhook,
}


def install_openapi(app: FastAPI) -> None:
    """Make ``app.openapi()`` return the completed document (built once, then cached)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            app.openapi_schema = complete(document)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented override


def complete(document: dict[str, Any]) -> dict[str, Any]:
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas.setdefault("ValidationError", _VALIDATION_ERROR)
    schemas["ErrorBody"] = _ERROR_BODY
    schemas["OfrepError"] = _OFREP_ERROR_BODY
    components["securitySchemes"] = {
        name: {"type": "http", "scheme": "bearer", "description": description}
        for name, description in (
            (
                "webhookToken",
                "BALLAST_WEBHOOK_TOKEN, or a principal's token with the automation role; "
                "closed without one",
            ),
            (
                "apiToken",
                "a principal's token (auth.tokens in ballast.yaml) or BALLAST_API_TOKEN; "
                "the API is closed without one (docs/security.md)",
            ),
            (
                "ofrepToken",
                "BALLAST_OFREP_TOKEN (also as X-API-Key), or a principal's token with the "
                "reader role; closed without one",
            ),
            (
                "metricsToken",
                "BALLAST_METRICS_TOKEN, or a principal's token with the reader role; closed "
                "without one",
            ),
        )
    }
    components["securitySchemes"]["ofrepApiKey"] = {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": "BALLAST_OFREP_TOKEN as an API key, which the OFREP spec lists",
    }
    for name, header, description in (
        ("gitHubSignature", "X-Hub-Signature-256", "sha256=<hex HMAC-SHA256 of the raw body>"),
        ("giteaSignature", "X-Gitea-Signature", "hex HMAC-SHA256 of the raw body"),
        ("forgejoSignature", "X-Forgejo-Signature", "hex HMAC-SHA256 of the raw body"),
        ("gitlabToken", "X-Gitlab-Token", "the secret itself"),
    ):
        components["securitySchemes"][name] = {
            "type": "apiKey",
            "in": "header",
            "name": header,
            "description": f"BALLAST_GIT_WEBHOOK_SECRET: {description}; closed without it",
        }
    components["securitySchemes"]["webhookBasic"] = {
        "type": "http",
        "scheme": "basic",
        "description": "BALLAST_WEBHOOK_TOKEN as the password (any username): Alertmanager's "
        "basic_auth, Grafana's username/password",
    }
    for path, operations in document.get("paths", {}).items():
        for method, operation in operations.items():
            _complete_operation(path, method.upper(), operation, schemas)
    return document


def _complete_operation(
    path: str, method: str, operation: dict[str, Any], schemas: dict[str, Any]
) -> None:
    codes: set[str] = set()
    has_body = "requestBody" in operation
    if path == "/webhooks/git":
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _GIT_PUSH}},
        }
        operation["security"] = [
            {"gitHubSignature": []},
            {"giteaSignature": []},
            {"forgejoSignature": []},
            {"gitlabToken": []},
        ]
        codes |= {"202", "400", "401", "404", "413", "422"}
    elif path.startswith("/webhooks/"):
        operation["requestBody"] = _webhook_body(path, schemas)
        operation["security"] = [{"webhookToken": []}, {"webhookBasic": []}, {"apiToken": []}]
        codes |= {"400", "401", "403", "413", "422", "503"}
    elif path.startswith("/ofrep/"):
        operation["requestBody"] = {
            "required": False,
            "content": {"application/json": {"schema": _OFREP_CONTEXT}},
        }
        operation["security"] = [{"ofrepToken": []}, {"ofrepApiKey": []}, {"apiToken": []}]
        codes |= {"400", "401", "403", "503"} | ({"404"} if "{key}" in path else {"304"})
    elif path.startswith("/api/"):
        writes = method in ("POST", "PUT", "DELETE", "PATCH")
        operation["security"] = [{"apiToken": []}]
        codes |= {"401", "403"}  # no or a wrong token; a role the principal lacks
        if writes:
            codes.add("503")
        if has_body:
            codes |= {"400", "415", "422"}
        if "{incident_id}" in path or "{key}" in path:
            codes |= {"404", "422"}
        if path.startswith("/api/v1/incidents/") and writes:
            codes |= {"403", "409"}
        if "/mitigations/" in path:
            codes.add("202")
        if path.endswith("/postmortem"):
            codes.add("409")
        if path.startswith("/api/v1/controls"):
            codes |= {"422", "503"} | ({"409"} if writes else set())
        if path.endswith("/reload"):
            codes.add("422")
        if path == "/api/v1/alerts":
            codes.add("422")  # a `since` that is no duration: a message, not a field list
    elif path == "/readyz":
        codes.add("503")
    elif path == "/metrics":  # Prometheus text exposition, not JSON
        operation["security"] = [{"metricsToken": []}, {"apiToken": []}]
        codes |= {"401", "403"}
        operation["responses"]["200"]["content"] = {"text/plain": {"schema": {"type": "string"}}}
    responses = operation.setdefault("responses", {})
    for code in sorted(codes):
        body = _OFREP_ERROR if path.startswith("/ofrep/") else _ERROR
        if code in ("304",):
            responses.setdefault(code, {"description": _MEANING[code]})
        elif code == "202":
            responses.setdefault(code, {"description": _MEANING[code]})
            responses[code].setdefault("content", responses["200"].get("content", {}))
        else:
            responses[code] = {
                "description": responses.get(code, {}).get("description", _MEANING[code]),
                "content": {"application/json": {"schema": body}},
            }


def _webhook_body(path: str, schemas: dict[str, Any]) -> dict[str, Any]:
    if path in _WEBHOOKS:
        schema = _schema_of(_WEBHOOKS[path], schemas)
    else:  # the generic form: a batch, or one alert on its own
        schema = {"anyOf": [_schema_of(GenericBatch, schemas), _schema_of(GenericAlert, schemas)]}
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def _schema_of(model: type[BaseModel], schemas: dict[str, Any]) -> dict[str, Any]:
    """``model``'s JSON schema (by alias, as senders write it) filed under components."""
    schema = model.model_json_schema(
        by_alias=True, ref_template="#/components/schemas/{model}", mode="validation"
    )
    for name, definition in schema.pop("$defs", {}).items():
        schemas.setdefault(name, definition)
    name = schema.get("title", model.__name__).replace("[", "_").replace("]", "")
    schemas.setdefault(name, schema)
    return {"$ref": f"#/components/schemas/{name}"}
