"""Calling apps over HTTP: the client, its transport and limits, rate limiter, retries, pagination
and the action kinds."""
