"""HighLevel's published webhook public keys, shipped as package data.

``ghl-webhook-ed25519.pem`` verifies ``x-ghl-signature`` and ``ghl-webhook-rsa.pem`` the legacy
``x-wh-signature`` (GHL-FACTS.md section 4). :mod:`connector.service.signatures` reads them with
:mod:`importlib.resources`; this file only makes the folder a package so they ship in the wheel.
"""

from __future__ import annotations
