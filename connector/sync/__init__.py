"""Two-way sync: the engine, changes, field mapping, sides, the sync document, the id map, audit
and backfill."""
