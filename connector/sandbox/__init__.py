"""The GHL sandbox: a local HTTP server that stands in for HighLevel in tests and benchmarks."""
