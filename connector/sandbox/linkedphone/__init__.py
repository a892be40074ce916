"""The LinkedPhone sandbox: a stateful local REST server serving exactly the API the catalog
declares for LinkedPhone (tools/apps/linkedphone.yaml), with API-key auth, a rate limit,
HMAC-signed webhooks, polling cursors, fault injection and control endpoints."""
