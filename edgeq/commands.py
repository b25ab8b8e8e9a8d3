"""The list of CLI subcommands, imported lazily by edgeq.cli."""

from edgeq.cli_pack import dequant, inspect, pack

ALL: list = [pack, inspect, dequant]
