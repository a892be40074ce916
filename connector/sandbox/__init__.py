"""The GHL sandbox: a local HTTP server that stands in for HighLevel in tests and benchmarks.

The Contacts API is stateful and hand-written (``contacts``, ``tasks``, ``notes``, ...); every
other GHL operation of the pack's catalog is answered from its spec (``specroutes``: roles and
answers, ``specinput``: the request as the action's input and its 422s, ``specvalues``:
schema-valid answers, ``resources``: their records, ``specevents``: the webhook events their
writes send).
"""
