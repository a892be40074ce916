"""The HTTP API of the pack (``ghl-connector api``): the catalog's actions and triggers over
HTTP, described by OpenAPI, for automation platforms, and its REST hooks (subscriptions,
delivery). See docs/api.md."""
