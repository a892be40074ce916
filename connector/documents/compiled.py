"""The pack manifest's compiled form: ``manifest.compiled.json``, read in milliseconds.

``manifest.yaml`` (346 KB, 576 GHL actions) takes libyaml about half a second to turn into
data, and every process that builds the catalog needs it. ``tools/gen_catalog.py`` writes the
same data as JSON beside it, with the SHA-256 of the YAML it was made from. The JSON is used
only while that digest matches the YAML's bytes, so an edited ``manifest.yaml`` is never
shadowed by a stale compiled file: it is read as YAML instead (slower, same result).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from connector.documents.document import Document, load_trusted_yaml_file, load_yaml

__all__ = ["COMPILED_NAME", "compile_manifest", "read_pack_manifest"]

COMPILED_NAME = "manifest.compiled.json"
"""The compiled file's name, beside ``manifest.yaml``."""


def compile_manifest(text: bytes, file: str = "manifest.yaml") -> str:
    """The compiled JSON text for the manifest ``text`` (read by the guarded YAML reader)."""
    data = load_yaml(text, file=file).data
    digest = hashlib.sha256(text).hexdigest()
    compiled = {"yaml_sha256": digest, "manifest": data}
    return json.dumps(compiled, ensure_ascii=False, indent=1) + "\n"


def read_pack_manifest(path: Path) -> Document:
    """The trusted manifest at ``path``: its compiled JSON when current, else its YAML."""
    compiled = path.with_name(COMPILED_NAME)
    try:
        text = path.read_bytes()
        found = json.loads(compiled.read_bytes())
    except (OSError, ValueError):
        return load_trusted_yaml_file(path)
    if not isinstance(found, dict) or found.get("yaml_sha256") != hashlib.sha256(text).hexdigest():
        return load_trusted_yaml_file(path)
    return Document(found.get("manifest"), str(path))
