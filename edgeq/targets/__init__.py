"""Targets: the board registry (targets/*.toml) and the generators that turn a board into build,
memory-fit, latency and FPGA configurations."""

from edgeq.targets.registry import Target, get_target, list_targets, load_file

__all__ = ["Target", "get_target", "list_targets", "load_file"]
