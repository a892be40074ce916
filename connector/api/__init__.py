"""The HTTP API of the pack (``ghl-connector api``) and its REST hooks (subscriptions, delivery)."""
