"""The HTTP action API (``ghl-connector api``): the catalog's actions and triggers over HTTP,
described by OpenAPI, for automation platforms (see docs/api.md)."""
