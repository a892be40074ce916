"""The store's schema and its PostgreSQL side: tables, Alembic revisions, the portable SQL
session, leases and the store-to-store copy. :class:`connector.store.Store` is the entry point."""
