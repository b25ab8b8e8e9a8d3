"""Per-shape kernel choice as data (targets' [kernels] rules): the schema refuses bad rules with a clear
error, the packer turns rules into op flags, and re-packing with other rules changes the kernel the same
runtime binary runs (`edgeq deploy --target rpi5` names it per layer)."""

from __future__ import annotations

import json
import re
import shutil

import pytest
from click.testing import CliRunner
from conftest import DIGITS_MODELS

from edgeq.blob import layout as L
from edgeq.blob import read_blob
from edgeq.cli import main
from edgeq.errors import EdgeqError
from edgeq.targets import kernel_rules
from edgeq.targets.registry import BUILTIN_DIR, ENV_PATH, get_target

MODEL = str(DIGITS_MODELS / "mlp_t2_qat.pt2")
CALIB = str(DIGITS_MODELS / "mlp_data.npz")
RPI5 = (BUILTIN_DIR / "rpi5.toml").read_text()


def board_with_rules(tmp_path, rules: str) -> None:
    """A copy of rpi5.toml whose [kernels] table is `rules`, first on the target search path."""
    text = re.sub(r"\n\[kernels\]\n(?:(?!\n\[).)*", "\n", RPI5, flags=re.DOTALL)
    (tmp_path / "rpi5.toml").write_text(text + f"\n[kernels]\n{rules}\n")


@pytest.mark.parametrize("rules,error", [
    ('rules = [{ format = "t2", kernel = "lutt" }]', "[kernels] rules[0].kernel: 'lutt' is not one of dot, lut"),
    ('rules = [{ format = "q4", kernel = "lut" }]', "[kernels] rules[0].format: 'q4' is not one of t2, t158"),
    ('rules = [{ kernel = "lut" }]', "[kernels] rules[0].format: missing"),
    ('rules = [{ format = "t2", kernel = "lut", min_k = 0 }]', "rules[0].min_k: expected a positive integer"),
    ('rules = [{ format = "t2", kernel = "lut", min_m = 9, max_m = 8 }]', "min_m = 9 is larger than max_m = 8"),
    ('rules = [{ format = "t2", kernel = "lut", rows = 8 }]', "rules[0].rows: unknown key"),
    ('rules = [{ format = "t2", kernel = "dot" }, "lut"]', "rules[1]: expected a table"),
    ('rules = "lut"', "[kernels] rules: expected a list"),
])
def test_bad_rules_are_refused_naming_the_rule(tmp_path, monkeypatch, rules, error):
    board_with_rules(tmp_path, rules)
    monkeypatch.setenv(ENV_PATH, str(tmp_path))
    with pytest.raises(EdgeqError) as e:
        get_target("rpi5")
    assert error in str(e.value) and "rpi5.toml" in str(e.value)


def test_first_matching_rule_wins_else_dot():
    rules = kernel_rules.parse_rules("x.toml", [
        {"format": "t2", "kernel": "dot", "max_k": 511},
        {"format": "t2", "kernel": "lut", "min_m": 64},
        {"format": "t158", "kernel": "lut"}])
    assert kernel_rules.choose(rules, "t2", 4096, 256) == "dot"      # K <= 511: the first rule
    assert kernel_rules.choose(rules, "t2", 4096, 4096) == "lut"
    assert kernel_rules.choose(rules, "t2", 63, 4096) == "dot"       # no rule: dot
    assert kernel_rules.choose(rules, "t158", 1, 1) == "lut"
    assert kernel_rules.choose(rules, "q4", 4096, 4096) == "dot"


def test_builtin_arm_boards_rules_are_valid():
    for board in ("rpi5", "android-arm64"):
        assert kernel_rules.target_rules(get_target(board)), board


def deploy_kernels(tmp_path, monkeypatch, rules: str) -> tuple[dict, list[int]]:
    board_with_rules(tmp_path, rules)
    monkeypatch.setenv(ENV_PATH, str(tmp_path))
    blob = tmp_path / "m.edgeq"
    res = CliRunner().invoke(main, ["pack", MODEL, "--calib", CALIB, "--target", "rpi5", "-o", str(blob)])
    assert res.exit_code == 0, res.output
    flags = [op.flags for op in read_blob(blob).graph.ops]
    res = CliRunner().invoke(main, ["deploy", "--target", "rpi5", str(blob), "--runs", "1", "--json"])
    assert res.exit_code == 0, res.output
    return json.loads(res.output[res.output.index("{"):]), flags


@pytest.mark.skipif(not (shutil.which("aarch64-linux-gnu-gcc") and shutil.which("qemu-aarch64")),
                    reason="needs aarch64-linux-gnu-gcc and qemu-aarch64 (tools/bootstrap.sh installs them)")
def test_repacking_with_other_rules_changes_the_kernel_not_the_runtime(tmp_path, monkeypatch):
    lut, lut_flags = deploy_kernels(tmp_path, monkeypatch, 'rules = [{ format = "t2", kernel = "lut" }]')
    dot, dot_flags = deploy_kernels(tmp_path, monkeypatch, 'rules = [{ format = "t2", kernel = "dot" }]')
    assert any(f & L.OPF_LUT for f in lut_flags) and not any(f & L.OPF_LUT for f in dot_flags)
    assert lut["build"]["binary"] == dot["build"]["binary"]  # the same cached runtime build ran both
    lut_layers = [x["kernel"] for x in lut["latency"]["layers"]["layers"]]
    dot_layers = [x["kernel"] for x in dot["latency"]["layers"]["layers"]]
    assert "lut" in lut["build"]["kernels"]["t2"] and "lut" not in dot["build"]["kernels"]["t2"]
    assert any(k.startswith("neon_dotprod/t2_lut_") for k in lut_layers), lut_layers
    assert not any("_lut_" in k for k in dot_layers), dot_layers
    assert lut["accuracy"]["passed"] and dot["accuracy"]["passed"]


@pytest.mark.parametrize("flags,op_index,message", [(0x2, 0, "unknown flags 0x2"),
                                                    (L.OPF_LUT, None, "applies to weighted ops only")])
def test_runtime_and_reader_refuse_bad_op_flags(tmp_path, flags, op_index, message):
    """graph_check.c (and the Python reader, for unknown bits) refuse flags they do not define; the hint on
    the host runtime (no lookup-table kernel there) is accepted and changes nothing."""
    import numpy as np
    import runtime_graphs as RG

    from edgeq.blob import write_blob
    from edgeq.errors import BlobError
    from edgeq.runtime import Session

    g = RG.all_ops_graph(0, "t2", RG.F.SCALE_ROW, None, False)
    if op_index is None:  # the hint on an op without weights
        op_index = next(i for i, op in enumerate(g.ops) if op.op not in kernel_rules.WEIGHTED_OPS)
    g.ops[op_index].flags = flags
    write_blob(g, tmp_path / "bad.edgeq")
    with pytest.raises(EdgeqError, match=message):
        Session(tmp_path / "bad.edgeq")
    if flags & ~L.OPF_ALL:
        with pytest.raises(BlobError, match=message):
            read_blob(tmp_path / "bad.edgeq")
    g.ops[op_index].flags = 0
    for op in g.ops:
        if op.op in kernel_rules.WEIGHTED_OPS:
            op.flags = L.OPF_LUT
    write_blob(g, tmp_path / "hint.edgeq")
    x = np.random.default_rng(0).normal(0, 1.5, (1, 7, 6, 3)).astype(np.float32)
    kernels = RG.check_session_matches_reference(tmp_path / "hint.edgeq", g, x)
    assert not any("_lut_" in k for k in kernels)


def test_builtin_rules_choose_per_board_and_the_latency_model_follows():
    """android-arm64's rules take the lookup-table kernel for a 512x1024 T158 layer, rpi5's keep SDOT; the
    modelled latency costs the kernel the blob asks for, with the bytes it streams (2.69 bits per weight)."""
    import numpy as np
    import torch
    from torch import nn

    from edgeq.importers.torch_export import from_module
    from edgeq.packer import Recipe, pack
    from edgeq.targets import latency

    torch.manual_seed(0)
    fg = from_module(nn.Sequential(nn.Linear(1024, 512)), torch.zeros(1, 1024))
    x = np.random.default_rng(0).standard_normal((8, 1024)).astype(np.float32)
    modelled = {}
    for board in ("android-arm64", "rpi5"):
        g = pack(fg, x, Recipe("t158"), target=board)
        (layer,) = latency.predict_graph(get_target(board), g).layers
        modelled[board] = layer
        assert g.metadata["kernels"] == {"linear.weight": "lut" if board == "android-arm64" else "dot"}
    assert modelled["android-arm64"].kernel == "neon_dotprod/t158_lut_matvec"
    assert modelled["rpi5"].kernel == "neon_dotprod/t158_matvec"
    assert modelled["android-arm64"].bytes >= 512 * 1024 * 2.69 / 8 > modelled["rpi5"].bytes
