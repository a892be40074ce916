"""Generator of the GHL catalog: manifest.yaml and schemas/{actions,triggers}/*.json.

The official OpenAPI 3.0 spec (``../shared/ghl-openapi/apps/contacts.json``) is the source; the
hand-written parts (action ids, app block, pagination, fixes where the spec is empty or wrong,
property descriptions the spec lacks, triggers) are data in ``tools/catalog_overrides.yaml``; the
trigger payloads come from GHL's webhook-event files (see ``tools/gen_triggers.py``). The output is
deterministic: running the generator twice writes identical files. The runtime never reads the
spec; it reads the files written here, which are committed.

Usage: ``python tools/gen_catalog.py [--spec PATH] [--out DIR]`` (``--out`` defaults to the repo).
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
from catalog_json import DRAFT, CatalogError, Json, apply_fix, load_json, ordered
from gen_triggers import build_triggers

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SPEC = REPO.parent / "shared" / "ghl-openapi" / "apps" / "contacts.json"
OVERRIDES = Path(__file__).resolve().with_name("catalog_overrides.yaml")
APPS_DIR = Path(__file__).resolve().with_name("apps")
"""Hand-written manifest sections of apps without an official spec (SuperPhone, LinkedPhone)."""
METHODS = ("get", "post", "put", "patch", "delete")
# OpenAPI 3.0 keywords with no JSON Schema 2020-12 meaning; dropped after conversion.
OPENAPI_ONLY = frozenset(
    {"nullable", "example", "discriminator", "xml", "externalDocs", "readOnly", "writeOnly"}
)
MANIFEST_KEYS = (
    "title", "description", "operation", "method", "path", "scopes", "deprecated", "use_instead",
    "schema", "params", "body", "location_param", "retry_safe", "pagination", "verify",
)


class Converter:
    """Turns OpenAPI 3.0 schema objects into self-contained JSON Schema 2020-12 objects."""

    def __init__(self, spec_file: Path, spec: Json, descriptions: Mapping[str, str]) -> None:
        self.spec_dir = spec_file.parent
        self.docs: dict[str, Json] = {"": spec}
        self.descriptions = descriptions
        self.missing: list[str] = []

    def _target(self, ref: str) -> tuple[Json, str]:
        """Return the schema a ``$ref`` points to and the component's name."""
        file_part, _, pointer = ref.partition("#")
        if file_part not in self.docs:
            self.docs[file_part] = load_json((self.spec_dir / file_part).resolve())
        node = self.docs[file_part]
        for part in pointer.split("/")[1:]:
            node = node[part]
        return node, pointer.rsplit("/", 1)[-1]

    def convert(self, node: Mapping[str, Json], owner: str, where: str) -> dict[str, Json]:
        """Convert one schema; ``owner`` names the component whose properties these are."""
        node = dict(node)
        while "$ref" in node:
            ref = node.pop("$ref")
            target, owner = self._target(ref)
            merged = {**target, **node}
            if "properties" in target and "properties" in node:
                merged["properties"] = {**target["properties"], **node["properties"]}
            node = merged
        out: dict[str, Json] = {}
        for key, value in node.items():
            if key == "properties":
                out[key] = {
                    name: self.prop(sub, owner, name, f"{where}.{name}")
                    for name, sub in value.items()
                }
            elif key == "items":
                out[key] = self.convert(value, owner, f"{where}[]")
            elif key in ("anyOf", "oneOf", "allOf"):
                out[key] = [self.convert(sub, owner, f"{where}|") for sub in value]
            elif key not in OPENAPI_ONLY:
                out[key] = copy.deepcopy(value)
        if "example" in node:
            out["examples"] = [copy.deepcopy(node["example"])]
        if node.get("nullable"):
            make_nullable(out, where)
        return ordered(out)

    def prop(self, node: Mapping[str, Json], owner: str, name: str, where: str) -> Json:
        """Convert one property and make sure it has a description."""
        out = self.convert(node, owner, where)
        if "description" not in node:
            text = self.descriptions.get(f"{owner}.{name}", self.descriptions.get(name))
            if text is None:
                self.missing.append(f"{owner}.{name}")
            else:
                out["description"] = text
        return ordered(out)


def make_nullable(schema: dict[str, Json], where: str) -> None:
    """Apply OpenAPI ``nullable: true`` as a type union (and ``null`` in an ``enum``)."""
    kind = schema.get("type")
    if kind is None:
        raise CatalogError(f"{where}: 'nullable' without 'type' is not supported")
    kinds = kind if isinstance(kind, list) else [kind]
    if "null" not in kinds:
        schema["type"] = [*kinds, "null"]
    if "enum" in schema and None not in schema["enum"]:
        schema["enum"] = [*schema["enum"], None]


def clean_text(text: str) -> str:
    """Strip the spec's HTML from a description: ``<br/>`` to newlines, links to ``text (url)``."""
    text = re.sub(r"<br\s*/?>", "\n", text)
    text = re.sub(r'<a href="([^"]+)"[^>]*>([^<]*)</a>', r"\2 (\1)", text)
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
    """The operation's path and query parameters (the Version header is the app's job)."""
    return [p for p in op.get("parameters", []) if p["in"] in ("path", "query")]


def request_schema(op: Json) -> Json | None:
    """The operation's JSON request-body schema, if it has one."""
    body = op.get("requestBody", {}).get("content", {}).get("application/json")
    return None if body is None else body["schema"]


def success_response(op: Json) -> tuple[str, Json | None]:
    """The first 2xx status code and its JSON schema (``None`` when the spec gives none)."""
    code = min(c for c in op["responses"] if c.startswith("2"))
    media = op["responses"][code].get("content", {}).get("application/json", {})
    return code, media.get("schema")


def build_input(
    conv: Converter, op: Json, cfg: Mapping[str, Json], aid: str
) -> tuple[dict[str, Json], dict[str, str]]:
    """Build the flat input schema and the manifest ``params`` map."""
    props: dict[str, Json] = {}
    required: list[str] = []
    params: dict[str, str] = {}
    extra = list(cfg.get("extra_params", []))
    for param in spec_parameters(op) + extra:
        name = param["name"]
        schema = dict(param.get("schema", {}))
        if "description" in param:
            schema["description"] = param["description"]
        props[name] = conv.prop(schema, f"param:{aid}", name, f"{aid}.input.{name}")
        params[name] = param["in"]
        if param.get("required"):
            required.append(name)
    body = cfg.get("request", request_schema(op))
    if body is not None:
        converted = conv.convert(body, "", f"{aid}.input")
        for name, sub in converted.get("properties", {}).items():
            if name in props:
                raise CatalogError(f"{aid}: body property {name!r} clashes with a parameter")
            props[name] = sub
        required += converted.get("required", [])
    schema = {
        "description": "Path, query and body inputs side by side under their official names.",
        "type": "object",
        "properties": props,
        "required": required,
        "additionalProperties": False,
    }
    if not required:
        del schema["required"]
    return schema, params


def build_output(conv: Converter, op: Json, cfg: Mapping[str, Json], aid: str) -> Json:
    """Build the (open) output schema from the success response or the override."""
    code, schema = success_response(op)
    schema = cfg.get("response", schema)
    if schema is None:
        raise CatalogError(f"{aid}: the spec gives no {code} schema; add a 'response' override")
    out = conv.convert(schema, "", f"{aid}.output")
    out.setdefault("description", f"The {code} response body.")
    return ordered(out)


def build_action(
    conv: Converter, method: str, path: str, op: Json, cfg: Mapping[str, Json]
) -> tuple[str, dict[str, Json], dict[str, Json]]:
    """Build one action's manifest entry and schema document."""
    aid = cfg["id"]
    title = cfg.get("title", op["summary"])
    description = clean_text(op.get("description") or op["summary"])
    if "note" in cfg:
        description += "\n\n" + cfg["note"].strip()
    input_schema, params = build_input(conv, op, cfg, aid)
    scopes = [s for req in op.get("security", []) for ss in req.values() for s in ss]
    entry: dict[str, Json] = {
        "title": title,
        "description": description,
        "operation": op["operationId"],
        "method": method,
        "path": path,
        "scopes": sorted(set(cfg.get("scopes", scopes))),
        "deprecated": bool(op.get("deprecated", False)),
        "schema": f"schemas/actions/{aid}.json",
    }
    if params:
        entry["params"] = params
    if method == "DELETE" and request_schema(op) is not None:
        entry["body"] = "json"
    if "locationId" in input_schema["properties"]:
        entry["location_param"] = "locationId"
    for key in ("use_instead", "pagination", "verify"):
        if key in cfg:
            entry[key] = cfg[key]
    if "retry_safe" in cfg:
        entry["retry_safe"] = True
    document = {
        "$schema": DRAFT,
        "$id": f"actions/{aid}.json",
        "title": title,
        "description": description,
        "type": "object",
        "properties": {
            "input": input_schema,
            "output": build_output(conv, op, cfg, aid),
        },
    }
    return aid, {k: entry[k] for k in MANIFEST_KEYS if k in entry}, document


def patched_spec(spec_file: Path, overrides: Mapping[str, Json]) -> Json:
    """Return the spec with the overrides' ``spec_fixes`` applied (what the catalog describes)."""
    spec = load_json(spec_file)
    for fix in overrides.get("spec_fixes", []):
        apply_fix(spec, fix)
    return spec


def build_catalog(
    spec_file: Path, overrides: Mapping[str, Json], events: Path | None = None
) -> tuple[str, dict[str, Json]]:
    """Return the manifest text and the schema documents by path under ``schemas/``.

    :param events: GHL's webhook-event files (default: ``webhook-events`` beside the spec's folder).
    """
    spec = patched_spec(spec_file, overrides)
    conv = Converter(spec_file, spec, overrides["descriptions"])
    configs: Mapping[str, Json] = overrides["actions"]
    actions: dict[str, dict[str, Json]] = {}
    schemas: dict[str, dict[str, Json]] = {}
    seen: set[str] = set()
    for method, path, op in operations(spec):
        key = f"{method} {path}"
        if key not in configs:
            raise CatalogError(f"{spec_file}: {key}: no action configured in {OVERRIDES.name}")
        seen.add(key)
        aid, entry, document = build_action(conv, method, path, op, configs[key])
        actions[aid] = entry
        schemas[f"{aid}.json"] = document
    if conv.missing:
        raise CatalogError(f"properties without a description: {sorted(set(conv.missing))}")
    if stale := sorted(set(configs) - seen):
        raise CatalogError(f"{OVERRIDES.name}: actions for operations not in the spec: {stale}")
    comments = {cfg["id"]: cfg["retry_safe"] for cfg in configs.values() if "retry_safe" in cfg}
    events = events or spec_file.resolve().parent.parent / "webhook-events"
    triggers, trigger_schemas = build_triggers(overrides, events, actions, schemas)
    apps: dict[str, Json] = {"ghl": overrides["app"]}
    actions = dict(sorted(actions.items()))
    for fragment in sorted(APPS_DIR.glob("*.yaml")):
        merge_fragment(fragment, apps, actions, triggers)
    text = render_manifest(apps, actions, comments, triggers)
    documents = {f"actions/{name}": doc for name, doc in sorted(schemas.items())}
    documents.update({f"triggers/{name}": doc for name, doc in trigger_schemas.items()})
    return text, documents


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
        "# Generated by tools/gen_catalog.py from the official GHL Contacts spec,\n"
        "# tools/catalog_overrides.yaml and tools/apps/*.yaml (hand-written partner apps).\n"
        "# Do not edit by hand: edit those and re-run it.\n"
    )

    def dump(data: Json) -> str:
        return yaml.dump(
            data, Dumper=ManifestDumper, sort_keys=False, allow_unicode=True, width=100,
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


def write_catalog(out: Path, manifest: str, schemas: Mapping[str, Json]) -> None:
    """Write manifest.yaml and schemas/{actions,triggers}/ under ``out``, removing stale files.

    :param schemas: documents by path under ``schemas/`` (``actions/ghl.x.json``, ...).
    """
    for kind in ("actions", "triggers"):
        folder = out / "schemas" / kind
        folder.mkdir(parents=True, exist_ok=True)
        for stale in sorted(folder.glob("ghl.*.json")):
            if f"{kind}/{stale.name}" not in schemas:
                stale.unlink()
    for name, document in schemas.items():
        text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
        (out / "schemas" / name).write_text(text, encoding="utf-8")
    (out / "manifest.yaml").write_text(manifest, encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments, generate the catalog and write it; 1 on a handled error."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--spec", type=Path, default=DEFAULT_SPEC, help="contacts.json to read")
    parser.add_argument("--out", type=Path, default=REPO, help="folder to write into")
    parser.add_argument("--events", type=Path, help="webhook-events folder (default: beside apps/)")
    args = parser.parse_args(argv)
    try:
        with OVERRIDES.open(encoding="utf-8") as fh:
            overrides = yaml.safe_load(fh)
        manifest, schemas = build_catalog(args.spec, overrides, args.events)
    except (OSError, CatalogError, yaml.YAMLError, KeyError, IndexError) as exc:
        print(f"error: gen_catalog: {exc}", file=sys.stderr)
        return 1
    write_catalog(args.out, manifest, schemas)
    print(f"gen_catalog: wrote manifest.yaml and {len(schemas)} schemas under {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
