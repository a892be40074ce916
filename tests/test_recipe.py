"""Loading recipes: safe YAML, the recipe schema, frozen Recipe/Step objects, located expression errors."""

from __future__ import annotations

import dataclasses
import json

import pytest
from conftest import ROOT

from connector.documents.document import load_yaml
from connector.errors import DocumentError
from connector.expressions.template import BUILTIN_FILTERS, FilterSpec, Template
from connector.recipes.recipe import OnError, load_recipe, parse_recipe, read_recipe

GOOD = ROOT / "tests" / "data" / "recipes" / "good"
BROKEN = ROOT / "tests" / "data" / "recipes" / "broken"


def _problems(exc: pytest.ExceptionInfo[DocumentError]) -> list[str]:
    return [str(p) for p in exc.value.problems]


def test_recipe_load_builds_frozen_steps():
    """A good recipe becomes frozen Recipe/Step objects with every field filled in."""
    recipe = load_recipe(GOOD / "contact_note.yaml")
    assert recipe.name == "Welcome note for new contacts"
    assert recipe.trigger.use == "ghl.contacts.created"
    assert [s.id for s in recipe.steps] == ["contact", "note"]
    assert [s.use for s in recipe.steps] == ["ghl.contacts.get", "ghl.notes.create"]
    assert recipe.vars == {"greeting": "Welcome aboard"}
    assert recipe.env == ("RECIPE_SUPPORT_EMAIL",)
    assert recipe.file == str(GOOD / "contact_note.yaml")
    note = recipe.steps[1]
    assert isinstance(note.if_, Template) and note.for_each is None
    assert (note.location.line, note.location.column, note.location.pointer) == (15, 5, "steps[1]")
    assert note.path == ("steps", 1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        note.id = "other"  # type: ignore[misc]


def test_recipe_on_error_merges_step_and_recipe_policies():
    """A step's on_error takes its own values and the recipe's retry/backoff for the rest."""
    recipe = load_recipe(GOOD / "contact_note.yaml")
    assert recipe.on_error == OnError(retry=5, backoff=10.0, then="dead_letter")
    assert recipe.steps[0].on_error == OnError(retry=5, backoff=10.0, then="fail")
    assert recipe.steps[1].on_error == OnError(retry=1, backoff=10.0, then="continue")


def test_recipe_defaults_when_nothing_is_said():
    """Without on_error or connection: 3 retries from 2 s, dead letter; app default connection."""
    recipe = load_recipe(GOOD / "upsert_without_location.yaml")
    assert recipe.on_error == OnError(retry=3, backoff=2.0, then="dead_letter")
    assert recipe.steps[0].on_error == OnError(retry=3, backoff=2.0, then="fail")
    assert recipe.connection is None and recipe.steps[0].connection is None
    assert recipe.vars == {} and recipe.env == () and recipe.description == ""


def test_recipe_connection_default_and_override():
    """Steps use the recipe's connection unless they name their own."""
    recipe = load_recipe(GOOD / "contact_note.yaml")
    assert recipe.connection == "main"
    assert [s.connection for s in recipe.steps] == ["main", "agency"]


def test_recipe_expressions_are_compiled_and_render():
    """with, if and for_each are parsed at load time and render over a context."""
    recipe = load_recipe(GOOD / "contact_note.yaml")
    context = {
        "trigger": {"id": "c1", "tags": ["vip"]},
        "steps": {"contact": {"contact": {"id": "c1", "email": "a@b.co", "firstName": None}}},
        "vars": dict(recipe.vars),
        "env": {"RECIPE_SUPPORT_EMAIL": "help@x.co"},
    }
    note = recipe.steps[1]
    assert note.if_ is not None and note.if_.render(context) is True
    assert note.with_.render(context) == {
        "contactId": "c1",
        "body": "Welcome aboard, friend!\nQuestions? Write to help@x.co.\n",
        "pinned": True,
    }
    paths = [(p, t.text) for p, t in note.templates()]
    assert [p for p, _ in paths] == [
        ("steps", 1, "if"),
        ("steps", 1, "with", "contactId"),
        ("steps", 1, "with", "body"),
    ]


def test_recipe_for_each_item_renders():
    """A for_each step keeps its list expression; {{ item }} reads the current item."""
    recipe = load_recipe(GOOD / "tag_each.yaml")
    step = recipe.steps[0]
    assert step.for_each is not None and step.for_each.is_lone
    context = {"trigger": {"id": "c1", "tags": ["a", "b"]}, "item": "a"}
    assert step.for_each.render(context) == ["a", "b"]
    assert step.with_.render(context)["title"] == "Follow up on tag a"


def test_recipe_parse_text_uses_the_given_filters():
    """parse_recipe reads text; a plugin's filter is accepted when it is in the registry."""
    text = (
        "name: t\ntrigger: {use: ghl.contacts.created}\nsteps:\n"
        '  - {id: a, use: ghl.notes.create, with: {body: "{{ trigger.name | shout }}"}}\n'
    )
    with pytest.raises(DocumentError) as exc:
        parse_recipe(text, file="t.yaml")
    assert _problems(exc) == ["t.yaml:4:68: steps[0].with.body: unknown filter 'shout'"]
    filters = {**BUILTIN_FILTERS, "shout": FilterSpec(lambda v: f"{v}!")}
    recipe = parse_recipe(text, file="t.yaml", filters=filters)
    assert recipe.steps[0].with_.render({"trigger": {"name": "hi"}}) == {"body": "hi!"}


def test_recipe_reports_every_expression_error_at_once():
    """All bad expressions of a recipe are reported together, each at its own line and column."""
    text = (
        "name: t\ntrigger: {use: ghl.contacts.created}\nsteps:\n"
        "  - id: a\n    use: ghl.notes.create\n"
        "    if: '{{ trigger.x == }}'\n"
        "    with:\n"
        '      body: "{{ trigger.name | upper(1) }}"\n'
    )
    with pytest.raises(DocumentError) as exc:
        parse_recipe(text, file="t.yaml")
    assert _problems(exc) == [
        "t.yaml:6:26: steps[0].if: unexpected '}}'",
        "t.yaml:8:32: steps[0].with.body: filter 'upper' takes 0 argument(s), got 1",
    ]


def test_recipe_unquoted_braces_are_a_yaml_mapping():
    """An unquoted {{ ... }} is YAML flow syntax: reported at its line, with how to quote it."""
    text = (
        "name: t\ntrigger: {use: ghl.contacts.created}\nsteps:\n"
        "  - id: a\n    use: ghl.notes.create\n    if: {{ trigger.x }}\n"
    )
    with pytest.raises(DocumentError) as exc:
        parse_recipe(text, file="t.yaml")
    assert _problems(exc) == [
        "t.yaml:6:9: an unquoted '{{': YAML reads it as a mapping"
        ' [put an expression that is the whole value in quotes: "{{ trigger.id }}"]'
    ]


def test_recipe_expression_error_in_a_block_has_its_own_line():
    """An error inside a literal block (|) is placed on the block's line and column."""
    with pytest.raises(DocumentError) as exc:
        load_recipe(BROKEN / "block_expression_error.yaml")
    path = BROKEN / "block_expression_error.yaml"
    assert _problems(exc) == [str(path) + ":11:41: steps[0].with.body: unexpected '}}'"]


def test_recipe_expression_error_in_a_folded_value_names_the_column():
    """When the value's layout hides the column (folded >), the value's place and the column are
    given instead."""
    text = (
        "name: t\ntrigger: {use: ghl.contacts.created}\nsteps:\n"
        "  - id: a\n    use: ghl.notes.create\n    with:\n      body: >\n"
        "        Hello\n        {{ trigger.name | nope }}\n"
    )
    with pytest.raises(DocumentError) as exc:
        parse_recipe(text, file="t.yaml")
    assert _problems(exc) == [
        "t.yaml:7:13: steps[0].with.body: unknown filter 'nope' (column 25 of the value)"
    ]


def test_recipe_schema_problems_are_all_listed():
    """Every schema problem is listed, sorted by line, each with its path."""
    text = (
        "name: ''\ntrigger: {use: Bad Id}\nsteps:\n"
        "  - {id: a, use: ghl.notes.create, retry: 3}\n"
        "on_error: {then: explode}\nenv: [lower_case]\n"
    )
    with pytest.raises(DocumentError) as exc:
        parse_recipe(text, file="t.yaml")
    assert _problems(exc) == [
        "t.yaml:1:7: name: '' should be non-empty",
        "t.yaml:2:16: trigger.use: 'Bad Id' is not a valid id "
        "[ids are lower case words joined by dots, e.g. ghl.contacts.get]",
        "t.yaml:4:43: steps[0].retry: unknown field 'retry'",
        "t.yaml:5:18: on_error.then: 'explode' is not one of ['dead_letter', 'stop']",
        "t.yaml:6:7: env[0]: 'lower_case' is not a valid environment variable name "
        "[use capital letters, digits and _ (e.g. RECIPE_SUPPORT_EMAIL)]",
    ]


def test_recipe_not_a_mapping():
    """A YAML list instead of a recipe is refused in plain words."""
    with pytest.raises(DocumentError) as exc:
        parse_recipe("- a\n- b\n", file="t.yaml")
    assert _problems(exc) == [
        "t.yaml:1:1: a recipe must be a mapping with name, trigger and steps; got a list "
        "[see docs/recipes.md]"
    ]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("alias_bomb", "2:4: YAML anchors (&a) are not allowed"),
        ("python_tag", "7:11: YAML tags (!!python/object/apply:os.system) are not allowed"),
        ("duplicate_key", "9:7: duplicate key 'contactId' (first defined on line 8)"),
        ("too_deep", "3:68: nesting deeper than 64 levels"),
    ],
)
def test_recipe_unsafe_yaml_is_refused(name, expected):
    """Alias bombs, Python tags, duplicate keys and deep nesting are refused while reading."""
    path = BROKEN / f"{name}.yaml"
    with pytest.raises(DocumentError) as exc:
        load_recipe(path)
    assert _problems(exc) == [f"{path}:{expected}"]


def test_recipe_python_tag_runs_nothing(tmp_path):
    """A !!python/object/apply tag is refused before anything is constructed or run."""
    marker = tmp_path / "pwned"
    path = tmp_path / "r.yaml"
    path.write_text(f'name: !!python/object/apply:os.system ["touch {marker}"]\n')
    with pytest.raises(DocumentError):
        load_recipe(path)
    assert not marker.exists()


def test_recipe_oversized_file_is_refused(tmp_path):
    """A file over 1 MiB is refused without being parsed."""
    path = tmp_path / "big.yaml"
    path.write_text("name: x\ndescription: " + json.dumps("y" * (1024 * 1024)) + "\n")
    with pytest.raises(DocumentError) as exc:
        load_recipe(path)
    assert _problems(exc) == [f"{path}: file is 1048600 bytes; the limit is 1048576"]


def test_recipe_missing_file_is_a_document_error(tmp_path):
    """A missing file is a DocumentError naming it, not an OSError."""
    path = tmp_path / "nope.yaml"
    with pytest.raises(DocumentError) as exc:
        load_recipe(path)
    assert _problems(exc) == [f"{path}: cannot read: No such file or directory"]


def test_recipe_read_recipe_keeps_going_after_bad_expressions():
    """read_recipe builds what it can: good values stay compiled, bad ones are reported."""
    text = (
        "name: t\ntrigger: {use: ghl.contacts.created}\nsteps:\n"
        "  - id: a\n    use: ghl.notes.create\n"
        '    with: {contactId: "{{ trigger.id }}", body: "{{ trigger.name | lowr }}"}\n'
    )
    draft = read_recipe(load_yaml(text, file="t.yaml"), source=text)
    assert draft.recipe is not None
    assert [str(p) for p in draft.problems] == [
        "t.yaml:6:68: steps[0].with.body: unknown filter 'lowr' [did you mean 'lower'?]"
    ]
    assert draft.broken == frozenset({("steps", 0, "with", "body")})
    rendered = draft.recipe.steps[0].with_.render({"trigger": {"id": "c1"}})
    assert rendered == {"contactId": "c1", "body": None}
