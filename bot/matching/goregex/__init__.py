r"""Go's regexp syntax, as Alertmanager 0.25 compiles matcher regexes, translated for Python.

Alertmanager compiles a regex matcher as ``regexp.Compile("^(?:" + value + ")$")`` (Go 1.19,
RE2 syntax). Python's ``re`` reads many such strings differently or not at all: ``(?i)`` in
mid-pattern is an error, ``\d \s \w \b`` are Unicode-aware (ASCII in Go), ``$`` also matches
before a final newline, ``a{,5}`` is a repetition (a literal in Go), ``\12`` is a back-reference
(octal in Go), and ``\pL``, ``[[:alpha:]]``, ``\Q…\E``, ``\z`` and ``(?U)`` do not exist; Python
accepts look-around and back-references, which Go refuses. So the value is parsed here with Go's
grammar — the same accept/reject decisions and the same error codes — into a small tree, and the
tree is written back as a Python pattern made only of constructs both engines read alike:
explicit code-point classes (case folding applied before negation, as Go does), ``\A``, ``\Z``,
scoped ``(?m:^)``. Matching a label value is then one ``fullmatch``.

Known differences, each of which rejects a regex rather than matching differently: Unicode
script classes (``\p{Greek}``) are refused; groups nested more than :data:`MAX_NESTING` deep are
refused (Go allows 1000, Python's ``re`` cannot compile that); Go's cap on compiled program size
(~3.3 million instructions) is not checked. Unicode data is Python's (14.0), not Go 1.19's (13.0).
Matching itself runs on RE2 (:mod:`bot.matching.linear`), linear in the label's length; this
parse gives Go's accept/reject decisions, error codes and columns, and the finite literals the
matcher index files runbooks under.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from bot.errors import MatcherSyntaxError
from bot.matching.goregex._python import finite_strings, to_python
from bot.matching.goregex._syntax import MAX_NESTING, PREFIX, SUFFIX, GoError, Parser
from bot.matching.goregex._tree import Assert, Concat, concat

__all__ = ["MAX_LITERALS", "MAX_NESTING", "Translation", "translate"]

MAX_LITERALS = 256  # largest finite language reported in Translation.literals


@dataclass(frozen=True, slots=True)
class Translation:
    """A Go regex as Python sees it.

    ``pattern`` is used with ``fullmatch`` and accepts exactly the strings Alertmanager's
    ``^(?:value)$`` accepts. ``literals`` is that whole set of strings when it is finite and
    small (``a|b|c``), which lets the matcher index look entries up by value; otherwise None.
    """

    pattern: str
    literals: frozenset[str] | None


@lru_cache(maxsize=4096)
def translate(value: str) -> Translation:
    """Parse ``value`` as Alertmanager does and return its Python equivalent.

    Raises :class:`MatcherSyntaxError` with Go's error code and a 1-based column in ``value``.
    Cached: a catalog repeats the same few regexes, and the runbook schema parses each twice.
    """
    whole = PREFIX + value + SUFFIX
    try:
        tree = Parser(whole).parse()
    except GoError as err:
        raise _syntax_error(value, err) from None
    if (
        isinstance(tree, Concat)
        and len(tree.items) >= 2
        and tree.items[0] is Assert.BEGIN_TEXT
        and tree.items[-1] is Assert.END_TEXT
    ):
        body = concat(list(tree.items[1:-1]))
        pattern, literals = to_python(body), finite_strings(body, MAX_LITERALS)
    else:
        # The value closed Alertmanager's group itself (``a)|(b``): keep Go's unanchored search.
        pattern, literals = rf"(?s:.)*?(?:{to_python(tree)})(?s:.)*", None
    return Translation(pattern, frozenset(literals) if literals is not None else None)


def _syntax_error(value: str, err: GoError) -> MatcherSyntaxError:
    start = err.pos - len(PREFIX)
    # Show only the part of Go's expression that the user wrote.
    expr = err.expr
    if err.expr and err.pos >= len(PREFIX):
        expr = err.expr[: max(0, len(value) - start)]
    column = min(max(start, 0), len(value)) + 1
    message = f"{err.code}: `{expr}`" if expr else err.code
    if err.hint:
        message = f"{message} ({err.hint})"
    return MatcherSyntaxError(message, value, column)
