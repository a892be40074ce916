"""``python -m connector``: the same as the ``ghl-connector`` command."""

from __future__ import annotations

import sys

from connector.cli import main

sys.exit(main())
