"""The OpenAPI document says what the server does (issue 14, item 6), checked offline.

``test_schemathesis.py`` holds a live server to the document; this checks the document's own
completeness: webhook bodies, security schemes, the statuses each operation family returns.
"""

from __future__ import annotations

from typing import Any

import pytest

from bot.app import build_services, create_app
from bot.config import BallastConfig
from bot.settings import Settings


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('openapi') / 'ballast.db'}"
    services = build_services(Settings(database_url=url), BallastConfig(), environ={})
    doc: dict[str, Any] = create_app(services).openapi()
    return doc


WEBHOOKS = ("alertmanager", "grafana", "generic", "pagerduty", "datadog", "opsgenie")


def test_the_webhooks_document_their_bodies(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    for path in (f"/webhooks/{source}" for source in WEBHOOKS):
        for method, operation in document["paths"][path].items():
            body = operation["requestBody"]["content"]["application/json"]["schema"]
            refs = [body.get("$ref")] + [item["$ref"] for item in body.get("anyOf", [])]
            for ref in filter(None, refs):
                assert ref.removeprefix("#/components/schemas/") in schemas, (path, ref)
            assert {"400", "401", "413", "422", "503"} <= operation["responses"].keys(), method
    alert = schemas["WireAlert"]
    assert {"status", "labels", "startsAt"} <= set(alert["required"])
    assert "put" in document["paths"]["/webhooks/grafana"]
    assert {"event_type"} <= set(schemas["Event"]["required"])
    assert "alert_transition" in schemas["DatadogWebhook"]["properties"]
    assert {"action"} <= set(schemas["OpsgenieWebhook"]["required"])


def test_security_schemes_and_who_needs_them(document: dict[str, Any]) -> None:
    assert set(document["components"]["securitySchemes"]) == {
        "webhookToken",
        "apiToken",
        "ofrepToken",
        "metricsToken",
        "webhookBasic",
        "ofrepApiKey",
        "gitHubSignature",
        "giteaSignature",
        "forgejoSignature",
        "gitlabToken",
    }
    # Closed by default: no operation but health lists the empty (anonymous) requirement.
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if path in ("/healthz", "/readyz"):
                continue
            assert operation.get("security"), (path, method)
            assert {} not in operation["security"], (path, method)
    metrics = document["paths"]["/metrics"]["get"]
    assert "text/plain" in metrics["responses"]["200"]["content"]
    assert "401" in metrics["responses"]
    ack = document["paths"]["/api/v1/incidents/{incident_id}/acknowledge"]["post"]
    assert ack["security"] == [{"apiToken": []}]
    assert {"401", "403", "404", "409", "415", "422"} <= ack["responses"].keys()
    put = document["paths"]["/api/v1/controls/{key}"]["put"]
    assert {"401", "409", "422", "503"} <= put["responses"].keys()
    git = document["paths"]["/webhooks/git"]["post"]
    assert {"gitlabToken": []} in git["security"]
    assert {"webhookToken": []} not in git["security"], "only the signature lets a push in"
    assert {"202", "401", "404"} <= git["responses"].keys()


def test_error_bodies_admit_both_shapes_of_422(document: dict[str, Any]) -> None:
    error = document["components"]["schemas"]["ErrorBody"]
    shapes = error["properties"]["detail"]["anyOf"]
    assert {"string", "array"} == {shape["type"] for shape in shapes}


def test_operation_ids_are_unique(document: dict[str, Any]) -> None:
    ids = [op["operationId"] for ops in document["paths"].values() for op in ops.values()]
    assert len(ids) == len(set(ids))
