"""Running past one process: ``serve`` and any number of ``worker`` processes on a broker.

``serve --broker URL`` stores webhooks and polled records in the inbox as always, and a feeder
sends each event's id to a Dramatiq queue (Redis or RabbitMQ); ``worker --broker URL`` runs
them. Redis holds what the fleet shares: contact lanes (per-contact order), the rate limits
(:mod:`connector.client.sharedlimiter`) and the peers' heartbeats. The inbox stays the source
of truth: a lost message is found again by the feeder's sweeper.
"""
