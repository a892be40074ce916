"""Where the pack's own data files are: ``manifest.yaml``, ``schemas/`` and ``recipes/``.

In a source checkout (and an editable install) they sit at the top of the project, beside the
``connector`` package. In a built wheel they are copied into ``connector/_pack/`` (see
``pyproject.toml``), so an ordinary install finds them without the source tree.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

__all__ = ["pack_root"]


@cache
def pack_root() -> Path:
    """The folder holding ``manifest.yaml`` and ``schemas/`` for the installed pack."""
    here = Path(__file__).resolve().parent
    bundled = here / "_pack"
    if (bundled / "manifest.yaml").is_file():
        return bundled
    return here.parent
