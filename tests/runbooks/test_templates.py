"""Templates: checked without an alert at load time, rendered strictly over one alert."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.errors import TemplateError
from bot.runbooks.templates import (
    TEMPLATE_NAMES,
    is_template,
    render_params,
    render_template,
    template_problems,
)

CONTEXT: dict[str, object] = {
    "labels": {"alertname": "ToolCallFailureRate", "service": "support-assistant"},
    "annotations": {"summary": "<b>tools & more</b>"},
    "status": "firing",
    "starts_at": "2024-01-01T00:00:00+00:00",
    "ends_at": None,
    "fingerprint": "abc",
    "generator_url": None,
}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("{{ labels.tool }}", True),
        ("{% if true %}x{% endif %}", True),
        ("{# comment #}", True),
        ("plain text", False),
        ("json {like: this}", False),
        ("", False),
    ],
)
def test_is_template(value: str, expected: bool) -> None:
    assert is_template(value) is expected


@pytest.mark.parametrize(
    ("source", "problems"),
    [
        ("{{ labels.tool }} on {{ annotations.summary }} since {{ starts_at }}", []),
        ("{% for name, value in labels.items() %}{{ name }}={{ value }}{% endfor %}", []),
        ("{% set who = labels.service %}{{ who | upper }}", []),
        ("{{ labels.tool }", ["template syntax error: unexpected '}'"]),
        ("{{ labels.tool | uper }}", ["unknown filter 'uper'; did you mean 'upper'?"]),
        (
            "{% if labels.x %}{{ labels.x | slugify }}{% endif %}",
            ["unknown filter 'slugify'; see the Jinja2 built-in filters"],
        ),
        ("{{ 'x' if labels.a is nmber }}", ["unknown test 'nmber'; did you mean 'number'?"]),
        (
            "{{ label.tool }}",
            [
                "unknown variable 'label' (did you mean 'labels'?); templates can use "
                "annotations, ends_at, fingerprint, generator_url, labels, starts_at, status"
            ],
        ),
        (
            '{% include "other.j2" %}',
            ["templates cannot extend, include or import other templates; write the text inline"],
        ),
    ],
)
def test_template_problems(source: str, problems: list[str]) -> None:
    assert template_problems(source) == problems


def test_every_documented_name_is_allowed() -> None:
    source = " ".join(f"{{{{ {name} }}}}" for name in sorted(TEMPLATE_NAMES))

    assert template_problems(source) == []


def test_render_uses_labels_and_annotations_without_escaping() -> None:
    rendered = render_template("{{ labels.service }}: {{ annotations.summary }}", CONTEXT)

    assert rendered == "support-assistant: <b>tools & more</b>"


def test_missing_label_names_the_label_and_the_fix() -> None:
    with pytest.raises(TemplateError) as caught:
        render_template("{{ labels.tool }} failing", CONTEXT)

    assert str(caught.value) == (
        "label 'tool' is not set on this alert (its labels: alertname, service); set it in "
        "the alert rule, or give a fallback: {{ labels.tool | default('unknown') }}"
    )


def test_missing_annotation_by_subscript_names_the_annotation() -> None:
    with pytest.raises(TemplateError, match=r"^annotation 'runbook' is not set on this alert"):
        render_template("{{ annotations['runbook'] }}", CONTEXT)


def test_undefined_top_level_name_lists_what_exists() -> None:
    with pytest.raises(TemplateError) as caught:
        render_template("{{ alert }}", CONTEXT)

    assert str(caught.value) == (
        "'alert' is not defined; templates can use annotations, ends_at, fingerprint, "
        "generator_url, labels, starts_at, status"
    )


def test_default_filter_is_the_fallback_for_a_missing_label() -> None:
    assert render_template("{{ labels.tool | default('any') }}", CONTEXT) == "any"


def test_sandbox_refuses_python_internals() -> None:
    with pytest.raises(TemplateError):
        render_template("{{ ''.__class__.__mro__[1].__subclasses__() }}", CONTEXT)


def test_syntax_error_at_render_is_a_template_error() -> None:
    with pytest.raises(TemplateError, match="invalid template"):
        render_template("{{ oops", CONTEXT)


def test_render_params_renders_nested_strings_and_keeps_other_values() -> None:
    params = {
        "service": "{{ labels.service }}",
        "to": ["@oncall", "#{{ labels.service }}-alerts"],
        "json": {"count": 3, "enabled": False, "note": "{plain}"},
        "nothing": None,
    }

    assert render_params(params, CONTEXT) == {
        "service": "support-assistant",
        "to": ["@oncall", "#support-assistant-alerts"],
        "json": {"count": 3, "enabled": False, "note": "{plain}"},
        "nothing": None,
    }


def test_render_params_reports_the_missing_label() -> None:
    with pytest.raises(TemplateError, match="label 'tool' is not set"):
        render_params({"outer": [{"tool": "{{ labels.tool }}"}]}, CONTEXT)


@given(st.text().filter(lambda text: not is_template(text) and "\r" not in text))
def test_plain_text_renders_to_itself(text: str) -> None:
    # Jinja turns \r and \r\n into \n; YAML has already done so for every runbook string.
    assert render_template(text, CONTEXT) == text
    assert render_params(text, CONTEXT) == text


@given(st.dictionaries(st.from_regex(r"[a-z_]{1,10}", fullmatch=True), st.text(max_size=20)))
def test_each_label_renders_to_its_value(labels: dict[str, str]) -> None:
    for name, value in labels.items():
        rendered = render_template(f"{{{{ labels['{name}'] }}}}", {"labels": labels})
        assert rendered == value
