"""PromQL templates of ``verify:`` checks: label values go in as PromQL string literals only.

Labels are hostile input. A verify query may use ``{{ … }}`` only inside a double-quoted PromQL
string (``tool="{{ labels.tool }}"``), which :func:`promql_template_problems` checks when the
runbook loads, and every rendered value is escaped for that literal (backslash, the quote,
control characters), so ``x"} or vector(1) #`` stays one label value and can never end the
string, add a selector or comment the rest out. ``{% … %}`` blocks are refused: a loop or a
condition could place a value outside the quotes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot.runbooks.templates import render_template, template_problems

_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def escape_promql_string(value: str) -> str:
    """``value`` as the inside of a double-quoted PromQL (Go) string literal."""
    out = []
    for char in value:
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\x{ord(char):02x}")
        else:
            out.append(char)
    return "".join(out)


def _finalize(value: Any) -> Any:
    return escape_promql_string("" if value is None else str(value))


def render_promql(source: str, context: Mapping[str, object]) -> str:
    """Render a verify query over an alert; every ``{{ … }}`` value is escaped."""
    return render_template(source, context, _finalize)


def promql_template_problems(source: str) -> list[str]:
    """Template problems, plus any ``{{ … }}`` outside a double-quoted string literal."""
    problems = template_problems(source)
    if "{%" in source:
        problems.append("verify queries cannot use {% … %} blocks; use {{ … }} inside quotes")
    problems.extend(_outside_quotes(source))
    return problems


def _outside_quotes(source: str) -> list[str]:
    """Walk the query as PromQL's lexer would, tracking string literals and comments."""
    problems: list[str] = []
    quote: str | None = None
    i = 0
    while i < len(source):
        char = source[i]
        if source.startswith("{{", i):
            if quote != '"':
                problems.append(
                    f"{{{{ … }}}} at offset {i} is not inside a double-quoted string: put label "
                    'values inside one, e.g. tool="{{ labels.tool }}", where they are escaped'
                )
            end = source.find("}}", i + 2)
            i = len(source) if end < 0 else end + 2
            continue
        if quote is None:
            if char in "\"'`":
                quote = char
            elif char == "#":
                end = source.find("\n", i)
                end = len(source) if end < 0 else end
                if "{{" in source[i:end]:
                    problems.append(
                        f"{{{{ … }}}} in the comment at offset {i}: label values belong inside a "
                        "double-quoted string"
                    )
                i = end
                continue
        elif char == "\\" and quote != "`":
            i += 2
            continue
        elif char == quote:
            quote = None
        i += 1
    return problems
