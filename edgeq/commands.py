"""The list of CLI subcommands, imported lazily by edgeq.cli."""

from edgeq.cli_divergence import check_divergence
from edgeq.cli_generate import generate
from edgeq.cli_interop import compare_cmd, export_pte_cmd
from edgeq.cli_pack import dequant, inspect, pack
from edgeq.cli_plan import plan_cmd
from edgeq.cli_run import bench, run
from edgeq.cli_sign import keygen, sign, verify
from edgeq.runner.commands import deploy, devices
from edgeq.targets.commands import build_cmd, fit_cmd, targets
from edgeq.targets.fpga import fpga

ALL: list = [pack, inspect, dequant, fpga, targets, build_cmd, fit_cmd, deploy, devices, run, bench, keygen, sign, verify,
             check_divergence, plan_cmd, export_pte_cmd, compare_cmd, generate]
