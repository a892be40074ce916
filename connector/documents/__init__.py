"""Reading what users and servers hand the pack: YAML documents with their positions, bounded
JSON, JSON Schemas, manifests."""
