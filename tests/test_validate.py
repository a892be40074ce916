"""Static recipe checks: the broken-recipe corpus (exact message and line), good recipes, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import ROOT, run_cli

from connector import hookimpl
from connector.catalog import build_catalog
from connector.hookspecs import Trigger
from connector.plugins import get_plugin_manager
from connector.recipes.checker import validate_file, validate_text

DATA = ROOT / "tests" / "data" / "recipes"
BROKEN = DATA / "broken"
GOOD = DATA / "good"

# Every problem each broken recipe must produce, exactly and in order: LINE:COL: PATH: MESSAGE [HINT]
EXPECTED: dict[str, list[str]] = {
    "alias_bomb": ["2:4: YAML anchors (&a) are not allowed"],
    "bad_on_error": [
        "8:32: steps[0].on_error.then: 'stop' is not one of ['fail', 'continue', 'dead_letter']",
        "9:19: on_error.retry: -1 is less than the minimum of 0",
    ],
    "bad_step_id": [
        "5:9: steps[0].id: 'get-contact' is not a valid name "
        "[use letters, digits and _ only, not starting with a digit (e.g. get_contact)]"
    ],
    "block_expression_error": ["11:41: steps[0].with.body: unexpected '}}'"],
    "duplicate_key": ["9:7: duplicate key 'contactId' (first defined on line 8)"],
    "duplicate_step_id": [
        "8:9: steps[1].id: duplicate step id 'contact' (first used on line 5) "
        "[give every step its own id]"
    ],
    "empty": [
        "1:1: a recipe must be a mapping with name, trigger and steps; got an empty file "
        "[see docs/recipes.md]"
    ],
    "env_not_allowed": [
        "10:24: steps[0].with.body: environment variable 'OWNER_EMAIL' is not allowed "
        "[allowed: RECIPE_SUPPORT_EMAIL]"
    ],
    "expression_syntax": ["9:20: steps[0].with.body: '{{' is never closed by '}}'"],
    "filter_arguments": ["9:33: steps[0].with.body: filter 'lower' takes 0 argument(s), got 1"],
    "for_each_not_one_expression": [
        "7:15: steps[0].for_each: for_each must be exactly one expression, got "
        "'tags: {{ trigger.tags }}' [write it as \"{{ trigger.tags }}\": one expression giving a list]"
    ],
    "forward_reference": [
        "9:17: steps[0].with.body: step 'contact' runs after this one "
        "[a step can only read the steps before it]"
    ],
    "if_not_one_expression": [
        "7:9: steps[0].if: if must be exactly one expression, got "
        "'{{ trigger.email }} and {{ trigger.phone }}' "
        '[write it as "{{ trigger.email }}"; combine conditions inside one {{ }} with and/or]'
    ],
    "item_in_for_each": [
        "7:19: steps[0].for_each: for_each cannot read 'item': the list comes first"
    ],
    "reserved_env": [
        "4:29: env[1]: environment variable 'CONNECTOR_TOKEN' is reserved for the connector "
        "itself [CONNECTOR_* variables may hold tokens and keys; recipes cannot read them]"
    ],
    "item_outside_for_each": [
        "9:18: steps[0].with.tags[0]: 'item' exists only inside a step with for_each"
    ],
    "list_without_index": [
        "9:17: steps[0].with.body: trigger.customFields is a list: it has no field 'value' "
        "(payload of ghl.contacts.created) [pick an item first, e.g. [0]]"
    ],
    "many_mistakes": [
        "6:10: steps[0].use: unknown action 'ghl.contacts.gt' [did you mean 'ghl.contacts.get'?]",
        "7:27: steps[0].with.contactId: trigger has no field 'idd' "
        "(payload of ghl.contacts.created) [did you mean 'id'?]",
        "12:33: steps[1].with.body: unknown filter 'lowr' [did you mean 'lower'?]",
        "13:15: steps[1].with.pinned: 'yes' is not of type 'boolean'",
    ],
    "missing_name": ["1:1: name: required field is missing"],
    "missing_required_input": [
        "8:7: steps[0].with.body: missing required input 'body' for ghl.notes.create"
    ],
    "no_steps": ["4:8: steps: [] should be non-empty"],
    "python_tag": ["7:11: YAML tags (!!python/object/apply:os.system) are not allowed"],
    "self_reference": ["7:27: steps[0].with.contactId: step 'contact' cannot read its own output"],
    "shape_mistakes": [
        "2:10: trigger: 'ghl.contacts.created' is not of type 'object' "
        "[write it as: trigger: {use: ghl.contacts.created}]",
        "4:5: steps[0]: 'ghl.contacts.get' is not of type 'object' "
        "[each step is a mapping with at least id and use]",
        "7:10: steps[1].with: None is not of type 'object' "
        "[give inputs as name: value lines under with, or remove with]",
    ],
    "too_deep": ["3:68: nesting deeper than 64 levels"],
    "trigger_option_reads_event": [
        "5:21: trigger.with.locationId: trigger options cannot read 'trigger.locationId' "
        "[only vars and env exist before the trigger fires]"
    ],
    "unknown_action": [
        "6:10: steps[0].use: unknown action 'ghl.contacts.gte' [did you mean 'ghl.contacts.get'?]"
    ],
    "unknown_filter": ["9:33: steps[0].with.body: unknown filter 'lowr' [did you mean 'lower'?]"],
    "unknown_input": [
        "8:7: steps[0].with.body: missing required input 'body' for ghl.notes.create",
        "9:12: steps[0].with.bdy: unknown input 'bdy' for ghl.notes.create [did you mean 'body'?]",
    ],
    "unknown_output_field": [
        "12:17: steps[1].with.body: steps.contact.contact has no field 'phon' "
        "(output of ghl.contacts.get) [did you mean 'phone'?]"
    ],
    "unknown_step": [
        "11:22: steps[1].with.contactId: unknown step 'contcat' [did you mean 'contact'?]"
    ],
    "unknown_top_field": [
        "1:1: steps: required field is missing",
        "5:3: stpes: unknown field 'stpes' [did you mean 'steps'?]",
    ],
    "unknown_trigger": [
        "3:8: trigger.use: unknown trigger 'ghl.contacts.craeted' "
        "[did you mean 'ghl.contacts.created'?]"
    ],
    "unknown_trigger_field": [
        "9:27: steps[0].with.body: trigger has no field 'emial' "
        "(payload of ghl.contacts.created) [did you mean 'email'?]"
    ],
    "unknown_trigger_option": [
        "5:17: trigger.with.locationID: unknown option 'locationID' for trigger "
        "ghl.contacts.created [did you mean 'locationId'?]"
    ],
    "unknown_var": [
        "11:18: steps[0].with.tags[0]: vars has no field 'welcome_tg' [did you mean 'welcome_tag'?]"
    ],
    "wrong_literal_type": ["11:18: steps[0].with.completed: 'no' is not of type 'boolean'"],
    "yaml_syntax": ["7:23: invalid YAML: this quoted value is never closed [add the closing quote]"],
}


@pytest.fixture(scope="module")
def catalog():
    """The built-in catalog, without entry points."""
    return build_catalog(get_plugin_manager(entry_points=False))


def _lines(report, path: Path) -> list[str]:
    prefix = f"{path}:"
    return [str(p).removeprefix(prefix) for p in report.problems]


def test_validate_corpus_covers_every_broken_file():
    """Each file under broken/ has its expected problems listed here, and no entry is stale."""
    assert sorted(p.stem for p in BROKEN.glob("*.yaml")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_validate_broken_recipe_reports_exact_problems(name, catalog):
    """Each broken recipe yields exactly its expected problems, at the expected line and column."""
    path = BROKEN / f"{name}.yaml"
    report = validate_file(path, catalog)
    assert not report.ok
    assert _lines(report, path) == EXPECTED[name]
    assert all(p.location.file == str(path) for p in report.problems)


@pytest.mark.parametrize(
    "name",
    [
        "contact_note",
        "deprecated_action",
        "upsert_without_location",
        "tag_each",
    ],
)
def test_validate_good_recipe_is_ok(name, catalog):
    """The good recipes have no problem at all."""
    report = validate_file(GOOD / f"{name}.yaml", catalog)
    assert report.problems == ()
    assert report.ok and report.recipe is not None


def test_validate_good_recipes_are_all_listed():
    """No good recipe escapes the test above."""
    found = sorted(p.stem for p in GOOD.glob("*.yaml"))
    assert found == ["contact_note", "deprecated_action", "tag_each", "upsert_without_location"]


def test_validate_docs_recipes_examples_are_valid(catalog):
    """Every complete recipe shown in docs/recipes.md passes validate."""
    import re

    text = (ROOT / "docs" / "recipes.md").read_text()
    blocks = [b for b in re.findall(r"```yaml\n(.*?)```", text, re.S) if b.startswith("name:")]
    assert blocks
    for block in blocks:
        report = validate_text(block, catalog, file="docs/recipes.md")
        assert report.problems == (), block


def test_validate_location_param_is_not_missing(catalog):
    """ghl.contacts.upsert requires locationId, but the connection fills it: no problem."""
    assert catalog.actions["ghl.contacts.upsert"].location_param == "locationId"
    assert "locationId" in catalog.actions["ghl.contacts.upsert"].input_schema["required"]
    report = validate_file(GOOD / "upsert_without_location.yaml", catalog)
    assert report.ok


def test_validate_lists_scopes_of_trigger_and_steps(catalog):
    """The report names the scopes the trigger and every step need, sorted and once each."""
    report = validate_file(GOOD / "contact_note.yaml", catalog)
    assert report.scopes == ("contacts.readonly", "contacts.write")


def test_validate_deprecated_action_is_a_warning(catalog):
    """A deprecated action is a warning pointing to its replacement, not a problem."""
    path = GOOD / "deprecated_action.yaml"
    report = validate_file(path, catalog)
    assert report.ok
    assert [str(w) for w in report.warnings] == [
        f"{path}:6:10: steps[0].use: action 'ghl.contacts.list' is deprecated "
        "[use 'ghl.contacts.search' instead]"
    ]


def test_validate_expression_in_vars_is_a_warning(catalog):
    """vars are not expressions: a {{ }} in one is kept as text, and validate says so."""
    text = (
        "name: t\ntrigger: {use: ghl.contacts.created}\nvars:\n  who: '{{ trigger.name }}'\n"
        "steps:\n  - {id: a, use: ghl.notes.create, with: {contactId: x, body: '{{ vars.who }}'}}\n"
    )
    report = validate_text(text, catalog, file="t.yaml")
    assert report.ok
    assert [str(w) for w in report.warnings] == [
        "t.yaml:4:8: vars.who: vars are plain values: this {{ }} is kept as text "
        "[write the expression where the value is used]"
    ]


def test_validate_expression_values_skip_the_type_check(catalog):
    """A field holding an expression is not type-checked; the literal next to it is."""
    text = (
        "name: t\ntrigger: {use: ghl.contacts.created}\nsteps:\n"
        "  - id: task\n    use: ghl.tasks.create\n    with:\n"
        '      contactId: "{{ trigger.id }}"\n      title: "{{ trigger.name }}"\n'
        '      dueDate: "{{ trigger.dateAdded }}"\n      completed: "{{ trigger.dnd }}"\n'
        "      assignedTo: 42\n"
    )
    report = validate_text(text, catalog, file="t.yaml")
    assert [str(p) for p in report.problems] == [
        "t.yaml:11:19: steps[0].with.assignedTo: 42 is not of type 'string'"
    ]


class _TestTriggers:
    """A plugin adding a trigger with options, an open payload and its own scope."""

    @hookimpl
    def connector_register_triggers(self):
        return [
            Trigger(
                id="ghl.things.happened",
                app="ghl",
                title="Test trigger",
                kind="webhook",
                payload_schema={
                    "type": "object",
                    "properties": {
                        "thing": {"type": "object", "properties": {"name": {"type": "string"}}},
                        "extra": {"type": "object"},
                    },
                },
                options_schema={
                    "type": "object",
                    "properties": {"limit": {"type": "integer"}},
                    "additionalProperties": False,
                },
                scopes=("things.readonly",),
            )
        ]


@pytest.fixture(scope="module")
def plugin_catalog():
    """The built-in catalog plus the test trigger, registered through the hook."""
    pm = get_plugin_manager(entry_points=False)
    pm.register(_TestTriggers(), name="test-triggers")
    return build_catalog(pm)


def _thing_recipe(body: str, options: str = "{}") -> str:
    return (
        f"name: t\ntrigger:\n  use: ghl.things.happened\n  with: {options}\n"
        f"vars: {{limit: 5}}\nsteps:\n  - id: note\n    use: ghl.notes.create\n"
        f'    with: {{contactId: abc, body: "{body}"}}\n'
    )


def test_validate_plugin_trigger_paths_follow_its_payload(plugin_catalog):
    """Paths into a plugin trigger's payload are checked against its schema, open parts allowed."""
    body = "{{ trigger.thing.name }} {{ trigger.extra.any.depth }}"
    ok = validate_text(_thing_recipe(body), plugin_catalog, file="t.yaml")
    assert ok.problems == ()
    assert ok.scopes == ("contacts.write", "things.readonly")
    bad = validate_text(_thing_recipe("{{ trigger.thing.nmae }}"), plugin_catalog, file="t.yaml")
    assert [str(p) for p in bad.problems] == [
        "t.yaml:9:38: steps[0].with.body: trigger.thing has no field 'nmae' "
        "(payload of ghl.things.happened) [did you mean 'name'?]"
    ]


def test_validate_trigger_options_are_checked(plugin_catalog):
    """Trigger options are checked against the trigger's options schema; vars may feed them."""
    good = validate_text(_thing_recipe("x", "{limit: '{{ vars.limit }}'}"), plugin_catalog)
    assert good.problems == ()
    bad = validate_text(_thing_recipe("x", "{limit: many}"), plugin_catalog, file="t.yaml")
    assert [str(p) for p in bad.problems] == [
        "t.yaml:4:17: trigger.with.limit: 'many' is not of type 'integer'"
    ]


def test_validate_item_paths_follow_the_for_each_list(catalog):
    """{{ item }} fields are checked against the items of the for_each list's schema."""
    text = (
        "name: t\ntrigger: {use: ghl.contacts.created}\nsteps:\n"
        "  - id: note\n    use: ghl.notes.create\n"
        '    for_each: "{{ trigger.customFields }}"\n'
        '    with: {contactId: "{{ trigger.id }}", body: "{{ item.vlue }}"}\n'
    )
    report = validate_text(text, catalog, file="t.yaml")
    assert [str(p) for p in report.problems] == [
        "t.yaml:7:53: steps[0].with.body: item has no field 'vlue' "
        "(items of trigger.customFields) [did you mean 'value'?]"
    ]


def test_cli_validate_reports_problems_and_exits_1():
    """`python -m connector validate` prints every problem as file:line:col and exits 1."""
    names = ["many_mistakes", "unknown_trigger_field", "duplicate_key"]
    paths = [str((BROKEN / f"{n}.yaml").relative_to(ROOT)) for n in names]
    result = run_cli("validate", *paths)
    assert result.status == 1, result
    expected = [
        f"{path}:{line}" for path, n in zip(paths, names, strict=True) for line in EXPECTED[n]
    ]
    assert result.stdout.splitlines() == expected
    assert result.stderr.splitlines() == [
        f"note: {paths[2]}: fix the problems above to have ids, inputs and expressions checked too",
        "6 problem(s) in 3 of 3 recipe(s)",
    ]


def test_cli_validate_ok_summary_and_exit_0():
    """A good recipe gets one OK line with its trigger, step count and scopes; exit 0."""
    path = str((GOOD / "contact_note.yaml").relative_to(ROOT))
    result = run_cli("validate", path)
    assert result.status == 0, result
    assert result.stdout.splitlines() == [
        f"OK {path}: ghl.contacts.created -> 2 step(s); scopes: contacts.readonly contacts.write"
    ]


def test_cli_validate_json_output():
    """--json gives problems and warnings as data, plus the scopes, and still exits 1 on problems."""
    bad = str((BROKEN / "unknown_action.yaml").relative_to(ROOT))
    old = str((GOOD / "deprecated_action.yaml").relative_to(ROOT))
    result = run_cli("validate", "--json", bad, old)
    assert result.status == 1, result
    data = json.loads(result.stdout)
    assert data["ok"] is False
    assert data["problems"] == [
        {
            "file": bad,
            "line": 6,
            "column": 10,
            "path": "steps[0].use",
            "message": "unknown action 'ghl.contacts.gte'",
            "hint": "did you mean 'ghl.contacts.get'?",
        }
    ]
    assert [w["message"] for w in data["warnings"]] == ["action 'ghl.contacts.list' is deprecated"]
    assert data["scopes"] == ["contacts.readonly"]
    assert [(r["ok"], r["complete"]) for r in data["recipes"]] == [(False, True), (True, True)]


def test_cli_validate_never_shows_a_traceback(tmp_path):
    """Every broken recipe, a missing file, a binary file and a huge file: no traceback, exit 1."""
    (tmp_path / "binary.yaml").write_bytes(b"\xff\xfe\x00name: x")
    (tmp_path / "huge.yaml").write_text("name: " + "x" * (1024 * 1024 + 1))
    files = [str(p) for p in sorted(BROKEN.glob("*.yaml"))]
    files += [str(tmp_path / n) for n in ("binary.yaml", "huge.yaml", "missing.yaml")]
    result = run_cli("validate", *files)
    assert result.status == 1
    assert "Traceback" not in result.stdout + result.stderr
    out = result.stdout.splitlines()
    assert f"{tmp_path / 'binary.yaml'}: not UTF-8 text (invalid start byte)" in out
    assert f"{tmp_path / 'huge.yaml'}: file is 1048583 bytes; the limit is 1048576" in out
    assert f"{tmp_path / 'missing.yaml'}: cannot read: No such file or directory" in out


_SCHEMA = {
    "$defs": {"person": {"type": "object", "properties": {"name": {"type": "string"}}}},
    "type": "object",
    "properties": {
        "owner": {"$ref": "#/$defs/person"},
        "either": {"anyOf": [{"$ref": "#/$defs/person"}, {"type": "null"}]},
        "both": {"allOf": [{"properties": {"a": {}}}, {"properties": {"b": {"type": "integer"}}}]},
        "map": {"type": "object", "additionalProperties": {"type": "string"}},
        "pair": {"type": "array", "prefixItems": [{"type": "string"}, {"$ref": "#/$defs/person"}]},
        "anything": {},
        "checked": {
            "type": "object",
            "properties": {"a": {"type": "string"}},
            "anyOf": [{"required": ["a"]}, {"required": ["b"]}],
        },
    },
}


@pytest.mark.parametrize(
    ("segments", "expected"),
    [
        (["owner", "name"], {"type": "string"}),
        (["owner", "nmae"], "0+1: has no field 'nmae' [did you mean 'name'?]"),
        (["either", "name"], {"type": "string"}),
        (["either", "x"], "0+1: has no field 'x' [known fields: name]"),
        (["both", "b"], {"type": "integer"}),
        (["both", "c"], "0+1: has no field 'c' [known fields: a, b]"),
        (["map", "any key"], {"type": "string"}),
        (["pair", 1, "name"], {"type": "string"}),
        (["pair", "name"], "0+1: is a list: it has no field 'name' [pick an item first, e.g. [0]]"),
        (["owner", "name", "x"], "0+2: is text: it has no field 'x'"),
        (["owner", 0], "0+1: is an object: it has no index 0"),
        (["anything", "deep", 3, "er"], None),
        (["checked", "a"], {"type": "string"}),
        (["checked", "b"], "0+1: has no field 'b' [known fields: a]"),
        (
            ["nope"],
            "0+0: has no field 'nope' "
            "[known fields: anything, both, checked, either, map, owner, pair]",
        ),
    ],
)
def test_validate_schemapath_follows_json_schema(segments, expected):
    """Paths follow $ref, anyOf/allOf, additionalProperties and prefixItems; misses say why."""
    from connector.documents.schemapath import Miss, follow

    found = follow(_SCHEMA, segments)
    if isinstance(found, Miss):
        found = f"0+{found.depth}: {found.message}" + (f" [{found.hint}]" if found.hint else "")
    assert found == expected


HEAD = "name: t\ntrigger: {use: ghl.contacts.created}\nsteps:\n  - id: a\n    use: ghl.contacts.get\n"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "name: t\ntrigger: {use: ghl.contacts.created\nsteps: []\n",
            "t.yaml:2:10: invalid YAML: this '{' is never closed by '}' [close it, or quote a"
            " value that starts with a character YAML reserves ({ [ * & ! % @ `); an"
            ' expression goes in quotes: "{{ ... }}"]',
        ),
        (
            "name: t\n  trigger: x\n",
            "t.yaml:2:10: invalid YAML: a ':' where no key can start [indent this line like the"
            " keys above it, or quote a value that contains ': ']",
        ),
        (
            "name: t\n\tsteps: []\n",
            "t.yaml:2:1: invalid YAML: a tab character [YAML indents with spaces only]",
        ),
        (
            HEAD + "    with:\n      contactId: {{ trigger.id }}\n",
            "t.yaml:7:18: an unquoted '{{': YAML reads it as a mapping [put an expression that"
            ' is the whole value in quotes: "{{ trigger.id }}"]',
        ),
        (
            HEAD + "    retry: 3\n    with: {contactId: \"{{ trigger.id }}\"}\n",
            "t.yaml:6:12: steps[0].retry: unknown field 'retry' [retry goes under on_error, on"
            " the step or the recipe: on_error: {retry: 3}]",
        ),
        (
            HEAD + '    with: {contactId: "{{ trigger.id !"}\n',
            "t.yaml:6:24: steps[0].with.contactId: '{{' is never closed by '}}'",
        ),
    ],
    ids=["unclosed_flow", "indented_key", "tab", "unquoted_expression", "step_retry",
         "never_closed"],
)
def test_validate_yaml_and_placement_mistakes_in_plain_words(text: str, expected: str,
                                                             tmp_path: Path) -> None:
    """Syntax errors say where the problem started and how to fix it, not PyYAML's words;
    a step-level retry says where it goes; '{{' without '}}' says so whatever follows it."""
    path = tmp_path / "t.yaml"
    path.write_text(text)
    result = run_cli("validate", "t.yaml", cwd=tmp_path)
    assert result.status == 1
    assert result.stdout.splitlines() == [expected]


def test_validate_a_folder_checks_every_recipe_in_it(tmp_path: Path) -> None:
    """`validate DIR` checks each *.yaml/*.yml of the folder, as serve loads them; an empty
    folder is one problem; the shipped recipes/ folder passes."""
    (tmp_path / "a.yaml").write_text(HEAD + '    with: {contactId: "{{ trigger.id }}"}\n')
    (tmp_path / "b.yml").write_text(HEAD + "    with: {contactId: 5}\n")
    (tmp_path / "notes.txt").write_text("not a recipe")
    result = run_cli("validate", str(tmp_path))
    assert result.status == 1, result
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"OK {tmp_path / 'a.yaml'}: ")
    assert lines[1] == f"{tmp_path / 'b.yml'}:6:23: steps[0].with.contactId: 5 is not of type 'string'"
    assert len(lines) == 2
    empty = tmp_path / "empty"
    empty.mkdir()
    result = run_cli("validate", str(empty))
    assert result.status == 1
    assert result.stdout.strip() == f"{empty}: no recipe (*.yaml) in this folder"
    shipped = run_cli("validate", str(ROOT / "recipes"))
    assert shipped.status == 0, shipped
    checked = [line for line in shipped.stdout.splitlines() if line.startswith("OK ")]
    assert len(checked) == len(list((ROOT / "recipes").glob("*.yaml")))


def test_validate_env_reads_only_recipe_variables_or_the_operators_list(tmp_path: Path) -> None:
    """A recipe listing GHL_CLIENT_SECRET in `env:` is refused at validate time, saying how to
    fix it; RECIPE_* names pass, and so does a name $CONNECTOR_RECIPE_ENV allows."""
    path = tmp_path / "t.yaml"
    path.write_text(
        "name: t\ntrigger: {use: ghl.contacts.created}\nenv: [RECIPE_SITE, GHL_CLIENT_SECRET]\n"
        "steps:\n  - id: a\n    use: ghl.notes.create\n"
        '    with: {contactId: "{{ trigger.id }}", body: "{{ env.GHL_CLIENT_SECRET }}"}\n'
    )
    refused = run_cli("validate", str(path))
    assert refused.status == 1
    assert refused.stdout.splitlines() == [
        f"{path}:3:20: env[1]: environment variable 'GHL_CLIENT_SECRET' is not allowed: recipes"
        " read only RECIPE_* variables and those $CONNECTOR_RECIPE_ENV lists [rename it"
        " RECIPE_GHL_CLIENT_SECRET, or allow it with CONNECTOR_RECIPE_ENV=GHL_CLIENT_SECRET]"
    ]
    allowed = run_cli("validate", str(path), env={"CONNECTOR_RECIPE_ENV": "OTHER, GHL_CLIENT_SECRET"})
    assert allowed.status == 0, allowed
