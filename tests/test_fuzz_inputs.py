"""The parsers of outside input (JSON payloads, YAML documents, ``call --input``) give a clean
answer or a clean DocumentError for anything (hypothesis), and the commands that read such input
(``call``, ``run``, ``serve``) or a read-only state folder end with one ``error:`` line, never a
traceback. Real processes, real files."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import ROOT, run_cli
from hypothesis import given, settings
from hypothesis import strategies as st

from connector.cli.call import read_input
from connector.documents.document import load_yaml
from connector.documents.payload import load_json
from connector.errors import DocumentError

RECIPE = ROOT / "recipes" / "new_contact_task.yaml"
HUGE = "1" * 5000
DEEP = "[" * 3000 + "]" * 3000

json_like = st.text(alphabet=st.sampled_from(list('{}[]:,"\\ 0123456789.eE+-truefalsnNIfiy\n')),
                    max_size=200)
nested = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                 max_size=3),
    max_leaves=20).map(json.dumps)


def clean(parse: object, *args: object, **kwargs: object) -> object:
    """Run a parser; a DocumentError is a clean refusal, anything else escapes the test."""
    try:
        return parse(*args, **kwargs)  # type: ignore[operator]
    except DocumentError as exc:
        assert "\n" not in str(exc) and str(exc)
        return exc


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=200) | json_like.map(str.encode) | nested.map(str.encode))
def test_fuzz_load_json_answers_or_refuses_cleanly(data: bytes) -> None:
    """Any bytes: a value that survives a round trip through UTF-8 JSON, or a DocumentError."""
    value = clean(load_json, data, source="body")
    if not isinstance(value, DocumentError):
        json.dumps(value, allow_nan=False).encode("utf-8")


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=200) | json_like | nested)
def test_fuzz_load_yaml_answers_or_refuses_cleanly(text: str) -> None:
    """Any text as a YAML document: a Document or a DocumentError."""
    clean(load_yaml, text, file="fuzz.yaml")


@settings(max_examples=200, deadline=None)
@given(text=(st.text(max_size=200) | json_like | nested).filter(
    lambda t: not t.startswith("@") and t != "-"))  # files and stdin: tested below
def test_fuzz_call_input_answers_or_refuses_cleanly(text: str) -> None:
    """Any ``--input`` text: an object or a DocumentError naming ``--input``."""
    value = clean(read_input, text)
    assert isinstance(value, dict | DocumentError)
    if isinstance(value, DocumentError):
        assert str(value).startswith("--input")


@pytest.mark.parametrize(("text", "message"), [
    ('{"a": ' + HUGE + "}", "--input:1:7: an integer of 5000 digits; the limit is 100"),
    ('{"a":\n  -' + "9" * 101 + "}", "--input:2:3: an integer of 101 digits; the limit is 100"),
    (DEEP, "--input: nesting deeper than 64 levels"),
    ('{"a": ' + "[" * 65 + "]" * 65 + "}", "--input: nesting deeper than 64 levels"),
    ('{"a": Infinity}', "--input:1:7: Infinity is not JSON"),
])
def test_payload_limits_name_the_place(text: str, message: str) -> None:
    """Each limit's refusal says where (line and column when it has one)."""
    with pytest.raises(DocumentError) as caught:
        read_input(text)
    assert str(caught.value) == message


def test_document_refuses_huge_yaml_integers_at_their_line() -> None:
    """A YAML integer of thousands of digits is refused at its line (no ValueError)."""
    with pytest.raises(DocumentError, match=r"^r\.yaml:2:5: an integer of 5000 characters"):
        load_yaml(f"a: 1\nb: [{HUGE}]\n", file="r.yaml")


def one_error_line(done: object) -> str:
    assert done.status == 1, done  # type: ignore[attr-defined]
    err = done.stderr  # type: ignore[attr-defined]
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    return lines[0]


@pytest.mark.parametrize("content", ['{"contactId": ' + HUGE + "}", DEEP,
                                     '{"a": 1}'.encode("utf-16").decode("latin-1")],
                         ids=["huge-int", "deep", "utf-16"])
def test_call_input_file_errors_are_one_line(tmp_path: Path, content: str) -> None:
    """``call --input @file`` with a huge integer, deep nesting or UTF-16: one error line."""
    path = tmp_path / "input.json"
    path.write_bytes(content.encode("latin-1") if content.startswith("\xff") else
                     content.encode())
    line = one_error_line(run_cli("call", "ghl.contacts.get", "--input", f"@{path}",
                                  "--dry-run"))
    assert line.startswith(f"error: {path}")


@pytest.mark.parametrize("content", ['{"type": "ContactCreate", "id": ' + HUGE + "}", DEEP],
                         ids=["huge-int", "deep"])
def test_run_event_file_errors_are_one_line(tmp_path: Path, content: str) -> None:
    """``run --event`` with a huge integer or deep nesting: one error line naming the file."""
    event = tmp_path / "event.json"
    event.write_text(content)
    line = one_error_line(run_cli("run", str(RECIPE), "--event", str(event), "--dry-run"))
    assert line.startswith(f"error: {event}:1:")


@pytest.mark.parametrize("extra", [f"vars:\n  big: {HUGE}\n", f"vars:\n  deep: {DEEP}\n"],
                         ids=["huge-int", "deep"])
def test_serve_bad_recipe_numbers_are_one_line(tmp_path: Path, extra: str) -> None:
    """``serve`` over a recipe with a huge integer or deep nesting refuses in one line."""
    folder = tmp_path / "recipes"
    folder.mkdir()
    text = RECIPE.read_text().replace("vars:\n", extra.split("\n", 1)[0] + "\n"
                                      + extra.split("\n", 1)[1], 1)
    (folder / "bad.yaml").write_text(text)
    line = one_error_line(run_cli("serve", "--recipes", str(folder), "--port", "0",
                                  env={"CONNECTOR_TOKEN": "t", "CONNECTOR_LOCATION_ID": "L"},
                                  timeout=60))
    assert f"{folder / 'bad.yaml'}:" in line


# -- a read-only state folder --------------------------------------------------------------------


@contextlib.contextmanager
def read_only(path: Path) -> Iterator[None]:
    """Make ``path`` unwritable even for root (the immutable flag), else by its mode."""
    if os.geteuid() != 0:
        mode = path.stat().st_mode
        path.chmod(0o555 if path.is_dir() else 0o444)
        try:
            yield
        finally:
            path.chmod(mode)
        return
    chattr = shutil.which("chattr")
    if chattr is None or subprocess.run([chattr, "+i", str(path)],
                                        capture_output=True).returncode != 0:
        pytest.skip("running as root without chattr +i: cannot make a folder read-only")
    try:
        yield
    finally:
        subprocess.run([chattr, "-i", str(path)], check=True)


@pytest.fixture
def state_home(tmp_path: Path) -> Path:
    """A state folder holding a migrated state file (as after a first run)."""
    home = tmp_path / "home"
    done = run_cli("auth", "status", env={"CONNECTOR_HOME": str(home)})
    assert (home / "state.db").exists(), done
    return home


@pytest.mark.parametrize("which", ["folder", "file"])
def test_read_only_state_is_one_line_for_every_command(tmp_path: Path, state_home: Path,
                                                       which: str) -> None:
    """A read-only state folder or file: ``serve``, ``run`` and ``call`` end with one error
    line naming it (``serve`` before it starts anything)."""
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"type": "ContactCreate", "locationId": "L1", "id": "c1"}))
    folder = tmp_path / "recipes"
    folder.mkdir()
    shutil.copy(RECIPE, folder)
    env = {"CONNECTOR_HOME": str(state_home), "CONNECTOR_TOKEN": "t",
           "CONNECTOR_LOCATION_ID": "L1"}
    dead = "http://127.0.0.1:9"
    target = state_home if which == "folder" else state_home / "state.db"
    with read_only(target):
        serve = one_error_line(run_cli("serve", "--recipes", str(folder), "--port", "0",
                                       "--base-url", dead, env=env))
        assert serve.startswith(f"error: {target}: the state {which} is read-only")
        ran = run_cli("run", str(RECIPE), "--event", str(event), "--base-url", dead, env=env)
        assert str(state_home) in one_error_line(ran)
        called = run_cli("call", "ghl.contacts.get", "--input", '{"contactId": "c1"}',
                         "--base-url", dead, env=env)
        assert "Traceback" not in called.stderr and called.status == 1
