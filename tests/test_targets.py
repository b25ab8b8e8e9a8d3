"""Board registry: every shipped board validates; every malformed file gives one error naming file and key."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from edgeq.cli import main
from edgeq.errors import EdgeqError
from edgeq.targets import get_target, list_targets, load_file
from edgeq.targets.registry import BUILTIN_DIR, ENV_PATH, SCHEMA, fpga_device

BOARDS = sorted(p.stem for p in BUILTIN_DIR.glob("*.toml"))
REQUIRED = {"host", "rpi5", "rpi4", "android-arm64", "stm32l4", "stm32h7", "stm32u5", "corstone300", "xc7z020",
            "xczu3eg", "ice40up5k"}
GOOD = """\
id = "{id}"
name = "Test board"
family = "mcu"
default_format = "t2"
layout = "row-major"

[cpu]
arch = "armv7e-m"
core = "cortex-m4"
cores = 1
freq_mhz = 100
features = ["dsp"]
source = "test"

[memory]
flash_kb = 64
flash_origin = 0x08000000
ram_kb = 16
ram_origin = 0x20000000
read_gbps = [0.4]
source = "test"

[latency]
ipc = 1.0
op_overhead_us = 1.0
source = "test"

[build]
cc = "arm-none-eabi-gcc"
package = "gcc-arm-none-eabi"
cflags = ["-Os", "-mcpu=cortex-m4", "-mthumb"]
static = true

[connect]
default = "qemu-system://mps2-an386"

[emulator]
machine = "mps2-an386"
flash_origin = 0x0
flash_kb = 4096
ram_origin = 0x20000000
ram_kb = 4096
uart_base = 0x40004000
core_hz = 25000000
uart_rx_irq = 0
source = "test"

[security]
require_signature = false
"""


def write_board(directory: Path, text: str, name: str = "tiny") -> Path:
    path = directory / f"{name}.toml"
    path.write_text(text.format(id=name) if "{id}" in text else text)
    return path


def test_required_boards_are_shipped():
    assert REQUIRED <= set(BOARDS)


@pytest.mark.parametrize("board", BOARDS)
def test_board_validates(board):
    t = load_file(BUILTIN_DIR / f"{board}.toml")
    assert t.id == board
    assert t.section("security")["require_signature"] is False
    if t.family != "fpga":
        assert t.connect and t.build["cc"] and t.build["package"]


@pytest.mark.parametrize("board", BOARDS)
def test_every_number_has_a_source(board):
    """Each section with figures has a `source`, and each numeric line a `# source:` comment."""
    path = BUILTIN_DIR / f"{board}.toml"
    data = tomllib.loads(path.read_text())
    for title, table in data.items():
        if isinstance(table, dict) and any(isinstance(v, int | float) and not isinstance(v, bool)
                                           for v in table.values()):
            assert table.get("source"), f"{board}: [{title}] has numbers but no source"
    for line in path.read_text().splitlines():
        if re.match(r"\s*\w+\s*=\s*(\[\s*)?[-0-9.]", line):
            assert "# source:" in line, f"{board}: no source comment on: {line}"


def test_mcu_boards_name_real_and_emulated_memory():
    for t in list_targets():
        if t.family == "mcu":
            assert t.connect == f"qemu-system://{t.section('emulator')['machine']}"
            assert t.memory["flash_kb"] > 0 and t.memory["ram_kb"] > 0


def test_fpga_registry_numbers_match_the_cost_model():
    from edgeq.targets.fpga import DEVICES

    for board, fallback in DEVICES.items():
        dev = fpga_device(board)
        assert (dev.family, dev.lut, dev.ff, dev.dsp, dev.bram, dev.lutram) == (
            fallback.family, fallback.lut, fallback.ff, fallback.dsp, fallback.bram, fallback.lutram)


def _error(tmp_path: Path, text: str) -> str:
    path = write_board(tmp_path, text)
    with pytest.raises(EdgeqError) as e:
        load_file(path)
    message = str(e.value)
    assert str(path) in message and "\n" not in message
    assert e.value.exit_code == 2
    return message


@pytest.mark.parametrize("edit, expected", [
    (lambda s: s.replace("cores = 1\n", "cores = 1\nturbo = true\n"), "[cpu] turbo: unknown key"),
    (lambda s: s.replace("freq_mhz = 100", 'freq_mhz = "fast"'), "[cpu] freq_mhz: expected a number, got 'fast'"),
    (lambda s: s.replace("cores = 1", "cores = 1.5"), "[cpu] cores: expected an integer"),
    (lambda s: s.replace("static = true", 'static = "yes"'), "[build] static: expected true or false"),
    (lambda s: s.replace('read_gbps = [0.4]', 'read_gbps = ["x"]'), "[memory] read_gbps[0]: expected a number"),
    (lambda s: s.replace("ram_kb = 16\n", ""), "[memory] ram_kb: missing"),
    (lambda s: s.replace('name = "Test board"\n', ""), "name: missing"),
    (lambda s: s.replace('family = "mcu"', 'family = "gpu"'), "family: 'gpu' is not one of"),
    (lambda s: s.replace('features = ["dsp"]', 'features = ["dsp", "warp"]'), "[cpu] features: unknown feature 'warp'"),
    (lambda s: s.replace('default_format = "t2"', 'default_format = "q3"'), "default_format: 'q3' is not one of"),
    (lambda s: s.replace("cores = 1", "cores = 0"), "[cpu] cores: must be positive"),
    (lambda s: s + "\n[gpu]\ncores = 1\n", "[gpu]: unknown section"),
    (lambda s: s + "\n[fpga]\npart = 'x'\n", "[fpga]: not used by family mcu"),
    (lambda s: s.replace("[security]\nrequire_signature = false\n", ""), "[security]: missing section"),
    (lambda s: s.replace("flash_kb = 64\n", "flash_kb = 64\nram_mb = 1\n"), "[memory] ram_mb: unknown key for family mcu"),
    (lambda s: s.replace('id = "tiny"', 'id = "other"'), "id: 'other' must equal the file name"),
    (lambda s: s.replace("[kernels]", "") + "\n[kernels]\nq3 = 'x'\n", "[kernels] q3: unknown key"),
    (lambda s: s.replace("flash_origin = 0x08000000", "flash_origin = 0x108000000"), "not a 32-bit address"),
    (lambda s: s.replace("cpu]", "cpu"), "not valid TOML"),
    (lambda s: "security = 3\n" + s.replace("[security]\nrequire_signature = false\n", ""),
     "security: expected a table [security]"),
])
def test_malformed_board_gives_one_clear_error(tmp_path, edit, expected):
    message = _error(tmp_path, edit(GOOD.format(id="tiny")))
    assert expected in message


def test_fpga_memory_keys_follow_the_family(tmp_path):
    text = (BUILTIN_DIR / "xc7z020.toml").read_text().replace('id = "xc7z020"', 'id = "tiny"')
    assert "[fpga] bram18: missing (required for family xilinx-7)" in _error(
        tmp_path, re.sub(r"bram18 = .*\n", "", text))
    assert "[fpga] ebr: not used by family xilinx-7" in _error(tmp_path, text.replace("dsp = 220", "dsp = 220\nebr = 3"))


def test_schema_documents_every_key():
    for section in SCHEMA.values():
        for key in section.keys.values():
            assert key.doc


def test_unknown_target_lists_valid_ids():
    with pytest.raises(EdgeqError) as e:
        get_target("rpi9")
    assert "rpi9" in str(e.value) and "rpi5" in str(e.value) and "stm32h7" in str(e.value)


def test_user_board_directory(tmp_path, monkeypatch):
    write_board(tmp_path, GOOD, "myboard")
    override = (BUILTIN_DIR / "rpi5.toml").read_text().replace("freq_mhz = 2400", "freq_mhz = 2800")
    write_board(tmp_path, override, "rpi5")
    monkeypatch.setenv(ENV_PATH, str(tmp_path))
    assert get_target("myboard").cpu["freq_mhz"] == 100
    assert get_target("rpi5").cpu["freq_mhz"] == 2800  # a user file wins over the built-in
    assert {"myboard", "rpi5", "stm32h7"} <= {t.id for t in list_targets()}


def test_broken_user_board_fails_listing_with_its_name(tmp_path, monkeypatch):
    write_board(tmp_path, GOOD.replace("cores = 1", "cores = true"), "bad")
    monkeypatch.setenv(ENV_PATH, str(tmp_path))
    result = CliRunner().invoke(main, ["targets", "list"])
    assert result.exit_code == 2
    assert "bad.toml: [cpu] cores: expected an integer, got true" in result.output


def test_cli_list_json():
    result = CliRunner().invoke(main, ["targets", "list", "--json"])
    assert result.exit_code == 0, result.output
    rows = {r["id"]: r for r in json.loads(result.output)}
    assert REQUIRED <= set(rows)
    assert rows["rpi5"]["connect"] == "qemu-user://cortex-a76"
    assert rows["android-arm64"]["connect"] == "qemu-user://max"


def test_cli_list_table():
    result = CliRunner().invoke(main, ["targets", "list"], terminal_width=200)
    assert result.exit_code == 0 and "cortex-a76" in result.output and "stm32u5" in result.output


@pytest.mark.parametrize("board, kind", [("rpi5", "cpu-build"), ("host", "cpu-build"), ("stm32h7", "mcu"),
                                         ("ice40up5k", "fpga")])
def test_cli_show_includes_generated_config(board, kind):
    result = CliRunner().invoke(main, ["targets", "show", board, "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["target"]["id"] == board and out["config"]["kind"] == kind
    table = CliRunner().invoke(main, ["targets", "show", board], terminal_width=200)
    assert table.exit_code == 0 and "generated config" in table.output


def test_cli_show_unknown_target_exit_2():
    result = CliRunner().invoke(main, ["targets", "show", "nope"])
    assert result.exit_code == 2 and "valid targets:" in result.output


def test_cli_validate(tmp_path):
    ok = CliRunner().invoke(main, ["targets", "validate"])
    assert ok.exit_code == 0 and ok.output.count("ok ") == len(BOARDS)
    bad = write_board(tmp_path, GOOD.replace("ipc = 1.0", "ipc = 'high'"))
    result = CliRunner().invoke(main, ["targets", "validate", str(bad), str(BUILTIN_DIR / "rpi5.toml"), "--json"])
    assert result.exit_code == 2
    rows = json.loads(result.output[: result.output.rindex("]") + 1])
    assert [r["ok"] for r in rows] == [False, True]
    assert "[latency] ipc: expected a number" in rows[0]["error"]


def test_docs_describe_every_schema_key():
    text = (BUILTIN_DIR.parent / "docs" / "targets.md").read_text()
    for title, section in SCHEMA.items():
        if title:
            assert f"### [{title}]" in text, title
        for name in section.keys:
            assert f"| `{name}` |" in text, (title, name)
