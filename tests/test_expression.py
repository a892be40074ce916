"""Tests of recipe templates: parsing, rendering, type keeping, errors, limits, static analysis."""

from __future__ import annotations

import json
import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connector.errors import Location, RecipeError
from connector.expressions.syntax import JSON, MAX_DEPTH, MAX_EXPRESSION_LENGTH, MAX_STRING_LENGTH
from connector.expressions.template import (
    BUILTIN_FILTERS,
    ExpressionError,
    FilterSpec,
    compile_value,
    parse_template,
    truthy,
)

CONTEXT = {
    "trigger": {"firstName": "Ann", "count": 3, "first name": "Spaced", "tags": ["vip", "new"]},
    "steps": {
        "contact": {
            "contact": {
                "email": " Bob@Example.COM ",
                "phone": "(415) 555-0100",
                "tags": ["a", "b", "c"],
                "score": 2.5,
                "active": True,
                "owner": None,
                "custom": {"key with space": "yes"},
            }
        }
    },
    "vars": {"greeting": "Hello", "limit": 10},
    "env": {"REGION": "GB"},
    "item": {"name": "vip"},
}


def render(text: str, context: dict[str, object] | None = None) -> object:
    return parse_template(text).render(CONTEXT if context is None else context)


# --- rendering and types -------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{{ steps.contact.contact.tags }}", ["a", "b", "c"]),
        ("{{ steps.contact.contact.score }}", 2.5),
        ("{{ steps.contact.contact.active }}", True),
        ("{{ steps.contact.contact.owner }}", None),
        ("{{ steps.contact.contact.custom }}", {"key with space": "yes"}),
        ("{{ trigger.count }}", 3),
    ],
)
def test_template_lone_expression_keeps_json_type(text: str, expected: object) -> None:
    """A value that is exactly one expression renders to the JSON value itself, not text."""
    assert render(text) == expected
    assert type(render(text)) is type(expected)


def test_template_text_around_makes_a_string() -> None:
    """Text around expressions renders a string; lists as JSON, booleans/null as JSON words."""
    text = (
        "n={{ trigger.count }} s={{ steps.contact.contact.score }} "
        "t={{ steps.contact.contact.tags }} b={{ steps.contact.contact.active }} "
        "o={{ steps.contact.contact.owner }} c={{ steps.contact.contact.custom }}"
    )
    assert render(text) == ('n=3 s=2.5 t=["a", "b", "c"] b=true o=null c={"key with space": "yes"}')


def test_template_whitespace_around_lone_expression_makes_a_string() -> None:
    """Only an exact ``{{ ... }}`` keeps its type; a trailing newline (YAML ``|``) makes text."""
    assert render("{{ trigger.count }}\n") == "3\n"


def test_template_without_expression_is_literal() -> None:
    """Plain text parses to a literal template that renders to itself."""
    template = parse_template("just text }} with braces")
    assert template.is_literal and not template.is_lone
    assert template.render({}) == "just text }} with braces"


def test_template_example_from_the_brief() -> None:
    """The recipe example renders as documented."""
    assert render("Call {{ trigger.firstName | default('there') }} back") == "Call Ann back"
    assert render("Call {{ trigger.nobody | default('there') }} back") == "Call there back"
    assert render("{{ steps.contact.contact.email | lower }}") == " bob@example.com "


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{{ steps.contact.contact.tags[0] }}", "a"),
        ("{{ steps.contact.contact.tags[-1] }}", "c"),
        ("{{ steps.contact.contact.tags[3] }}", None),
        ("{{ steps.contact.contact.tags[-4] }}", None),
        ('{{ trigger["first name"] }}', "Spaced"),
        ("{{ trigger['first name'] }}", "Spaced"),
        ('{{ steps.contact.contact.custom["key with space"] }}', "yes"),
        ('{{ steps["contact"].contact.email | trim }}', "Bob@Example.COM"),
        ("{{ trigger.missing.deeper[0] }}", None),
        ("{{ trigger.firstName.length }}", None),
        ("{{ trigger.tags.vip }}", None),
        ("{{ vars.greeting }}", "Hello"),
        ("{{ env.REGION }}", "GB"),
        ("{{ steps }}", CONTEXT["steps"]),
        ("{{ trigger.__class__.__mro__ }}", None),
        ("{{ item }}", {"name": "vip"}),
        ("{{ item.name }}", "vip"),
        ("{{ trigger.firstName.upper }}", None),
    ],
)
def test_template_path_lookup(text: str, expected: object) -> None:
    """Paths walk keys, indexes (negative from the end) and quoted keys; dead ends are null."""
    assert render(text) == expected


def test_template_missing_root_is_null() -> None:
    """A root absent from the context (e.g. no ``vars``) reads as null."""
    assert render("{{ vars.x | default(1) }}", {"trigger": {}}) == 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{{ 'it\\'s' }}", "it's"),
        ('{{ "a\\"b\\\\c\\n\\t\\u00e9\\/" }}', 'a"b\\c\n\té/'),
        ("{{ 42 }}", 42),
        ("{{ -7 }}", -7),
        ("{{ 1.5e3 }}", 1500.0),
        ("{{ true }}", True),
        ("{{ false }}", False),
        ("{{ null }}", None),
        ("{{ [1, 'a', [true, null], ] }}", [1, "a", [True, None]]),
        ("{{ [] }}", []),
        ('{{ "}}" }}', "}}"),
        ("{{ '{{' }} literal", "{{ literal"),
    ],
)
def test_template_literals(text: str, expected: object) -> None:
    """Strings with escapes, numbers, constants and lists parse to their JSON values."""
    assert render(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{{ trigger.count == 3 }}", True),
        ("{{ trigger.count != 3 }}", False),
        ("{{ trigger.count == 3.0 }}", True),
        ("{{ steps.contact.contact.active == 1 }}", False),
        ("{{ trigger.tags == ['vip', 'new'] }}", True),
        ("{{ trigger.count < 4 and trigger.count >= 3 }}", True),
        ("{{ trigger.count > 3 or trigger.count <= 2 }}", False),
        ("{{ 'b' < 'c' }}", True),
        ("{{ 'vip' in trigger.tags }}", True),
        ("{{ 'gold' not in trigger.tags }}", True),
        ("{{ 'nn' in trigger.firstName }}", True),
        ("{{ 'count' in trigger }}", True),
        ("{{ 'x' in trigger.nothing }}", False),
        ("{{ not trigger.missing }}", True),
        ("{{ not not trigger.count }}", True),
        ("{{ not (trigger.count == 3 and false) }}", True),
        ("{{ trigger.firstName | lower == 'ann' }}", True),
        ("{{ trigger.missing == null }}", True),
    ],
)
def test_template_comparisons_and_logic(text: str, expected: bool) -> None:
    """Comparisons use JSON equality (true is not 1); and/or/not/in yield booleans."""
    assert render(text) is expected


def test_truthy_follows_json_emptiness() -> None:
    """null, false, 0, '', [] and {} are falsy; anything else is truthy."""
    falsy: list[JSON] = [None, False, 0, 0.0, "", [], {}]
    truthful: list[JSON] = [True, 1, -1.5, "0", [0], {"a": None}]
    assert [truthy(v) for v in falsy] == [False] * len(falsy)
    assert all(truthy(v) for v in truthful)


def test_template_and_or_short_circuit() -> None:
    """The right side of and/or is not evaluated when the left side decides."""
    assert render("{{ false and (trigger.tags < 1) }}") is False
    assert render("{{ true or (trigger.tags < 1) }}") is True


# --- errors at parse time -----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "Hi {{ trigger.x | lowr }}",
            r"^column 19: unknown filter 'lowr' \(did you mean 'lower'\?\)",
        ),
        ("{{ trigr.x }}", r"^column 4: unknown name 'trigr' \[did you mean 'trigger'\?"),
        ("{{ os.system }}", r"^column 4: unknown name 'os' \["),
        ("{{ trigger.x | join(',', 2) }}", r"^column 16: filter 'join' takes 0 to 1 argument"),
        ("{{ trigger.x | replace('a') }}", r"^column 16: filter 'replace' takes 2 argument"),
        ("ab {{ trigger.x", r"^column 4: '\{\{' is never closed by '\}\}'"),
        ("{{ trigger.x == 1 == 2 }}", r"^column 19: unexpected '==', .*cannot be chained"),
        ('{{ "a\\q" }}', r"^column 6: invalid escape '\\\\q' in string"),
        ('{{ "\\ud800" }}', r"^column 5: surrogate escape"),
        ("{{ 'abc }}", r"^column 4: string is never closed"),
        ("{{ }}", r"^column 4: empty expression"),
        ("{{ trigger.x ; }}", r"^column 14: unexpected character ';'"),
        ("{{ trigger. }}", r"^column 13: expected a name after '.', found '}}'"),
        ("{{ trigger[1.5] }}", r"^column 12: expected a quoted key or an integer index"),
        ("{{ trigger[0 }}", r"^column 14: expected ']' to close the index"),
        ("{{ (trigger.x }}", r"^column 15: expected '\)' to close '\('"),
        ("{{ [1, 2 }}", r"^column 10: expected '\]' to close the list"),
        ("{{ trigger.x | 3 }}", r"^column 16: expected a filter name after '\|'"),
        ("{{ trigger.x | lower( }}", r"^column 23: unexpected '\}\}'"),
        ("{{ 1e999 }}", r"^column 4: number 1e999 is out of range"),
        ("{{ env }}", r"^column 4: 'env' must be followed by a variable name"),
        ("{{ trigger.x trigger.y }}", r"^column 14: unexpected 'trigger', expected '\}\}'"),
        ("{{ trigger.__class__ | x }}", r"^column 24: unknown filter 'x'"),
    ],
)
def test_parse_error_names_column(text: str, message: str) -> None:
    """Syntax errors, unknown names and filters, bad arity: ExpressionError at the column."""
    with pytest.raises(ExpressionError, match=message) as info:
        parse_template(text)
    assert info.value.column is not None
    assert isinstance(info.value, RecipeError)


def test_parse_env_allow_list() -> None:
    """With an allow-list, ``env.NAME`` outside it is refused at parse time."""
    assert parse_template("{{ env.REGION }}", env={"REGION"}).render(CONTEXT) == "GB"
    with pytest.raises(ExpressionError, match=r"column 4: .*'HOME' is not allowed \[allowed: A\]"):
        parse_template("{{ env.HOME }}", env={"A"})


def test_parse_limits_bound_length_and_depth() -> None:
    """Too long an expression or too deep a nesting is refused before any work."""
    long_text = "{{ " + "'" + "x" * MAX_EXPRESSION_LENGTH + "' }}"
    with pytest.raises(ExpressionError, match="longer than"):
        parse_template(long_text)
    for token in ("9" * 50_000, "a" * 50_000, "trigger" + ".a" * 25_000):
        with pytest.raises(ExpressionError, match="column 1: expression longer than"):
            parse_template("{{ " + token + " }}")
    deep = "{{ " + "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1) + " }}"
    with pytest.raises(ExpressionError, match=f"nested deeper than {MAX_DEPTH}"):
        parse_template(deep)
    nots = "{{ " + "not " * (MAX_DEPTH + 1) + "true }}"
    with pytest.raises(ExpressionError, match="nested deeper"):
        parse_template(nots)
    assert parse_template("{{ " + "[" * MAX_DEPTH + "]" * MAX_DEPTH + " }}").is_lone


def test_error_at_location_keeps_column() -> None:
    """``at`` moves an error to a file position; the column in the text stays in the message."""
    with pytest.raises(ExpressionError) as info:
        parse_template("{{ trigger.x | nope }}")
    moved = info.value.at(Location("r.yaml", 7, pointer="steps[0].with.a"))
    assert str(moved) == "r.yaml:7: steps[0].with.a: column 16: unknown filter 'nope'"
    assert moved.column == 16 and moved.location is not None
    in_file = info.value.at(Location("r.yaml", 7, 30, pointer="steps[0].with.a"))
    assert str(in_file) == "r.yaml:7:30: steps[0].with.a: unknown filter 'nope'"


# --- errors at render time ----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{{ trigger.tags | lower }}", r"^column 19: filter 'lower' expects a string, got list"),
        ("x {{ trigger.count < 'a' }}", r"^column 20: cannot compare number with string using '<'"),
        ("{{ trigger.missing > 1 }}", r"^column 20: cannot compare null with number"),
        ("{{ 1 in 'abc' }}", r"^column 6: cannot look for a number in a string"),
        ("{{ 'x' | join }}", r"^column 10: filter 'join' expects a list, got string"),
    ],
)
def test_render_error_names_filter_type_and_column(text: str, message: str) -> None:
    """Type errors at render time name the filter or operator, the types, and the column."""
    template = parse_template(text)
    with pytest.raises(ExpressionError, match=message):
        template.render(CONTEXT)


def test_render_strict_reports_missing_path() -> None:
    """In strict mode a dead-end path is an error naming where it stopped."""
    template = parse_template("{{ steps.contact.contact.nope | default(1) }}")
    assert template.render(CONTEXT) == 1
    with pytest.raises(
        ExpressionError,
        match=r"column 4: 'steps\.contact\.contact\.nope' not found: 'steps\.contact\.contact' "
        r"is a object with no key 'nope'",
    ):
        template.render(CONTEXT, strict=True)
    with pytest.raises(ExpressionError, match=r"'vars' is not available"):
        parse_template("{{ vars.a }}").render({}, strict=True)


def test_render_limits_bound_output() -> None:
    """Filters cannot blow a string past MAX_STRING_LENGTH, and text concatenation is bounded."""
    big = {"trigger": {"s": "x" * (MAX_STRING_LENGTH // 2 + 1)}}
    with pytest.raises(ExpressionError, match=r"column 16: filter 'replace': result longer"):
        parse_template("{{ trigger.s | replace('x', 'xx') }}").render(big)
    with pytest.raises(ExpressionError, match="result longer than"):
        parse_template("{{ trigger.s }}{{ trigger.s }}").render(big)
    with pytest.raises(ExpressionError, match="filter 'join': result longer"):
        parse_template("{{ [trigger.s, trigger.s] | join }}").render(big)


def test_plugin_filter_result_is_checked() -> None:
    """A plugin filter returning a huge value or a non-JSON object is stopped, with its column."""
    filters = {
        **BUILTIN_FILTERS,
        "blow": FilterSpec(lambda v: "x" * (MAX_STRING_LENGTH + 1)),
        "obj": FilterSpec(lambda v: {1, 2}),
    }
    with pytest.raises(ExpressionError, match="column 11: result longer than"):
        parse_template("{{ null | blow }}", filters=filters).render({})
    with pytest.raises(ExpressionError, match="column 11: filter 'obj' returned a set, not a JSON"):
        parse_template("{{ null | obj }}", filters=filters).render({})


# --- registry and static analysis ------------------------------------------------------


def test_plugin_filters_extend_the_registry() -> None:
    """A registry with a plugin's FilterSpec accepts it, checks its arity, and calls it."""

    def shout(value: object, times: object = 1) -> str:
        if not isinstance(value, str) or not isinstance(times, int):
            raise ExpressionError("filter 'shout' expects a string")
        return value.upper() + "!" * times

    filters = {**BUILTIN_FILTERS, "shout": FilterSpec(shout, 0, 1, "loud")}
    assert parse_template("{{ 'hi' | shout(2) }}", filters=filters).render({}) == "HI!!"
    with pytest.raises(ExpressionError, match="takes 0 to 1 argument"):
        parse_template("{{ 'hi' | shout(1, 2) }}", filters=filters)
    with pytest.raises(ExpressionError, match="column 9: filter 'shout' expects a string"):
        parse_template("{{ [] | shout }}", filters=filters).render({})
    with pytest.raises(ExpressionError, match="unknown filter 'shout'"):
        parse_template("{{ 'hi' | shout }}")


def test_filter_spec_rejects_bad_bounds() -> None:
    """A FilterSpec whose max_args is below min_args is a programming error."""
    with pytest.raises(ValueError, match="bad argument bounds"):
        FilterSpec(str, 2, 1)


def test_template_paths_and_filter_calls_for_the_validator() -> None:
    """Static analysis lists every path and filter call with its column, args included."""
    text = "Hi {{ trigger.a | default(vars.b[0]) }} {{ 'x' in steps.s['k y'] | join(',') }}"
    template = parse_template(text)
    assert [(p.text, p.root, p.segments, p.column) for p in template.paths()] == [
        ("trigger.a", "trigger", ("a",), 7),
        ("vars.b[0]", "vars", ("b", 0), 27),
        ('steps.s["k y"]', "steps", ("s", "k y"), 51),
    ]
    calls = [(c.name, len(c.args), c.column) for c in template.filter_calls()]
    assert calls == [("default", 1, 19), ("join", 1, 68)]
    assert text[18:25] == "default" and text[67:71] == "join"


def test_compile_value_renders_nested_with() -> None:
    """compile_value parses every string in nested data and renders to plain JSON."""
    compiled = compile_value(
        {
            "email": "{{ steps.contact.contact.email | email }}",
            "tags": ["{{ trigger.tags[0] }}", "fixed", 3, None, True],
            "nested": {"title": "Call {{ trigger.firstName }}", "n": 1.5},
        }
    )
    assert compiled.render(CONTEXT) == {
        "email": "bob@example.com",
        "tags": ["vip", "fixed", 3, None, True],
        "nested": {"title": "Call Ann", "n": 1.5},
    }
    assert [path for path, _ in compiled.templates()] == [
        ("email",),
        ("tags", 0),
        ("nested", "title"),
    ]


def test_compile_value_errors_carry_pointer() -> None:
    """Parse and render errors inside nested data name the value's pointer."""
    data = {"a": [{"b": "{{ trigger.x | lowr }}"}]}
    with pytest.raises(ExpressionError, match=r"^steps\[1\]\.with\.a\[0\]\.b: column 16: unknown"):
        compile_value(data, path=("steps", 1, "with"))
    compiled = compile_value({"a": {"b": "{{ trigger.tags | upper }}"}})
    with pytest.raises(ExpressionError, match=r"^a\.b: column 19: filter 'upper' expects"):
        compiled.render(CONTEXT)
    with pytest.raises(ExpressionError, match=r"^x: a set is not JSON data"):
        compile_value({"x": {1}})


# --- property: only values or our own error ------------------------------------------------

_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**15), 10**15)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
    | st.sampled_from(["2024-05-01", "+1 415 555 0100", "A@B.co", "\ud800", "%Y", "12"]),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(["a", "b", "id", "tags", "x y", "0"]), children, max_size=4
        )
    ),
    max_leaves=12,
)
_contexts = st.fixed_dictionaries(
    {"trigger": _json, "steps": st.dictionaries(st.sampled_from(["a", "b"]), _json, max_size=2)},
    optional={
        "vars": _json,
        "env": st.dictionaries(st.sampled_from(["A", "B"]), st.text()),
        "item": _json,
    },
)
_paths = st.builds(
    lambda root, segs: root + "".join(segs),
    st.sampled_from(["trigger", "steps", "vars", "env.A", "item", "steps.a", "trigger.tags"]),
    st.lists(
        st.sampled_from([".a", ".b", ".id", ".tags", "[0]", "[-1]", '["x y"]', "[5]"]), max_size=3
    ),
)
_literals = st.sampled_from(
    ["1", "-2", "0.5", "''", "'x'", "','", "'%Y-%m-%d'", "'GB'", "null", "true", "[1, 'a']", "[]"]
)


_FILTER_NAMES = sorted(BUILTIN_FILTERS)
_OPERATORS = ["==", "!=", "<", "<=", ">", ">=", "in", "not in", "and", "or"]


def _expressions(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """Well-formed-looking expressions over ``inner``: filters with random args, operators."""

    @st.composite
    def build(draw: st.DrawFn) -> str:
        atom = draw(inner)
        if draw(st.booleans()):
            atom = f"({atom})"
        for name in draw(st.lists(st.sampled_from(_FILTER_NAMES), max_size=3)):
            spec = BUILTIN_FILTERS[name]
            count = draw(st.integers(spec.min_args, spec.max_args))
            args = draw(st.lists(_paths | _literals, min_size=count, max_size=count))
            atom += f" | {name}" + (f"({', '.join(args)})" if args else "")
        if draw(st.booleans()):
            atom = f"{atom} {draw(st.sampled_from(_OPERATORS))} {draw(_paths | _literals)}"
        return ("not " if draw(st.booleans()) else "") + atom

    return build()


_leaves = _paths | _literals
_expression = _expressions(_leaves | _expressions(_leaves | _expressions(_leaves)))


_noise = st.text(alphabet=string.printable + "éß\u2028", max_size=40)
_templates = st.one_of(
    st.builds(lambda e: "{{ " + e + " }}", _expression),
    st.builds(lambda a, e, b: a + "{{" + e + "}}" + b, _noise, _expression, _noise),
    st.builds(lambda e, n: "{{ " + e + n, _expression, _noise),
    _noise.map(lambda n: "{{" + n),
    _noise,
)


@settings(
    max_examples=400, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(text=_templates, context=_contexts)
def test_property_only_values_or_expression_error(text: str, context: dict[str, object]) -> None:
    """Any template text over any JSON data yields a JSON value or ExpressionError, never else."""
    try:
        template = parse_template(text)
        value = template.render(context)
        strict_value = template.render(context, strict=True)
    except ExpressionError as exc:
        assert str(exc)
        return
    json.dumps(value)
    assert value == strict_value
    if not template.is_lone:
        assert isinstance(value, str)
