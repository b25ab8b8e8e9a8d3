"""The list of CLI subcommands, imported lazily by edgeq.cli."""

ALL: list = []
