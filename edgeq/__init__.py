"""edgeq: pack ultra-low-bit networks, build a runtime for a board, deploy, measure, check."""

__version__ = "0.1.0"
