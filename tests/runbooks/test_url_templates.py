"""Trace link templates: placeholders checked at load, every value percent-encoded."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.config import BallastConfig
from bot.errors import TemplateError
from bot.runbooks.url_templates import parse_url_template

JAEGER = "https://jaeger.example/search?service={service}&tags={labels.tool}&start={start_us}"


def test_values_are_percent_encoded() -> None:
    url = parse_url_template(JAEGER).render(
        {"service": "a b/c", "labels.tool": "x&evil=1#frag", "start_us": "1"}
    )
    assert url == (
        "https://jaeger.example/search?service=a%20b%2Fc&tags=x%26evil%3D1%23frag&start=1"
    )


def test_literal_braces_and_json_levels() -> None:
    template = parse_url_template('https://h/?q={{"s":"{service|json}","q":"{service|json|json}"}}')
    url = template.render({"service": 'a"b\\'})
    query = urlsplit(url).query.removeprefix("q=")
    document = json.loads(unquote(query))
    assert document["s"] == 'a"b\\'
    assert json.loads(f'"{document["q"]}"') == 'a"b\\'  # a string inside the string


def test_a_missing_label_is_named() -> None:
    with pytest.raises(TemplateError) as caught:
        parse_url_template(JAEGER).render({"service": "s", "start_us": "1"})
    assert str(caught.value) == "the incident has no label 'tool' for {labels.tool}"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("https://h/{servce}", "unknown placeholder {servce}"),
        ("https://h/{service|upper}", "unknown placeholder {service|upper}"),
        ("https://h/{", "a lone '{' at character 11"),
        ("https://h/}", "a lone '}' at character 11"),
        ("javascript:alert(1)//{service}", "expected an https:// or http:// URL"),
    ],
)
def test_bad_templates_are_refused_at_load(url: str, message: str) -> None:
    with pytest.raises(ValueError, match="traces") as caught:
        BallastConfig.model_validate({"traces": [{"title": "T", "url": url}]})
    assert message in str(caught.value)


labels = st.text(st.characters(exclude_categories=("Cs",)))  # intake replaced lone surrogates


@given(labels, labels)
def test_hostile_labels_never_change_the_url_structure(tool: str, service: str) -> None:
    """Whatever a label holds, the link keeps its host, path and parameters, and each
    parameter reads back as exactly the value."""
    url = parse_url_template(JAEGER).render(
        {"service": service, "labels.tool": tool, "start_us": "1"}
    )
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path, parts.fragment) == (
        "https",
        "jaeger.example",
        "/search",
        "",
    )
    params = parse_qs(parts.query, keep_blank_values=True, strict_parsing=True)
    assert params == {"service": [service], "tags": [tool], "start": ["1"]}
