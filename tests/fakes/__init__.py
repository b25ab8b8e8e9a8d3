"""Device stand-ins for tests (never shipped in the edgeq package)."""
