"""The recipe expression language: its tree, parser, templates, filters and dates."""
