"""Safe YAML loading: positions, and refusal of dangerous or ambiguous YAML."""

from __future__ import annotations

import pytest

from connector.documents.document import load_yaml, load_yaml_file
from connector.errors import DocumentError


def test_document_positions_are_line_and_column():
    """Every value's path maps to its 1-based line and column."""
    doc = load_yaml("a: 1\nb:\n  - x\n  - {y: 2}\n", file="f.yaml")
    assert doc.data == {"a": 1, "b": ["x", {"y": 2}]}
    assert str(doc.locate(("b", 1, "y"))) == "f.yaml:4:9: b[1].y"
    assert str(doc.locate(("b", 1, "missing"))) == "f.yaml:4:5: b[1].missing"


def test_document_timestamps_stay_strings():
    """Dates are not turned into Python objects: the data stays plain JSON."""
    assert load_yaml("d: 2024-01-02\n").data == {"d": "2024-01-02"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a: &x 1\nb: *x\n", "t.yaml:1:4: YAML anchors (&x) are not allowed"),
        (
            "a: !!python/object:os.system 1\n",
            "t.yaml:1:4: YAML tags (!!python/object:os.system) are not allowed",
        ),
        ("a: !custom 1\n", "t.yaml:1:4: YAML tags (!custom) are not allowed"),
        ("a: 1\nb: 2\na: 3\n", "t.yaml:3:1: duplicate key 'a' (first defined on line 1)"),
        ("a: [\n", "t.yaml:2:1: invalid YAML: expected the node content, but found '<stream end>'"),
        ("? [a]\n: 1\n", "t.yaml:1:3: mapping keys must be plain text"),
    ],
)
def test_document_refuses(text, message):
    """Aliases, anchors, tags, duplicate keys and broken YAML are refused at their line."""
    with pytest.raises(DocumentError) as info:
        load_yaml(text, file="t.yaml")
    assert str(info.value) == message


def test_document_alias_bomb_refused_quickly():
    """A billion-laughs document of a few hundred bytes is refused before any expansion."""
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    text = "\n".join(lines) + "\n"
    assert len(text) < 1000
    with pytest.raises(DocumentError, match=r"<input>:1:4: YAML anchors \(&a\) are not allowed"):
        load_yaml(text)  # refused at the first anchor: nothing is ever expanded


def test_document_size_and_depth_limits():
    """Files over the size limit and nesting past the depth limit are refused."""
    with pytest.raises(DocumentError, match=r"file is 2000 bytes; the limit is 1000"):
        load_yaml("a" * 2000, max_bytes=1000)
    with pytest.raises(DocumentError, match=r"nesting deeper than 5 levels"):
        load_yaml("[" * 10 + "]" * 10, max_depth=5)


def test_document_missing_file_names_it(tmp_path):
    """A file that cannot be read is a DocumentError naming the file."""
    with pytest.raises(DocumentError, match=r"nope\.yaml: cannot read"):
        load_yaml_file(tmp_path / "nope.yaml")


def test_document_not_utf8():
    """Bytes that are not UTF-8 are refused clearly."""
    with pytest.raises(DocumentError, match="not UTF-8"):
        load_yaml(b"a: \xff\xfe\n", file="x.yaml")


def test_validator_answers_the_same_before_and_after_it_compiles_its_fast_check():
    """A validator checks with jsonschema alone at first, compiles its fastjsonschema check
    after its 64th use, and answers the same all along; a schema fastjsonschema cannot take
    stays with jsonschema."""
    from connector.documents.schema import compile_validator

    schema = {"type": "object", "required": ["id"],
              "properties": {"id": {"type": "string", "minLength": 2}}}  # fmt: skip
    cases = [({"id": "ab"}, True), ({"id": "a"}, False), ({}, False), ([], False)]
    validator = compile_validator(schema)
    answers = [[validator.is_valid(doc) for doc, _ in cases] for _ in range(40)]
    assert validator._fast is not None  # 160 uses: compiled
    assert all(row == [ok for _, ok in cases] for row in answers)
    few = compile_validator(schema)
    assert [few.is_valid(doc) for doc, _ in cases] == [ok for _, ok in cases]
    assert few._fast is None  # 4 uses: jsonschema alone
    newer = compile_validator({"type": "array", "prefixItems": [{"type": "integer"}]})
    assert [newer.is_valid([1]) for _ in range(70)] == [True] * 70
    assert newer.is_valid(["x"]) is False and newer._fast is None
