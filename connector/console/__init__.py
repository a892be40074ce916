"""The web console (``/console``) and Prometheus metrics (``/metrics``) of a running service.

:func:`connector.console.app.console_app` is a self-contained ASGI app over a
:class:`~connector.console.state.ConsoleState` (the state file, the activity bus, what the
service can do), so ``serve`` and ``api`` mount the same thing.
"""
