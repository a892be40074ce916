"""Options given per app on the command line: ``APP=VALUE``, or a plain value for GHL."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from connector.catalog import Catalog

__all__ = ["GHL_APP", "per_app"]

GHL_APP = "ghl"
_APP_ID = re.compile(r"[a-z][a-z0-9_]*")


def per_app(values: list[str] | None, option: str, catalog: Catalog) -> dict[str, str]:
    """App id -> value of the ``option`` values (``--base-url``, ``--rate-limit``): ``APP=VALUE``,
    or a plain value (a URL with ``=`` in its query too) for GHL.

    :raises ConnectorError: an ``APP=`` names no app of the catalog, or a value is empty.
    """
    from connector.errors import ConnectorError

    found: dict[str, str] = {}
    for text in values or []:
        name, sep, value = text.partition("=")
        if not (sep and _APP_ID.fullmatch(name)):
            name, value = GHL_APP, text
        try:
            catalog.app(name)
        except ConnectorError as exc:
            raise ConnectorError(f"{option} {text!r}: {exc}") from exc
        if not value:
            raise ConnectorError(f"{option} {text!r}: no value [write APP=VALUE, or a plain value]")
        found[name] = value
    return found
