"""Tests of every built-in expression filter, through templates as recipes use them."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from connector.expressions.filters import BUILTIN_FILTERS, FilterSpec
from connector.expressions.syntax import MAX_ITEMS
from connector.expressions.template import ExpressionError, parse_template


def run(expression: str, value: object = None) -> object:
    """Render ``{{ <expression> }}`` with ``value`` available as ``vars.v``."""
    return parse_template("{{ " + expression + " }}").render({"vars": {"v": value}})


def fails(expression: str, value: object, message: str) -> None:
    with pytest.raises(ExpressionError, match=message):
        run(expression, value)


def test_builtin_registry_is_read_only_and_described() -> None:
    """BUILTIN_FILTERS cannot be changed in place, and each filter has a description."""
    assert all(isinstance(s, FilterSpec) and s.description for s in BUILTIN_FILTERS.values())
    with pytest.raises(TypeError):
        BUILTIN_FILTERS["x"] = BUILTIN_FILTERS["lower"]  # type: ignore[index]


@pytest.mark.parametrize(
    ("expression", "value", "expected"),
    [
        ("vars.v | lower", "ÀbC", "àbc"),
        ("vars.v | upper", "straße", "STRASSE"),
        ("vars.v | trim", "  a b \n", "a b"),
        ("vars.v | lower", None, None),
        ("vars.v | upper", None, None),
        ("vars.v | trim", None, None),
    ],
)
def test_filter_case_and_trim(expression: str, value: object, expected: object) -> None:
    """lower, upper and trim change strings and pass null through."""
    assert run(expression, value) == expected


@pytest.mark.parametrize("name", ["lower", "upper", "trim", "replace('a', 'b')", "split"])
def test_filter_string_filters_refuse_other_types(name: str) -> None:
    """String filters name themselves and the type they got."""
    filter_name = name.split("(")[0]
    fails(f"vars.v | {name}", [1], rf"column 13: filter '{filter_name}' expects a string, got list")
    fails(f"vars.v | {name}", 5, rf"filter '{filter_name}' expects a string, got number")


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, "d"), ("", "d"), ("x", "x"), (0, 0), (False, False), ([], [])],
)
def test_filter_default(value: object, expected: object) -> None:
    """default replaces null, missing and '' only (0, false and [] are kept)."""
    assert run("vars.v | default('d')", value) == expected
    assert run("vars.missing.deep | default([1])") == [1]


def test_filter_join() -> None:
    """join writes items as text (JSON for non-strings) with a separator (default none)."""
    assert run("vars.v | join(', ')", ["a", 1, True, None, [2]]) == "a, 1, true, null, [2]"
    assert run("vars.v | join", ["a", "b"]) == "ab"
    assert run("vars.v | join('-')", None) is None
    fails("vars.v | join(1)", ["a"], "filter 'join': argument must be a string, got number")
    fails("vars.v | join", {"a": 1}, "filter 'join' expects a list, got object")


def test_filter_split() -> None:
    """split cuts at a separator, or at runs of whitespace without one."""
    assert run("vars.v | split(',')", "a,b,,c") == ["a", "b", "", "c"]
    assert run("vars.v | split", "  a  b\tc ") == ["a", "b", "c"]
    assert run("vars.v | split(',')", None) is None
    fails("vars.v | split('')", "abc", "the separator must not be empty")
    fails("vars.v | split(',')", "," * MAX_ITEMS, f"more than {MAX_ITEMS} items")


@pytest.mark.parametrize(
    ("value", "first", "last"),
    [(["a", "b", "c"], "a", "c"), ([], None, None), ("xyz", "x", "z"), ("", None, None)],
)
def test_filter_first_last(value: object, first: object, last: object) -> None:
    """first and last pick the ends of a list or string; empty gives null."""
    assert run("vars.v | first", value) == first
    assert run("vars.v | last", value) == last


def test_filter_first_last_refuse_numbers() -> None:
    """first and last on a number is an error naming the filter."""
    fails("vars.v | first", 3, "filter 'first' expects a list or a string, got number")
    fails("vars.v | last", True, "filter 'last' expects a list or a string, got boolean")


@pytest.mark.parametrize(
    ("value", "expected"), [([1, 2], 2), ("abc", 3), ({"a": 1}, 1), (None, 0), ("", 0)]
)
def test_filter_length(value: object, expected: int) -> None:
    """length counts list items, characters or keys; null counts as 0."""
    assert run("vars.v | length", value) == expected


def test_filter_length_refuses_numbers() -> None:
    """length of a number is an error."""
    fails("vars.v | length", 12, "filter 'length' expects a list, a string or an object")


def test_filter_replace() -> None:
    """replace swaps every occurrence; arguments must be strings."""
    assert run("vars.v | replace('-', '')", "415-555-0100") == "4155550100"
    assert run("vars.v | replace('a', 'b')", None) is None
    fails("vars.v | replace(1, 'b')", "abc", "filter 'replace': argument must be a string")


@pytest.mark.parametrize(
    ("expression", "value", "expected"),
    [
        ("vars.v | slice(1)", [1, 2, 3], [2, 3]),
        ("vars.v | slice(0, 2)", [1, 2, 3], [1, 2]),
        ("vars.v | slice(-2, null)", "abcd", "cd"),
        ("vars.v | slice(0, 3)", "abcdef", "abc"),
        ("vars.v | slice(0, 3)", None, None),
    ],
)
def test_filter_slice(expression: str, value: object, expected: object) -> None:
    """slice takes start and an optional end (exclusive; negative counts from the end)."""
    assert run(expression, value) == expected


def test_filter_slice_refuses_non_integer_bounds() -> None:
    """slice bounds must be integers (or null for the end)."""
    fails("vars.v | slice('1')", [1], "filter 'slice': argument must be an integer, got string")
    fails("vars.v | slice(true)", [1], "argument must be an integer, got boolean")
    fails("vars.v | slice(1)", {"a": 1}, "filter 'slice' expects a list or a string, got object")


def test_filter_json() -> None:
    """json writes any value as JSON text, keeping non-ASCII characters."""
    assert run("vars.v | json", {"a": [1, None, "é"]}) == '{"a": [1, null, "é"]}'
    assert run("vars.v | json", None) == "null"
    assert run("vars.v | json", "x") == '"x"'


@pytest.mark.parametrize(
    ("expression", "value", "expected"),
    [
        ("vars.v | e164", "(415) 555-0100", "+14155550100"),
        ("vars.v | e164", "415.555.0100", "+14155550100"),
        ("vars.v | e164", "+44 20 7946 0958", "+442079460958"),
        ("vars.v | e164('GB')", "020 7946 0958", "+442079460958"),
        ("vars.v | e164('gb')", "020 7946 0958", "+442079460958"),
        ("vars.v | e164", 4155550100, "+14155550100"),
        ("vars.v | e164", None, None),
        ("vars.v | e164", "", None),
    ],
)
def test_filter_e164(expression: str, value: object, expected: object) -> None:
    """e164 normalises phone numbers with a default region (US); null and '' give null."""
    assert run(expression, value) == expected


def test_filter_e164_errors_redact_the_number() -> None:
    """An unreadable number is an error showing only its last 4 digits."""
    with pytest.raises(ExpressionError, match=r"filter 'e164': '\*\*\*1234' is not") as info:
        run("vars.v | e164", "555-99-1234-0000000000000000001234")
    assert "555" not in str(info.value)
    fails("vars.v | e164", "call me", r"'\*\*\*' is not a phone number")
    fails("vars.v | e164('XX')", "4155550100", "unknown region 'XX'")
    fails("vars.v | e164", [1], "filter 'e164' expects a string or a number, got list")


@pytest.mark.parametrize(
    ("value", "expected"),
    [(" Bob@Example.COM ", "bob@example.com"), ("a.b+c@x.co.uk", "a.b+c@x.co.uk"), ("", None)],
)
def test_filter_email(value: str, expected: object) -> None:
    """email trims and lower-cases a valid address; '' gives null."""
    assert run("vars.v | email", value) == expected


@pytest.mark.parametrize("value", ["bob@", "bob", "a@b", "a b@c.com", "a@@b.com", "a@b..com"])
def test_filter_email_refuses_invalid(value: str) -> None:
    """An invalid address is an error showing it."""
    fails("vars.v | email", value, r"filter 'email': .* is not a valid email address")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-05-01T10:00:00Z", "2024-05-01T10:00:00.000Z"),
        ("2024-05-01T10:00:00.123+02:00", "2024-05-01T08:00:00.123Z"),
        ("2024-05-01", "2024-05-01T00:00:00.000Z"),
        ("2024-05-01 10:30:00", "2024-05-01T10:30:00.000Z"),
        ("05/01/2024", "2024-05-01T00:00:00.000Z"),
        ("05/01/2024 3:04 PM", "2024-05-01T15:04:00.000Z"),
        ("May 1, 2024", "2024-05-01T00:00:00.000Z"),
        ("1 May 2024", "2024-05-01T00:00:00.000Z"),
        ("Wed, 01 May 2024 10:00:00 +0000", "2024-05-01T10:00:00.000Z"),
        (1714557600000, "2024-05-01T10:00:00.000Z"),
        ("1714557600000", "2024-05-01T10:00:00.000Z"),
        (1714557600000.5, "2024-05-01T10:00:00.000Z"),
        (None, None),
        ("", None),
    ],
)
def test_filter_iso(value: object, expected: object) -> None:
    """iso reads ISO 8601, epoch ms and common forms, and writes ISO 8601 UTC with ms and Z."""
    assert run("vars.v | iso", value) == expected


def test_filter_epoch_ms_and_date() -> None:
    """epoch_ms gives milliseconds since 1970 UTC; date formats with strftime, keeping the zone."""
    assert run("vars.v | epoch_ms", "2024-05-01T10:00:00Z") == 1714557600000
    assert run("vars.v | epoch_ms", "1970-01-01T00:00:00.001Z") == 1
    assert run("vars.v | date('%Y-%m-%d %H:%M')", "2024-05-01T23:30:00-05:00") == "2024-05-01 23:30"
    assert run("vars.v | date('%d/%m/%Y')", 1714557600000) == "01/05/2024"
    assert run("vars.v | date('%Y')", None) is None


@pytest.mark.parametrize(
    ("expression", "value", "message"),
    [
        ("vars.v | iso", "next tuesday", "filter 'iso': 'next tuesday' is not a date it can read"),
        ("vars.v | iso", [2024], "filter 'iso' expects a date string or epoch milliseconds"),
        ("vars.v | iso", True, "got boolean"),
        ("vars.v | epoch_ms", 10**20, "filter 'epoch_ms': .* is out of the date range"),
        ("vars.v | date(5)", "2024-05-01", "filter 'date': argument must be a string"),
    ],
)
def test_filter_date_errors(expression: str, value: object, message: str) -> None:
    """Unreadable dates, wrong types and out-of-range values are errors naming the filter."""
    fails(expression, value, message)


def test_filter_date_refuses_unwritable_format() -> None:
    """A format from data that strftime cannot write (a lone surrogate) is our error."""
    template = parse_template("{{ '2024-05-01' | date(vars.fmt) }}")
    with pytest.raises(ExpressionError, match="column 19: filter 'date': cannot format with"):
        template.render({"vars": {"fmt": "%Y\ud800"}})


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (" 42 ", 42),
        ("-3", -3),
        ("2.9", 2),
        ("1e3", 1000),
        (7.8, 7),
        (5, 5),
        (True, 1),
        (None, None),
    ],
)
def test_filter_to_int(value: object, expected: object) -> None:
    """to_int reads integers from numbers and numeric strings, truncating fractions."""
    assert run("vars.v | to_int", value) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("12abc", "'12abc' is not a number"),
        ("١٢", "is not a number"),
        ("9" * 5000, "is too large"),
        ([1], "filter 'to_int' expects a number or a numeric string, got list"),
    ],
)
def test_filter_to_int_errors(value: object, message: str) -> None:
    """Non-numeric text (including non-ASCII digits) and other types are refused."""
    fails("vars.v | to_int", value, message)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("a", "a"), (3, "3"), (2.5, "2.5"), (True, "true"), (None, "null"), ([1, "a"], '[1, "a"]')],
)
def test_filter_to_str(value: object, expected: str) -> None:
    """to_str renders like text around an expression does."""
    assert run("vars.v | to_str", value) == expected


def test_filters_chain_left_to_right() -> None:
    """A pipe applies filters in order, and arguments may be paths."""
    context = {"vars": {"v": "  A,B ", "sep": "+"}}
    template = parse_template("{{ vars.v | trim | lower | split(',') | join(vars.sep) }}")
    assert template.render(context) == "a+b"


def test_docs_show_every_filter_with_a_true_example() -> None:
    """docs/expressions.md gives each built-in filter an example, and every example holds."""
    doc = (Path(__file__).resolve().parents[1] / "docs" / "expressions.md").read_text()
    examples = re.findall(r"`(\{\{ [^`]*?\}\})` → `([^`]*)`", doc)
    shown = {name for text, _ in examples for name in re.findall(r"\\\| (\w+)", text)}
    assert shown == set(BUILTIN_FILTERS)
    for text, expected in examples:
        value = parse_template(text.replace("\\|", "|")).render({"trigger": {}})
        assert json.dumps(value, ensure_ascii=False) == expected, text
