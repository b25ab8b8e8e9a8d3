"""Tools for testing edgeq against imperfect devices (fault-injecting links)."""
