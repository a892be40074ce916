"""A spec operation's request read back into the action's flat input, and checked against the
action's input schema as a mock server checks a request against the spec.

The action's ``params`` say where each input travels (path, query, header; the rest is the
body), so the inverse is exact: path and query text is turned into the types the input schema
declares (``"5"`` -> 5 for an integer, ``true``/``false``, repeated names -> arrays), a JSON
body is taken as is, a form body field by field, and a multipart body's file parts become the
pack's file input ``{filename, content_type, content_base64}``. Anything the schema refuses is a
422 with one message per problem, the way GHL's validation pipe answers.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from email.message import Message
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any
from urllib.parse import parse_qsl

from connector.documents.schema import Validator
from connector.hookspecs import Action
from connector.sandbox.responses import ApiError, error_body

__all__ = ["check_input", "read_input"]

_MAX_PROBLEMS = 20


def read_input(
    action: Action,
    params: Mapping[str, str],
    query: Sequence[tuple[str, str]],
    body: object,
    raw: bytes = b"",
    content_type: str = "",
) -> tuple[dict[str, Any], set[str]]:
    """The input a request carries, and the names of the inputs that came in its body.

    :param params: the path's values by their names in the template.
    :param query: every query pair, in order (a repeated name is an array).
    :param body: the decoded JSON body (``{}`` when none was sent).
    :param raw: the raw body, read for form and multipart bodies.
    :raises ApiError: 400 when a form or multipart body cannot be read.
    """
    props: Mapping[str, Any] = action.input_schema.get("properties") or {}
    by_wire = {(p.location, p.wire_name): p.name for p in action.params}
    found: dict[str, Any] = {}
    for wire, text in params.items():
        name = by_wire.get(("path", wire), wire)
        found[name] = _typed(text, props.get(name))
    grouped: dict[str, list[str]] = {}
    for wire, text in query:
        grouped.setdefault(wire.removesuffix("[]"), []).append(text)
    for wire, texts in grouped.items():
        name = by_wire.get(("query", wire), wire)
        schema = props.get(name)
        found[name] = _typed(texts if len(texts) > 1 else texts[0], schema)
    form = action.options.get("body", "json")
    fields = _fields(form, body, raw, content_type)
    body_names: set[str] = set()
    for wire, value in fields.items():
        name = by_wire.get(("body", wire), wire)
        found[name] = value if form == "json" else _typed(value, props.get(name))
        body_names.add(name)
    return found, body_names


def check_input(validator: Validator, data: Mapping[str, Any]) -> None:
    """Raise GHL's 422 (``message``: one line per problem) when the input schema refuses ``data``.

    :raises ApiError: 422 with the problems.
    """
    if validator.is_valid(data):
        return
    messages = []
    for error in validator.iter_errors(data):
        where = "/".join(str(p) for p in error.absolute_path)
        messages.append(f"{where}: {error.message}" if where else error.message)
        if len(messages) >= _MAX_PROBLEMS:
            break
    raise ApiError(422, error_body(422, sorted(messages)))


def _fields(form: str, body: object, raw: bytes, content_type: str) -> dict[str, Any]:
    if form == "json":
        if body in (None, {}):
            return {}
        if not isinstance(body, dict):
            raise ApiError(422, error_body(422, ["request body must be a JSON object"]))
        return dict(body)
    if not raw.strip():
        return {}
    if form == "form":
        try:
            return dict(parse_qsl(raw.decode("utf-8"), keep_blank_values=True))
        except UnicodeDecodeError as exc:
            raise ApiError(400, error_body(400, f"form body is not UTF-8: {exc}")) from None
    if not content_type.lower().startswith("multipart/form-data"):
        raise ApiError(400, error_body(400, "expected a multipart/form-data body"))
    return _multipart(raw, content_type)


def _multipart(raw: bytes, content_type: str) -> dict[str, Any]:
    """The fields of a multipart body: text values, and files as the pack's file input."""
    message = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + raw
    )
    if not message.is_multipart():  # no parts (a form with no field): nothing was sent
        return {}
    out: dict[str, Any] = {}
    for part in message.iter_parts():
        assert isinstance(part, Message)
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            continue
        content = part.get_payload(decode=True)
        data = content if isinstance(content, bytes) else b""
        filename = part.get_filename()
        if filename is not None:
            out[name] = {
                "filename": filename,
                "content_type": part.get_content_type(),
                "content_base64": base64.b64encode(data).decode("ascii"),
            }
        else:
            value = data.decode("utf-8", "replace")
            previous = out.get(name)
            if previous is None:
                out[name] = value
            else:
                out[name] = [*previous, value] if isinstance(previous, list) else [previous, value]
    return out


def _typed(value: Any, schema: Mapping[str, Any] | None) -> Any:  # noqa: ANN401 - any JSON
    """Text from the wire as the type ``schema`` declares (left as text when it does not fit,
    so the schema check names the problem)."""
    if schema is None:
        return value
    kind = schema.get("type")
    kinds = set(kind) if isinstance(kind, list) else {kind}
    if "array" in kinds:
        items = schema.get("items") if isinstance(schema.get("items"), Mapping) else None
        texts = value if isinstance(value, list) else _split(value)
        return [_typed(text, items) for text in texts]
    if isinstance(value, list):
        return value
    if not isinstance(value, str):
        return value
    if kinds & {"integer", "number"}:
        try:
            number = float(value)
        except ValueError:
            return value
        if "integer" in kinds and number.is_integer():
            return int(number)
        return number if "number" in kinds else value
    if "boolean" in kinds and value in ("true", "false"):
        return value == "true"
    if "object" in kinds:
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _split(value: Any) -> list[Any]:  # noqa: ANN401
    """One text for an array input: a JSON array, else comma-separated values."""
    if not isinstance(value, str):
        return [value]
    if value.startswith("["):
        try:
            loaded = json.loads(value)
        except ValueError:
            loaded = None
        if isinstance(loaded, list):
            return loaded
    return value.split(",") if value else []
