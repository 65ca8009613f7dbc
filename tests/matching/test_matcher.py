"""Matchers mean what they mean in Alertmanager 0.25.

The tables come from three places: Alertmanager's own parse and matcher tests (restated as
data), behaviour observed with Alertmanager 0.25's ``amtool`` where Go and Python's ``re`` part
ways, and Ballast's error columns. The last section runs the real ``amtool`` over a generated
corpus and compares every decision.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from bot.errors import MatcherSyntaxError
from bot.matching.matcher import (
    Matcher,
    MatchOp,
    parse_matcher,
    parse_matchers,
)

EQ, NE, RE, NRE = MatchOp.EQUAL, MatchOp.NOT_EQUAL, MatchOp.REGEX, MatchOp.NOT_REGEX


def triples(matchers: Sequence[Matcher]) -> list[tuple[str, MatchOp, str]]:
    return [(m.name, m.op, m.value) for m in matchers]


# -- Alertmanager's pkg/labels/parse_test.go (TestMatchers), as data ----------------------

PARSE_LIST_OK = [
    ('{foo="bar"}', [("foo", EQ, "bar")]),
    ('{foo=~"bar.*"}', [("foo", RE, "bar.*")]),
    ('{foo!="bar"}', [("foo", NE, "bar")]),
    ('{foo!~"bar.*"}', [("foo", NRE, "bar.*")]),
    ('{foo="bar", baz!="quux"}', [("foo", EQ, "bar"), ("baz", NE, "quux")]),
    ('{foo="bar", baz!~"quux.*"}', [("foo", EQ, "bar"), ("baz", NRE, "quux.*")]),
    (
        '{foo="bar",baz!~".*quux", derp="wat"}',
        [("foo", EQ, "bar"), ("baz", NRE, ".*quux"), ("derp", EQ, "wat")],
    ),
    (
        '{foo="bar", baz!="quux", derp="wat"}',
        [("foo", EQ, "bar"), ("baz", NE, "quux"), ("derp", EQ, "wat")],
    ),
    (
        '{foo="bar", baz!~".*quux.*", derp="wat"}',
        [("foo", EQ, "bar"), ("baz", NRE, ".*quux.*"), ("derp", EQ, "wat")],
    ),
    ('{foo="bar", instance=~"some-api.*"}', [("foo", EQ, "bar"), ("instance", RE, "some-api.*")]),
    ('{foo=""}', [("foo", EQ, "")]),
    ('{foo="bar,quux", job="job1"}', [("foo", EQ, "bar,quux"), ("job", EQ, "job1")]),
    ('{foo = "bar", dings != "bums", }', [("foo", EQ, "bar"), ("dings", NE, "bums")]),
    ("foo=bar,dings!=bums", [("foo", EQ, "bar"), ("dings", NE, "bums")]),
    (
        '{quote="She said: \\"Hi, ladies! That\'s gender-neutral…\\""}',
        [("quote", EQ, 'She said: "Hi, ladies! That\'s gender-neutral…"')],
    ),
    ('statuscode=~"5.."', [("statuscode", RE, "5..")]),
    ("tricky=~~~", [("tricky", RE, "~~")]),
    ('trickier==\\\\=\\=\\"', [("trickier", EQ, '=\\=\\="')]),
    (
        'contains_quote != "\\"" , contains_comma !~ "foo,bar" , ',
        [("contains_quote", NE, '"'), ("contains_comma", NRE, "foo,bar")],
    ),
    # Later Alertmanager versions reject this; 0.25 (what CI runs) accepts an empty value.
    ("job=", [("job", EQ, "")]),
]

PARSE_LIST_BAD = [
    ('job="value', "missing its closing double quote"),
    ('job=value"', "unescaped double quote"),
    ('trickier==\\\\=\\=\\""', "unescaped double quote"),
    ('contains_unescaped_quote = foo"bar', "unescaped double quote"),
    ('{invalid-name = "valid label"}', "expected =, !=, =~ or !~ after label name 'invalid'"),
    ('{foo=~"invalid[regexp"}', "missing closing ]: `[regexp`"),
    # Strings that were escaped once too often.
    ('"{foo=\\"bar"}', "a label name must start with a letter"),
    ('"foo=\\"bar"', "a label name must start with a letter"),
    ('"foo=\\"bar\\""', "a label name must start with a letter"),
    ('"foo=\\"bar\\"', "a label name must start with a letter"),
    ('"{foo=\\"bar\\"}"', "a label name must start with a letter"),
    ('"foo="bar""', "a label name must start with a letter"),
]


@pytest.mark.parametrize(("text", "expected"), PARSE_LIST_OK)
def test_parse_matchers_accepts_what_alertmanager_accepts(
    text: str, expected: list[tuple[str, MatchOp, str]]
) -> None:
    assert triples(parse_matchers(text)) == expected


@pytest.mark.parametrize(("text", "message"), PARSE_LIST_BAD)
def test_parse_matchers_rejects_what_alertmanager_rejects(text: str, message: str) -> None:
    with pytest.raises(MatcherSyntaxError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_matchers(text)


def test_parse_matchers_splits_unquoted_commas_that_parse_matcher_keeps() -> None:
    assert parse_matcher("foo=a,b").value == "a,b"
    with pytest.raises(MatcherSyntaxError, match="expected =, !=, =~ or !~ after label name 'b'"):
        parse_matchers("foo=a,b")


def test_parse_matchers_reports_the_column_in_the_whole_list() -> None:
    with pytest.raises(MatcherSyntaxError) as caught:
        parse_matchers('{a="1", b=~"x(", c="3"}')
    assert caught.value.column == 14  # the unclosed "(" of the second matcher


# -- Alertmanager's pkg/labels/matcher_test.go (TestMatcher, TestMatcherString) ------------

MATCHES = [
    (EQ, "bar", "bar", True),
    (EQ, "bar", "foo-bar", False),
    (NE, "bar", "bar", False),
    (NE, "bar", "foo-bar", True),
    (RE, "bar", "bar", True),
    (RE, "bar", "foo-bar", False),
    (RE, ".*bar", "foo-bar", True),
    (NRE, "bar", "bar", False),
    (NRE, "bar", "foo-bar", True),
    (NRE, ".*bar", "foo-bar", False),
    (RE, "foo.bar", "foo-bar", True),
    (RE, "foo\\.bar", "foo-bar", False),
    (RE, "foo\\.bar", "foo.bar", True),
    (EQ, "foo\nbar", "foo\nbar", True),
    (RE, "foo.bar", "foo\nbar", False),
    (RE, "(?s)foo.bar", "foo\nbar", True),
    (EQ, '~!="', '~!="', True),
]


@pytest.mark.parametrize(("op", "value", "label", "expected"), MATCHES)
def test_matches_like_alertmanager(op: MatchOp, value: str, label: str, expected: bool) -> None:
    assert Matcher.of("foo", op, value).matches({"foo": label}) is expected


STRINGS = [
    (EQ, "bar", 'foo="bar"'),
    (NE, "bar", 'foo!="bar"'),
    (RE, "bar", 'foo=~"bar"'),
    (NRE, "bar", 'foo!~"bar"'),
    (EQ, "back\\slash", 'foo="back\\\\slash"'),
    (EQ, 'double"quote', 'foo="double\\"quote"'),
    (EQ, "new\nline", 'foo="new\\nline"'),
    (EQ, "tab\tstop", 'foo="tab\tstop"'),
    (EQ, "🙂", 'foo="🙂"'),
]


@pytest.mark.parametrize(("op", "value", "expected"), STRINGS)
def test_str_is_alertmanagers_string(op: MatchOp, value: str, expected: str) -> None:
    matcher = Matcher.of("foo", op, value)
    assert str(matcher) == expected
    assert parse_matcher(expected) == matcher


# -- the empty-value rules -------------------------------------------------------------------

EMPTY_RULES = [
    ('foo=""', {}, True),
    ('foo=""', {"foo": ""}, True),
    ('foo=""', {"foo": "x"}, False),
    ('foo!=""', {}, False),
    ('foo!="x"', {}, True),
    ('foo=~".*"', {}, True),
    ('foo=~".+"', {}, False),
    ('foo=~"x|"', {}, True),
    ('foo!~"x"', {}, True),
    ('foo!~".*"', {"foo": "anything"}, False),
    ("foo=", {}, True),
]


@pytest.mark.parametrize(("text", "labels", "expected"), EMPTY_RULES)
def test_a_missing_label_is_the_empty_string(
    text: str, labels: dict[str, str], expected: bool
) -> None:
    matcher = parse_matcher(text)
    assert matcher.matches(labels) is expected
    if not labels:
        assert matcher.matches_empty is expected


# -- parsing one matcher: quotes, escapes, white space ------------------------------------

PARSE_ONE = [
    ('alertname="GroundednessLow"', ("alertname", EQ, "GroundednessLow")),
    ("  service =~ support-.*  ", ("service", RE, "support-.*")),
    ('le:bucket!="0.5"', ("le:bucket", NE, "0.5")),
    ('a="x\\ny"', ("a", EQ, "x\ny")),  # \n is a line feed
    ('a="x\\ty"', ("a", EQ, "x\\ty")),  # any other escape keeps its backslash
    ('a="x\\\\d"', ("a", EQ, "x\\d")),
    ("a=x\\", ("a", EQ, "x\\")),  # a trailing backslash is literal
    ('a=" padded "', ("a", EQ, " padded ")),
    ('a=""', ("a", EQ, "")),
    ("a=\vx\v", ("a", EQ, "\vx\v")),  # Go's \s has no vertical tab ...
    ("a=\xa0x\xa0", ("a", EQ, "\xa0x\xa0")),  # ... and no no-break space
    ("a=\t x \r\n", ("a", EQ, "x")),
    ('a=multi\nline"', None),
    ('a="multi\nline"', ("a", EQ, "multi\nline")),  # literal line feeds are tolerated
    ("a=~=~", ("a", RE, "=~")),
]


@pytest.mark.parametrize(("text", "expected"), PARSE_ONE)
def test_parse_matcher(text: str, expected: tuple[str, MatchOp, str] | None) -> None:
    if expected is None:
        with pytest.raises(MatcherSyntaxError, match="unescaped double quote"):
            parse_matcher(text)
    else:
        assert triples([parse_matcher(text)]) == [expected]


PARSE_ERRORS = [
    ("", 1, "empty matcher"),
    ("   ", 4, "empty matcher"),
    ('9lives="x"', 1, "a label name must start with a letter, _ or :, not '9'"),
    ('alert-name="x"', 6, "after label name 'alert', found '-'"),
    ("alertname", 10, "found the end"),
    ('alertname == "x"', 14, "unescaped double quote"),  # value is '= "x"'
    ('a="x"y"', 5, "unescaped double quote"),
    ('a="unterminated', 16, "missing its closing double quote"),
    ('a="', 4, "missing its closing double quote"),
    ('a="x\ud800"', 5, "not valid UTF-8"),
    ('a=~"(x"', 5, "missing closing ): `(`"),
    ('a=~"x)"', 6, "unexpected )"),
    ('a=~"[x"', 5, "missing closing ]: `[x`"),
    ('a=~"x**"', 6, "invalid nested repetition operator: `**`"),
    ('a=~"x{2}{3}"', 6, "invalid nested repetition operator: `{2}{3}`"),
    ('a=~"*x"', 5, "missing argument to repetition operator: `*`"),
    ('a=~"x|+"', 7, "missing argument to repetition operator: `+`"),
    ('a=~"x{1001}"', 6, "invalid repeat count: `{1001}`"),
    ('a=~"(x{100}){100}"', 13, "invalid repeat count: `{100}`"),
    ('a=~"x{3,2}"', 6, "invalid repeat count: `{3,2}`"),
    ('a=~"(?=x)"', 5, "invalid or unsupported Perl syntax: `(?=`"),
    ('a=~"(?<n>x)"', 5, "invalid or unsupported Perl syntax: `(?<`"),
    ('a=~"(?x)y"', 5, "invalid or unsupported Perl syntax: `(?x`"),
    ('a=~"(?i-)y"', 5, "invalid or unsupported Perl syntax: `(?i-)`"),
    ('a=~"(?P<>x)"', 5, "invalid named capture: `(?P<>`"),
    ('a=~"(?P<é>x)"', 5, "invalid named capture"),
    ('a=~"(x)\\\\1"', 8, "invalid escape sequence: `\\1`"),
    ('a=~"\\\\Z"', 5, "invalid escape sequence: `\\Z`"),
    ('a=~"\\\\C"', 5, "invalid escape sequence: `\\C`"),
    ('a=~"\\\\é"', 5, "invalid escape sequence: `\\é`"),
    ('a=~"\\\\x{110000}"', 5, "invalid escape sequence"),
    ('a=~"[b-a]"', 6, "invalid character class range: `b-a`"),
    ('a=~"[[:foo:]]"', 6, "invalid character class range: `[:foo:]`"),
    ('a=~"[\\\\b]"', 6, "invalid escape sequence: `\\b`"),
    ('a=~"\\\\p{Cn}"', 5, "invalid character class range: `\\p{Cn}`"),
    ('a=~"\\\\p{Greek}"', 5, "not scripts such as Greek"),
    ('a=~"x\\\\"', 8, "missing closing )"),  # at the end of the value
    ('a=~"\\\\Qx"', 9, "missing closing )"),
    ('a=~"' + "(" * 51 + "x" + ")" * 51 + '"', 55, "expression nests too deeply"),
]


@pytest.mark.parametrize(("text", "column", "message"), PARSE_ERRORS)
def test_parse_errors_name_the_problem_and_its_column(text: str, column: int, message: str) -> None:
    with pytest.raises(MatcherSyntaxError) as caught:
        parse_matcher(text)
    assert message in str(caught.value)
    assert caught.value.column == column
    assert caught.value.text == text


def test_a_bad_regex_error_quotes_the_value_and_the_matcher() -> None:
    with pytest.raises(MatcherSyntaxError) as caught:
        parse_matcher('service=~"support-(eu|us"')
    assert str(caught.value) == (
        "invalid regular expression 'support-(eu|us' in matcher 'service=~\"support-(eu|us\"': "
        "missing closing ): `(`"
    )
    assert caught.value.column == 19


# -- Go regex semantics where Python's re differs (each row checked with amtool 0.25) ------

REGEX_SEMANTICS = [
    ("(?i)critical", "CriTical", True),  # flags in mid-pattern (an error for Python's re)
    ("warn|(?i)crit", "CRIT", True),
    ("(?:(?i)a|b)", "B", True),  # a flag lasts until its group ends, across |
    ("(?i:a)b", "AB", False),
    ("(?i)k", "\u212a", True),  # Kelvin sign folds to k
    ("(?i)[^k]", "\u212a", False),  # folding happens before negation
    ("(?i)[\\W]", "\u017f", False),  # long s folds into \w's s
    ("(?i)\u0131", "I", False),  # dotless i folds with nothing
    ("(?i)ß", "ẞ", True),
    ("(?i)ß", "ss", False),
    ("\\d", "\u0660", False),  # \d, \s, \w and \b are ASCII
    ("\\s", "\v", False),
    ("\\s", "\xa0", False),
    ("\\w", "é", False),
    ("\\bé", "é", False),
    ("\\B", "", True),  # Python's \B never matches an empty string
    ("x$", "x\n", False),  # $ is the end of the text, never before a final newline
    ("(?m)x$\\ny", "x\ny", True),
    ("x$\\ny", "x\ny", False),
    ("(?m)^y", "y", True),
    ("(?m)x\\n^y", "x\ny", True),
    ("x\\n^y", "x\ny", False),
    (".", "\n", False),
    ("(?s).", "\n", True),
    ("[^a]", "\n", True),
    ("a{,5}", "a{,5}", True),  # not a repetition in Go
    ("a{,5}", "aaa", False),
    ("a{01}", "a{01}", True),
    ("\\12", "\n", True),  # octal, not a back-reference
    ("\\0", "\0", True),
    ("\\x{e9}", "é", True),
    ("\\pL+", "Ünïcödé", True),
    ("\\p{Lu}", "a", False),
    ("(?i)\\p{Lu}", "a", True),
    ("\\pC", "\u00ad", True),
    ("\\pC", "\u0378", False),  # Go's C has no unassigned code points
    ("\\PL", "1", True),
    ("[[:alpha:]]+", "abcXYZ", True),
    ("[[:^digit:]]", "5", False),
    ("[[:alpha]", ":", True),  # not a class name: a plain set
    ("[\\d-z]", "-", True),
    ("[]a]", "]", True),
    ("\\Qa.b\\E+", "a.bbb", True),
    ("\\Qa.b\\E", "axb", False),
    ("\\z", "", True),
    ("(?U)a+", "aaa", True),
    ("a(?i)*", "aaa", True),  # a flag group is not an operand: * repeats the a
    ("a(?i)*", "A", False),
    ("^*x", "x", True),
    ("", "", True),
    ("|a", "", True),
    ("a)|(b", "axx", True),  # the value closed Alertmanager's group: ^(?:a)|(b)$
    ("a)|(b", "xxb", True),
    ("a)|(b", "x", False),
    ("a)(b", "ab", True),
    ("(?P<name>x)(?P<name>y)", "xy", True),  # Go allows a name twice
]


@pytest.mark.parametrize(("pattern", "value", "expected"), REGEX_SEMANTICS)
def test_regexes_match_as_go_does(pattern: str, value: str, expected: bool) -> None:
    assert Matcher.of("x", RE, value=pattern).matches({"x": value}) is expected
    assert Matcher.of("x", NRE, value=pattern).matches({"x": value}) is not expected


INDEXABLE = [
    ('a="x"', {"x"}),
    ('a=""', None),
    ('a!="x"', None),
    ('a!~"x|y"', None),
    ('a=~"x|y|z"', {"x", "y", "z"}),
    ('a=~"support-(eu|us)"', {"support-eu", "support-us"}),
    ('a=~"v[1-3]"', {"v1", "v2", "v3"}),
    ('a=~"(?i)ok"', {"ok", "oK", "o\u212a", "Ok", "OK", "O\u212a"}),  # K folds with Kelvin
    ('a=~"x|"', None),  # accepts a missing label
    ('a=~"x?"', None),
    ('a=~"x.*"', None),
    ('a=~"a)|(b"', None),
    ('a=~"\\\\bx"', None),
]


@pytest.mark.parametrize(("text", "expected"), INDEXABLE)
def test_indexable_values_are_exactly_the_accepted_values(
    text: str, expected: set[str] | None
) -> None:
    matcher = parse_matcher(text)
    values = matcher.indexable_values
    assert (set(values) if values is not None else None) == expected
    for value in values or ():
        assert matcher.matches({"a": value})


def test_matchers_compare_by_text_not_by_compiled_pattern() -> None:
    assert parse_matcher('a=~"x|y"') == parse_matcher("a =~ x|y")
    assert parse_matcher('a=~"x|y"') != parse_matcher('a=~"y|x"')
    assert len({parse_matcher('a="1"'), Matcher.of("a", "=", "1")}) == 1


# -- differential test against Alertmanager 0.25's amtool ----------------------------------

_ATOMS = [
    *"abAkKsS",
    "\u212a",
    "\u017f",
    "é",
    "ß",
    *"-. x1",
    "\\.",
    "\\d",
    "\\D",
    "\\s",
    "\\S",
    "\\w",
    "\\W",
    "\\b",
    "\\B",
    "^",
    "$",
    "\\A",
    "\\z",
    "\\Z",
    "(",
    ")",
    "(?:",
    "(?i)",
    "(?i:",
    "(?s)",
    "(?m)",
    "(?U)",
    "(?-i)",
    "(?P<n>",
    "|",
    "*",
    "+",
    "?",
    "*?",
    "??",
    "{2}",
    "{1,3}",
    "{,2}",
    "{0}",
    "[",
    "]",
    "[^",
    "[:alpha:]",
    "[:^digit:]",
    "[:foo:]",
    "\\pL",
    "\\p{Lu}",
    "\\PL",
    "\\n",
    "\\x41",
    "\\x{e9}",
    "\\101",
    "\\1",
    "\\Q",
    "\\E",
    "\\",
    "\\-",
    "\\]",
    "{",
    "}",
    "\\t",
    "\\v",
    "\xa0",
]
_VALUES = [
    *["", "a", "b", "A", "ab", "aa", "aaa", "k", "K", "\u212a", "s", "S", "\u017f", "é", "ß"],
    *["-", ".", "1", "12", "a1", "x", "a b", " ", "\t", "\v", "\xa0", "\n", "a\nb", "b\n"],
    *["a.b", "[", "]", "{", "}", "{2}", "a{,2}", "AB", "5", "\u0660", "_", "aé", "\\", '"'],
]
_LABEL_TEXTS = [
    *["x", "y", "=", "!=", "=~", '"', '\\"', "\\\\", "\\n", "\\", "a", " ", "\t", "\v"],
    *["\xa0", "\n", ",", "{", "}", "~", "é", ".*", "|", ":", "-", "\r", "\f"],
]


def _amtool() -> str:
    """The amtool of Alertmanager 0.25, or skip (fail under BALLAST_TEST_REQUIRE_ALL)."""
    path = shutil.which("amtool")
    required = os.environ.get("BALLAST_TEST_REQUIRE_ALL", "") not in ("", "0")
    problem = None
    if path is None:
        problem = "amtool (Debian's prometheus-alertmanager 0.25) is not installed"
    else:
        version = subprocess.run(
            [path, "--version"], capture_output=True, text=True, check=False, timeout=30
        )
        if "version 0.25." not in version.stdout + version.stderr:
            problem = f"amtool is not Alertmanager 0.25: {version.stdout.strip()[:80]}"
    if problem is None:
        assert path is not None
        return path
    if required:
        pytest.fail(f"{problem}, and BALLAST_TEST_REQUIRE_ALL is set")
    pytest.skip(problem)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _config(matchers: Sequence[str]) -> str:
    """A route per matcher, each with ``continue``, so one test lists every route that matched."""
    lines = ["route:", "  receiver: none", "  routes:"]
    for number, matcher in enumerate(matchers):
        quoted = json.dumps(matcher)  # a JSON string is a YAML double-quoted scalar
        lines += [
            f"    - receiver: r{number}",
            "      continue: true",
            f"      matchers: [{quoted}]",
        ]
    lines += ["receivers:", "  - name: none", *(f"  - name: r{n}" for n in range(len(matchers)))]
    return "\n".join(lines) + "\n"


class _Amtool:
    def __init__(self, path: str, folder: Path) -> None:
        self.path = path
        self.folder = folder

    def write_config(self, matchers: Sequence[str]) -> str:
        with tempfile.NamedTemporaryFile(
            "w", suffix=".yml", dir=self.folder, delete=False, encoding="utf-8"
        ) as target:
            target.write(_config(matchers))
        return target.name

    def accepts(self, matchers: str) -> bool:
        """``amtool check-config`` on a route with these matchers (Go's ParseMatchers)."""
        run = subprocess.run(
            [self.path, "check-config", self.write_config([matchers])],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        return run.returncode == 0

    def routes(self, config: str, labels: Sequence[str]) -> set[int]:
        """Indices of the routes reached by an alert with ``labels`` (each read by ParseMatcher)."""
        run = subprocess.run(
            [self.path, "config", "routes", "test", f"--config.file={config}", *labels],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        return {int(r[1:]) for r in run.stdout.strip().split(",") if r != "none"}


@pytest.fixture(scope="module")
def amtool() -> Iterator[_Amtool]:
    path = _amtool()
    with tempfile.TemporaryDirectory() as folder:
        yield _Amtool(path, Path(folder))


def _corpus(seed: int, size: int) -> list[str]:
    rng = random.Random(seed)
    found = ("".join(rng.choice(_ATOMS) for _ in range(rng.randint(0, 7))) for _ in range(size))
    return list(dict.fromkeys(found))


def _ours_accepts(text: str) -> bool:
    try:
        parse_matchers(text)
    except MatcherSyntaxError:
        return False
    return True


@pytest.mark.alertmanager
def test_regexes_are_accepted_and_matched_as_amtool_does(amtool: _Amtool) -> None:
    patterns = _corpus(seed=25, size=400)
    texts = [f'x=~"{_escape(p)}"' for p in patterns]
    with ThreadPoolExecutor(max_workers=4) as pool:
        go_accepts = list(pool.map(amtool.accepts, texts))
    disagreements = [
        (p, go)
        for p, text, go in zip(patterns, texts, go_accepts, strict=True)
        if _ours_accepts(text) != go
    ]
    assert disagreements == []
    valid = [text for text, go in zip(texts, go_accepts, strict=True) if go]
    assert len(valid) > 100  # the corpus must exercise matching, not only errors
    config = amtool.write_config(valid)
    ours = [parse_matcher(text) for text in valid]
    with ThreadPoolExecutor(max_workers=4) as pool:
        go_routes = list(
            pool.map(lambda v: amtool.routes(config, [f'x="{_escape(v)}"'] if v else []), _VALUES)
        )
    mismatches = [
        (str(m), value)
        for value, reached in zip(_VALUES, go_routes, strict=True)
        for number, m in enumerate(ours)
        if m.matches({"x": value}) != (number in reached)
    ]
    assert mismatches == []


@pytest.mark.alertmanager
def test_matcher_strings_parse_as_amtool_parses_them(amtool: _Amtool) -> None:
    rng = random.Random(1)
    texts = list(
        dict.fromkeys(
            "".join(rng.choice(_LABEL_TEXTS) for _ in range(rng.randint(1, 8))) for _ in range(300)
        )
    )
    texts += [
        f"{name}{op}{space}{value}{space}"
        for name in ("x", "_a:b")
        for op in ("=", "!=", "=~")
        for space in ("", " ", "\v", "\xa0")
        for value in ('"a\\"b"', "a\\", '"a\\nb"', "a,b", '"a,b"', "", '"')
    ]
    with ThreadPoolExecutor(max_workers=4) as pool:
        go_accepts = list(pool.map(amtool.accepts, texts))
    disagreements = [
        text for text, go in zip(texts, go_accepts, strict=True) if _ours_accepts(text) != go
    ]
    assert disagreements == []
    assert sum(go_accepts) > 50

    # ParseMatcher itself, through amtool's label arguments: a route for our value must match.
    singles = [t for t in texts if "," not in t and _single_equal(t)]
    config = amtool.write_config([str(parse_matcher(t)) for t in singles])
    assert len(singles) > 20
    for number, text in enumerate(singles):
        reached = amtool.routes(config, [text])
        value = parse_matcher(text).value
        # An empty value is no label at all for amtool; every "x=" route matches it then.
        assert number in reached or value == "", (text, value)


def _single_equal(text: str) -> bool:
    try:
        return parse_matcher(text).op is MatchOp.EQUAL
    except MatcherSyntaxError:
        return False
