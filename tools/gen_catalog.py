"""Generator of the GHL catalog: manifest.yaml, schemas/{actions,triggers}/*.json and the report.

GHL's official OpenAPI 3.0 specs (every ``../shared/ghl-openapi/apps/*.json``, one run) are the
source: every operation becomes an action, its id given by the rule in ``tools/catalog_ids.py``.
The hand-written parts (ids and fixes where a spec is empty or wrong, pagination the rule cannot
see, property descriptions, triggers) are data in ``tools/catalog_overrides.yaml``; spec defects
that a rule settles are listed in ``docs/catalog-report.md``. The trigger payloads come from GHL's
webhook-event files (see ``tools/gen_triggers.py``). The output is deterministic. The runtime never
reads the specs; it reads the files written here, which are committed.

Usage: ``python tools/gen_catalog.py [--specs DIR] [--out DIR]`` (``--out`` defaults to the repo).
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import sys
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path

import yaml
from catalog_ids import IdRule, guess_description
from catalog_json import DRAFT, CatalogError, Json, apply_fix, load_json, ordered
from catalog_paging import detect
from catalog_report import Report
from gen_triggers import build_triggers
from jsonschema import Draft202012Validator

from connector.documents.compiled import COMPILED_NAME, compile_manifest

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SPECS = REPO.parent / "shared" / "ghl-openapi" / "apps"
OVERRIDES = Path(__file__).resolve().with_name("catalog_overrides.yaml")
APPS_DIR = Path(__file__).resolve().with_name("apps")
"""Hand-written manifest sections of apps without an official spec (SuperPhone, LinkedPhone)."""
REPORT = "docs/catalog-report.md"
GENERATED = "schemas/GENERATED"
"""The list of files the last run wrote; only these are ever deleted by a later run."""
METHODS = ("get", "post", "put", "patch", "delete")
# OpenAPI 3.0 keywords with no JSON Schema 2020-12 meaning; dropped after conversion.
OPENAPI_ONLY = frozenset(
    {"nullable", "example", "discriminator", "xml", "externalDocs", "readOnly", "writeOnly"}
)
MANIFEST_KEYS = (
    "title",
    "description",
    "spec",
    "tags",
    "operation",
    "method",
    "path",
    "headers",
    "scopes",
    "deprecated",
    "use_instead",
    "schema",
    "params",
    "body",
    "location_param",
    "location_inputs",
    "retry_safe",
    "pagination",
    "verify",
)
BODY_FORMS = {"multipart/form-data": "multipart", "application/x-www-form-urlencoded": "form"}
FILE_INPUT: Json = {
    "description": (
        "A file to upload: its name, and its bytes as base64 (`content_base64`) or a local "
        "file to read (`path`)."
    ),
    "type": "object",
    "properties": {
        "filename": {
            "type": "string",
            "description": "File name sent to GHL.",
            "examples": ["photo.png"],
        },
        "content_type": {
            "type": "string",
            "description": "MIME type (default: from the name).",
            "examples": ["image/png"],
        },
        "content_base64": {"type": "string", "description": "The file's bytes, base64-encoded."},
        "path": {"type": "string", "description": "A local file to read instead."},
    },
    "required": ["filename"],
    "additionalProperties": False,
}
"""The input form of a ``format: binary`` body field (docs/catalog.md, "File uploads")."""


class Converter:
    """Turns OpenAPI 3.0 schema objects into self-contained JSON Schema 2020-12 objects."""

    def __init__(
        self, spec_file: Path, spec: Json, descriptions: Mapping[str, str], report: Report
    ) -> None:
        self.spec_dir = spec_file.parent
        self.stem = spec_file.stem
        self.docs: dict[str, Json] = {"": spec}
        self.descriptions = descriptions
        self.report = report

    def _target(self, ref: str) -> tuple[Json, str]:
        """Return the schema a ``$ref`` points to and the component's name."""
        file_part, _, pointer = ref.partition("#")
        if file_part not in self.docs:
            self.docs[file_part] = load_json((self.spec_dir / file_part).resolve())
        node = self.docs[file_part]
        for part in pointer.split("/")[1:]:
            node = node[part]
        return node, pointer.rsplit("/", 1)[-1]

    def convert(
        self, node: Mapping[str, Json], owner: str, where: str, seen: tuple[str, ...] = ()
    ) -> dict[str, Json]:
        """Convert one schema; ``owner`` names the component whose properties these are."""
        node = dict(node)
        while "$ref" in node:
            ref = node.pop("$ref")
            if ref in seen:  # a recursive component: stop at the second visit, left open
                return {"description": f"{ref.rsplit('/', 1)[-1]} (recursive, not expanded)."}
            seen = (*seen, ref)
            target, owner = self._target(ref)
            merged = {**target, **node}
            if "properties" in target and "properties" in node:
                merged["properties"] = {**target["properties"], **node["properties"]}
            node = merged
        out: dict[str, Json] = {}
        for key, value in node.items():
            if key == "properties" and isinstance(value, Mapping):
                out[key] = {
                    name: self.prop(sub, owner, name, f"{where}.{name}", seen)
                    for name, sub in value.items()
                }
            elif key == "items" and isinstance(value, Mapping):
                out[key] = self.convert(value, owner, f"{where}[]", seen)
            elif key == "additionalProperties" and isinstance(value, Mapping):
                out[key] = self.convert(value, owner, f"{where}{{}}", seen)
            elif key in ("anyOf", "oneOf", "allOf"):
                out[key] = [self.convert(sub, owner, f"{where}|", seen) for sub in value]
            elif key == "examples" and not isinstance(value, list):
                self.report.add("examples", f"{self.stem}: {where}: `examples` is not a list")
            elif key == "required" and not value:
                continue  # `required: []` is invalid in OpenAPI 3.0 and means nothing
            elif key not in OPENAPI_ONLY:
                out[key] = copy.deepcopy(value)
        if "type" in out and not _known_type(out["type"]):
            self.report.add("types", f"{self.stem}: {where}: type {out.pop('type')!r}")
        if "enum" in out and "type" in out and not Draft202012Validator(
            {"type": out["type"]}
        ).is_valid(out["enum"][0] if out["enum"] else None):
            self.report.add("types", f"{self.stem}: {where}: enum values are not {out['type']!r}")
            del out["type"]
        if out.get("format") == "binary":
            return {
                **copy.deepcopy(FILE_INPUT),
                **{"description": node.get("description", FILE_INPUT["description"])},
            }
        if "example" in node:
            out["examples"] = [copy.deepcopy(node["example"])]
        if node.get("nullable"):
            self.make_nullable(out, where)
        return ordered(out)

    def make_nullable(self, schema: dict[str, Json], where: str) -> None:
        """Apply ``nullable: true`` as a type union (and ``null`` in an ``enum``)."""
        kind = schema.get("type")
        if kind is None:
            self.report.add("nullable", f"{self.stem}: {where}")
            return
        kinds = kind if isinstance(kind, list) else [kind]
        if "null" not in kinds:
            schema["type"] = [*kinds, "null"]
        if "enum" in schema and None not in schema["enum"]:
            schema["enum"] = [*schema["enum"], None]

    def prop(
        self,
        node: Mapping[str, Json],
        owner: str,
        name: str,
        where: str,
        seen: tuple[str, ...] = (),
    ) -> Json:
        """Convert one property and make sure it has a description."""
        out = self.convert(node, owner, where, seen)
        if "description" not in node:
            text = self.descriptions.get(f"{owner}.{name}", self.descriptions.get(name))
            if text is not None:
                out["description"] = text
        if not out.get("description"):
            out["description"] = guess_description(name)
            self.report.add("descriptions", f"{self.stem}: {owner or '(inline)'}.{name}")
        return ordered(out)


JSON_TYPES = frozenset({"string", "number", "integer", "boolean", "array", "object", "null"})


def _known_type(kind: Json) -> bool:
    """Whether ``kind`` is a JSON Schema type or list of types."""
    kinds = kind if isinstance(kind, list) else [kind]
    return all(isinstance(k, str) and k in JSON_TYPES for k in kinds)


def clean_text(text: str) -> str:
    """Strip the spec's HTML from a description: ``<br/>`` to newlines, links to ``text (url)``."""
    text = re.sub(r"<br\s*/?>", "\n", text)
    text = re.sub(r'<a href="([^"]+)"[^>]*>([^<]*)</a>', r"\2 (\1)", text)
    text = re.sub(r"</?(ul|ol|p|b|i|strong|em|code)>", "", text)
    text = re.sub(r"<li>", "- ", re.sub(r"</li>", "\n", text))
    lines = [line.strip() for line in text.strip().splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines))


def operations(spec: Json) -> list[tuple[str, str, Json]]:
    """Return ``(METHOD, path, operation)`` for every operation, in spec order."""
    return [
        (method.upper(), path, op)
        for path, item in spec["paths"].items()
        for method, op in item.items()
        if method in METHODS
    ]


def spec_parameters(op: Json) -> list[Json]:
    """The operation's path and query parameters (headers are the app's and the action's job)."""
    return [p for p in op.get("parameters", []) if p["in"] in ("path", "query")]


def request_body(op: Json) -> tuple[str, Json | None]:
    """The operation's body form (``json``, ``multipart``, ``form`` or ``none``) and schema."""
    content = op.get("requestBody", {}).get("content", {})
    if "application/json" in content:
        return "json", content["application/json"].get("schema", {"type": "object"})
    for media, form in BODY_FORMS.items():
        if media in content:
            return form, content[media].get("schema")
    return "none", None


def success_response(op: Json) -> tuple[str, Json | None, Json]:
    """The first 2xx status code, its JSON schema (``None`` when none) and its media object."""
    codes = [c for c in op["responses"] if c.startswith("2")]
    code = min(codes) if codes else "200"
    media = op["responses"].get(code, {}).get("content", {}).get("application/json", {})
    return code, media.get("schema"), media


def build_input(
    conv: Converter, op: Json, cfg: Mapping[str, Json], aid: str
) -> tuple[dict[str, Json], dict[str, Json], str]:
    """Build the flat input schema, the manifest ``params`` map and the body form."""
    props: dict[str, Json] = {}
    required: list[str] = []
    params: dict[str, Json] = {}
    extra = list(cfg.get("extra_params", []))
    declared = spec_parameters(op) + extra
    placeholders = re.findall(r"\{([^{}]+)\}", cfg["path"])
    for name in placeholders:
        if not any(p["name"] == name and p["in"] == "path" for p in declared):
            where = (
                "declared as a query parameter"
                if any(p["name"] == name for p in declared)
                else "not declared"
            )
            declared = [p for p in declared if p["name"] != name]
            declared.append({"name": name, "in": "path", "schema": {"type": "string"}})
            conv.report.add("undeclared", f"{aid}: {{{name}}} {where}")
    for param in declared:
        name = param["name"]
        if name in props:  # the same name in two places (path and query): rename the second
            name = f"{param['in']}_{name}"
            conv.report.add("renamed", f"{aid}: {param['in']} `{param['name']}` is input `{name}`")
        schema = dict(param.get("schema", {}))
        if "description" in param:
            schema["description"] = param["description"]
        if "example" in param and "example" not in schema:
            schema["example"] = param["example"]
        props[name] = conv.prop(schema, f"param:{aid}", name, f"{aid}.input.{name}")
        params[name] = (
            param["in"] if name == param["name"] else {"in": param["in"], "name": param["name"]}
        )
        if param.get("required") or param["in"] == "path":
            required.append(name)
    form, body = request_body(op)
    body = cfg.get("request", body)
    open_body: Json = False
    if body is not None:
        converted = conv.convert(body, "", f"{aid}.input")
        for name, sub in converted.get("properties", {}).items():
            key = name
            if name in props:
                key = f"body_{name}"
                params[key] = {"in": "body", "name": name}
                conv.report.add("renamed", f"{aid}: body `{name}` is input `{key}`")
            props[key] = sub
            if name in converted.get("required", []):
                required.append(key)
        open_body = converted.get("additionalProperties", False)
    schema = {
        "description": "Path, query and body inputs side by side under their official names.",
        "type": "object",
        "properties": props,
        "required": sorted(set(required), key=required.index),
        "additionalProperties": open_body if isinstance(open_body, Mapping) else False,
    }
    if not required:
        del schema["required"]
    if form != "json" and body is not None or form in ("multipart", "form"):
        conv.report.add("bodies", f"{aid}: {form}")
    return schema, params, form


def build_output(conv: Converter, op: Json, cfg: Mapping[str, Json], aid: str) -> Json:
    """Build the (open) output schema from the success response or the override."""
    code, schema, _ = success_response(op)
    schema = cfg.get("response", schema)
    if schema is None:
        conv.report.add("no_schema", f"{aid}: {code}")
        return {"description": f"The {code} response body (the spec gives no schema)."}
    out = conv.convert(schema, "", f"{aid}.output")
    out.setdefault("description", f"The {code} response body.")
    return ordered(out)


def header_values(op: Json) -> dict[str, str]:
    """Fixed header values the operation requires (``Version``), from their enums."""
    found = {}
    for param in op.get("parameters", []):
        enum = param.get("schema", {}).get("enum")
        if param["in"] == "header" and param["name"] != "Authorization" and enum:
            found[param["name"]] = str(enum[0])
    return found


LOCATION_PARAMS = ("locationId", "location_id")
"""Names of the input that carries the location id, in the order they are looked for."""


def location_inputs(properties: Mapping[str, Json], cfg: Mapping[str, Json]) -> dict[str, Json]:
    """The manifest keys saying which inputs the connection's location fills: the first of
    :data:`LOCATION_PARAMS` the input has (``location_param``), and GHL's ``altId`` with its
    ``altType`` when ``location`` is an ``altType`` the schema takes (``location_inputs``);
    the overrides' ``location_inputs`` replaces what the rule finds (``{}``: none)."""
    found: dict[str, Json] = {}
    param = next((name for name in LOCATION_PARAMS if name in properties), None)
    if param is not None:
        found["location_param"] = param
    alt_type = properties.get("altType")
    if "altId" in properties and isinstance(alt_type, dict):
        if Draft202012Validator(alt_type).is_valid("location"):
            found["location_inputs"] = {"altId": "{location}", "altType": "location"}
    if "location_inputs" in cfg:
        found.pop("location_inputs", None)
        if cfg["location_inputs"]:
            found["location_inputs"] = dict(cfg["location_inputs"])
    return found


def build_action(
    conv: Converter,
    method: str,
    path: str,
    op: Json,
    cfg: Mapping[str, Json],
    app_headers: Mapping[str, str],
) -> tuple[dict[str, Json], dict[str, Json]]:
    """Build one action's manifest entry and schema document."""
    aid = cfg["id"]
    title = cfg.get("title", op.get("summary") or op["operationId"])
    description = clean_text(op.get("description") or op.get("summary") or title)
    if "note" in cfg:
        description += "\n\n" + cfg["note"].strip()
    input_schema, params, form = build_input(conv, op, {**cfg, "path": path}, aid)
    output = build_output(conv, op, cfg, aid)
    scopes = [s for req in op.get("security", []) for ss in req.values() for s in ss]
    headers = {k: v for k, v in header_values(op).items() if app_headers.get(k) != v}
    entry: dict[str, Json] = {
        "title": title,
        "description": description,
        "spec": conv.stem,
        "tags": list(op.get("tags", [])),
        "operation": op["operationId"],
        "method": method,
        "path": path,
        "scopes": sorted(set(cfg.get("scopes", scopes))),
        "deprecated": bool(op.get("deprecated", False)),
        "schema": f"schemas/actions/{aid}.json",
    }
    if headers:
        entry["headers"] = headers
    if params:
        entry["params"] = params
    if form in ("multipart", "form"):
        entry["body"] = form
    elif method == "DELETE" and form == "json":
        entry["body"] = "json"
    entry.update(location_inputs(input_schema["properties"], cfg))
    query = {n for n, where in params.items() if where == "query"}
    # Paging reads and writes inputs by their wire names; renamed ones are not paging inputs.
    paging, why = detect(input_schema["properties"], query, output)
    if paging is not None and "pagination" not in cfg:
        entry["pagination"] = paging
    elif why and "pagination" not in cfg:
        conv.report.add("paging", f"{aid}: {why}")
    if cfg.get("pagination") == "none" and not cfg.get("paging_reason"):
        raise CatalogError(f"{aid}: `pagination: none` needs a `paging_reason`")
    for key in ("use_instead", "pagination", "verify"):
        if key in cfg and cfg[key] != "none":
            entry[key] = cfg[key]
    if "retry_safe" in cfg:
        entry["retry_safe"] = True
    document = {
        "$schema": DRAFT,
        "$id": f"actions/{aid}.json",
        "title": title,
        "description": description,
        "type": "object",
        "properties": {"input": input_schema, "output": output},
    }
    drop_bad_examples(document, conv.report, aid)
    check_response_examples(op, output, conv.report, aid)
    return {k: entry[k] for k in MANIFEST_KEYS if k in entry}, document


def check_response_examples(op: Json, output: Json, report: Report, aid: str) -> None:
    """Report each spec example of the 2xx response that the output schema rejects, and why."""
    _, _, media = success_response(op)
    examples = [e["value"] for e in media.get("examples", {}).values() if "value" in e]
    if "example" in media:
        examples.append(media["example"])
    validator = Draft202012Validator(output)
    for example in examples:
        error = next(iter(sorted(validator.iter_errors(example), key=str)), None)
        if error is not None:
            where = "/".join(map(str, error.absolute_path)) or "(top)"
            report.add("responses", f"{aid}: {where}: {error.message[:100]}")


def drop_bad_examples(node: Json, report: Report, where: str) -> None:
    """Remove every ``examples`` value its own subschema rejects, reporting each."""
    if isinstance(node, list):
        for sub in node:
            drop_bad_examples(sub, report, where)
        return
    if not isinstance(node, dict):
        return
    for key, sub in node.items():
        if key != "examples":
            drop_bad_examples(sub, report, f"{where}.{key}" if key != "properties" else where)
    if "examples" in node and isinstance(node["examples"], list):
        check = {k: v for k, v in node.items() if k != "examples"}
        validator = Draft202012Validator(check)
        kept = [e for e in node["examples"] if validator.is_valid(e)]
        if len(kept) != len(node["examples"]):
            report.add("examples", f"{where}: {json.dumps(node['examples'][0])[:60]}")
        if kept:
            node["examples"] = kept
        else:
            del node["examples"]


def patched_spec(spec_file: Path, overrides: Mapping[str, Json]) -> Json:
    """Return the spec with its ``spec_fixes`` applied (a fix's ``spec`` defaults to contacts)."""
    spec = load_json(spec_file)
    for fix in overrides.get("spec_fixes", []):
        if fix.get("spec", "contacts") == spec_file.stem:
            apply_fix(spec, fix)
    return spec


def load_specs(specs: Path, overrides: Mapping[str, Json]) -> list[tuple[Path, Json]]:
    """Every spec file in ``specs`` (sorted), with its fixes applied."""
    files = sorted(specs.glob("*.json"))
    if not files:
        raise CatalogError(f"{specs}: no spec files")
    return [(f, patched_spec(f, overrides)) for f in files]


def assign_ids(
    specs: list[tuple[Path, Json]], overrides: Mapping[str, Json], report: Report
) -> dict[str, str]:
    """The action id of every operation by ``METHOD path`` (rule + ``actions:`` ids)."""
    flat = [(f.stem, m, p, op) for f, spec in specs for m, p, op in operations(spec)]
    seen: dict[str, str] = {}
    tag_specs: dict[str, set[str]] = {}
    by_operation: dict[str, set[str]] = {}
    for stem, method, path, op in flat:
        key = f"{method} {path}"
        if key in seen:
            raise CatalogError(f"{key} is in both {seen[key]} and {stem}")
        seen[key] = stem
        for tag in op.get("tags", []):
            tag_specs.setdefault(tag, set()).add(stem)
        by_operation.setdefault(op["operationId"], set()).add(stem)
    for name, stems in sorted(by_operation.items()):
        if len(stems) > 1:
            report.add("operation_ids", f"`{name}`: {', '.join(sorted(stems))}")
    configs: Mapping[str, Json] = overrides["actions"]
    if stale := sorted(set(configs) - set(seen)):
        raise CatalogError(f"{OVERRIDES.name}: actions for operations not in any spec: {stale}")
    fixed = {key: cfg["id"] for key, cfg in configs.items() if "id" in cfg}
    rule = IdRule(overrides.get("ids", {}), tag_specs)
    ids = rule.assign(flat, fixed)
    for note in rule.notes:
        report.add("ids", note)
    return ids


def build_catalog(
    specs_dir: Path, overrides: Mapping[str, Json], events: Path | None = None
) -> tuple[str, dict[str, Json], str]:
    """Return the manifest text, the schema documents by path under ``schemas/``, the report.

    :param events: GHL's webhook-event files (default: ``webhook-events`` beside ``apps/``).
    """
    report = Report()
    specs = load_specs(specs_dir, overrides)
    ids = assign_ids(specs, overrides, report)
    configs: Mapping[str, Json] = overrides["actions"]
    app_headers = overrides["app"].get("headers", {})
    actions: dict[str, dict[str, Json]] = {}
    schemas: dict[str, dict[str, Json]] = {}
    for spec_file, spec in specs:
        own = overrides["descriptions"] if spec_file.stem == "contacts" else {}
        extra = overrides.get("spec_descriptions", {}).get(spec_file.stem, {})
        conv = Converter(spec_file, spec, {**own, **extra}, report)
        for method, path, op in operations(spec):
            key = f"{method} {path}"
            cfg = {**configs.get(key, {}), "id": ids[key]}
            entry, document = build_action(conv, method, path, op, cfg, app_headers)
            actions[ids[key]] = entry
            schemas[f"{ids[key]}.json"] = document
    comments = {cfg["id"]: cfg["retry_safe"] for cfg in configs.values() if "retry_safe" in cfg}
    events = events or specs_dir.resolve().parent / "webhook-events"
    triggers, trigger_schemas = build_triggers(overrides, events, actions, schemas, report)
    apps: dict[str, Json] = {"ghl": overrides["app"]}
    actions = dict(sorted(actions.items()))
    for fragment in sorted(APPS_DIR.glob("*.yaml")):
        merge_fragment(fragment, apps, actions, triggers)
    text = render_manifest(apps, actions, comments, triggers)
    documents = {f"actions/{name}": doc for name, doc in sorted(schemas.items())}
    documents.update({f"triggers/{name}": doc for name, doc in trigger_schemas.items()})
    return text, documents, report.render()


class ManifestDumper(yaml.SafeDumper):
    """Safe YAML dumper: block mappings, flow lists, multi-line strings as literal blocks."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


def _represent_list(dumper: yaml.SafeDumper, value: list[Json]) -> yaml.SequenceNode:
    return dumper.represent_sequence("tag:yaml.org,2002:seq", value, flow_style=True)


ManifestDumper.add_representer(str, _represent_str)
ManifestDumper.add_representer(list, _represent_list)


def merge_fragment(
    path: Path, apps: dict[str, Json], actions: dict[str, Json], triggers: dict[str, Json]
) -> None:
    """Add a hand-written app's manifest section (``tools/apps/<app>.yaml``) to the catalog.

    Partner apps are not generated from a spec: their section is written by hand (with its
    assumptions as data) and copied into manifest.yaml after GHL's, in file-name order.
    """
    with path.open(encoding="utf-8") as fh:
        fragment = yaml.safe_load(fh) or {}
    for key, target in (("apps", apps), ("actions", actions), ("triggers", triggers)):
        for name, entry in (fragment.get(key) or {}).items():
            if name in target:
                raise CatalogError(f"{path.name}: {key[:-1]} {name!r} is already declared")
            target[name] = entry


def render_manifest(
    apps: Mapping[str, Json],
    actions: Mapping[str, Json],
    comments: Mapping[str, str],
    triggers: Mapping[str, Json],
) -> str:
    """Render manifest.yaml, with a comment above each ``retry_safe: true`` saying why."""
    header = (
        "# Generated by tools/gen_catalog.py from GHL's official v2 specs (41 apps),\n"
        "# tools/catalog_overrides.yaml and tools/apps/*.yaml (hand-written partner apps).\n"
        "# Do not edit by hand: edit those and re-run it.\n"
    )

    def dump(data: Json) -> str:
        return yaml.dump(
            data,
            Dumper=ManifestDumper,
            sort_keys=False,
            allow_unicode=True,
            width=100,
            default_flow_style=False,
        )

    parts = [header, "version: 1\n", dump({"apps": dict(apps)}), "actions:\n"]
    for aid, entry in actions.items():
        block = dump({aid: entry})
        if aid in comments:
            why = "".join(f"  # {line}\n" for line in textwrap.wrap(comments[aid], 90))
            block = block.replace("  retry_safe: true\n", f"{why}  retry_safe: true\n")
        parts.append("".join(f"  {line}\n" if line else "\n" for line in block.splitlines()))
    parts.append("triggers:\n")
    for tid, entry in triggers.items():
        block = dump({tid: entry})
        parts.append("".join(f"  {line}\n" if line else "\n" for line in block.splitlines()))
    return "".join(parts)


def write_catalog(out: Path, manifest: str, schemas: Mapping[str, Json], report: str) -> None:
    """Write manifest.yaml (and its compiled JSON form), the schema files and the report.

    Files the previous run wrote (listed in ``schemas/GENERATED``) that this run does not write
    are removed; nothing else is ever deleted, so hand-written schemas beside them are safe.

    :param schemas: documents by path under ``schemas/`` (``actions/ghl.x.json``, ...).
    """
    listing = out / GENERATED
    before = set(listing.read_text(encoding="utf-8").split()) if listing.is_file() else set()
    for stale in sorted(before - set(schemas)):
        (out / "schemas" / stale).unlink(missing_ok=True)
    for name, document in schemas.items():
        target = out / "schemas" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
        target.write_text(text, encoding="utf-8")
    listing.write_text("".join(f"{name}\n" for name in sorted(schemas)), encoding="utf-8")
    (out / "manifest.yaml").write_text(manifest, encoding="utf-8")
    (out / COMPILED_NAME).write_text(compile_manifest(manifest.encode()), encoding="utf-8")
    (out / REPORT).parent.mkdir(parents=True, exist_ok=True)
    (out / REPORT).write_text(report, encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments, generate the catalog and write it; 1 on a handled error."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--specs", type=Path, default=DEFAULT_SPECS, help="folder of spec files")
    parser.add_argument("--out", type=Path, default=REPO, help="folder to write into")
    parser.add_argument("--events", type=Path, help="webhook-events folder (default: beside apps/)")
    args = parser.parse_args(argv)
    try:
        with OVERRIDES.open(encoding="utf-8") as fh:
            overrides = yaml.safe_load(fh)
        manifest, schemas, report = build_catalog(args.specs, overrides, args.events)
    except (OSError, CatalogError, yaml.YAMLError, KeyError, IndexError) as exc:
        print(f"error: gen_catalog: {exc}", file=sys.stderr)
        return 1
    write_catalog(args.out, manifest, schemas, report)
    print(f"gen_catalog: wrote manifest.yaml and {len(schemas)} schemas under {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
