"""The stable C ABI guard (tools/check_abi.py): the committed manifest matches the headers and the
host libedgeq.so, and mutated copies of the header or the library are caught unless the ABI version
is bumped."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
INCLUDE = ROOT / "runtimes" / "include"


def _load_check_abi():
    spec = importlib.util.spec_from_file_location("check_abi", ROOT / "tools" / "check_abi.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


check_abi = _load_check_abi()
VERSION = json.loads(check_abi.MANIFEST.read_text())["abi_version"]
EXTRA_FIELD = ("} edgeq_options_t;", "    uint32_t extra;\n} edgeq_options_t;")


@pytest.fixture(scope="module")
def host_lib() -> Path:
    from edgeq.runtime import build_library

    return build_library()


def _mutated_include(tmp_path: Path, *edits: tuple[str, str]) -> Path:
    inc = tmp_path / "include"
    shutil.copytree(INCLUDE, inc)
    header = inc / "edgeq" / "edgeq.h"
    text = header.read_text()
    for old, new in edits:
        assert old in text, old
        text = text.replace(old, new)
    header.write_text(text)
    return inc


def test_committed_manifest_matches_headers_and_host_library(host_lib):
    assert check_abi.check_abi_stability(host_lib) == []
    manifest = json.loads(check_abi.MANIFEST.read_text())
    assert manifest["abi_version"] == check_abi.abi_facts()["abi_version"]
    assert "edgeq_create" in manifest["exports"] and "eq_run_op" not in manifest["exports"]


def test_host_library_exports_exactly_the_abi(host_lib):
    facts = check_abi.abi_facts()
    assert check_abi.exported_symbols(host_lib) == check_abi.expected_exports(facts, "posix")


def test_struct_change_without_version_bump_fails(tmp_path):
    inc = _mutated_include(tmp_path, EXTRA_FIELD)
    problems = check_abi.check_abi_stability(None, include=inc)
    text = "\n".join(problems)
    size = json.loads(check_abi.MANIFEST.read_text())["structs"]["edgeq_options_t"]["size"]
    assert "without an EDGEQ_ABI_VERSION bump" in text
    assert f"abi.structs.edgeq_options_t.size: {size} -> {size + 4}" in text
    assert "--update-manifest" in text


def test_enum_value_and_prototype_changes_are_caught(tmp_path):
    inc = _mutated_include(tmp_path, ("EDGEQ_E_ARG = 300", "EDGEQ_E_ARG = 399"),
                           ("edgeq_run(edgeq_model_t *model, uint32_t batch)",
                            "edgeq_run(edgeq_model_t *model, uint64_t batch)"))
    text = "\n".join(check_abi.check_abi_stability(None, include=inc))
    assert "abi.values.EDGEQ_E_ARG: 300 -> 399" in text
    assert "abi.functions.edgeq.h.edgeq_run" in text and "uint64_t batch" in text


def test_version_bump_asks_to_regenerate_then_passes(tmp_path):
    inc = _mutated_include(tmp_path, (f"#define EDGEQ_ABI_VERSION {VERSION}", "#define EDGEQ_ABI_VERSION 99"),
                           EXTRA_FIELD)
    manifest = tmp_path / "edgeq.abi.json"
    shutil.copy(check_abi.MANIFEST, manifest)
    problems = check_abi.check_abi_stability(None, manifest=manifest, include=inc)
    assert any(f"records {VERSION}: run tools/check_abi.py --update-manifest" in p for p in problems), problems
    assert not any("without an EDGEQ_ABI_VERSION bump" in p for p in problems)
    facts = check_abi.abi_facts(inc)
    facts["exports"] = json.loads(check_abi.MANIFEST.read_text())["exports"]
    manifest.write_text(json.dumps(facts))
    # regenerated: only the Python binding's mirror of the version is left to update
    assert check_abi.check_abi_stability(None, manifest=manifest, include=inc) == [
        f"edgeq/runtime.py ABI_VERSION is {VERSION}, edgeq.h says 99"]


def test_library_exporting_more_than_the_abi_is_caught(tmp_path, host_lib):
    extra = tmp_path / "extra.c"
    extra.write_text('#include "edgeq/edgeq.h"\nEDGEQ_API int edgeq_debug_hook(void) { return 1; }\n')
    objects = sorted(str(p) for p in host_lib.parent.rglob("*.o") if "runner" not in p.parts)
    lib = tmp_path / "libedgeq.so"
    subprocess.run(["cc", "-shared", "-fPIC", "-fvisibility=hidden", "-I", str(INCLUDE), str(extra), *objects,
                    "-o", str(lib), "-lm", "-pthread"], check=True)
    problems = check_abi.check_abi_stability(lib)
    assert "libedgeq.so exports edgeq_debug_hook, which no public header declares EDGEQ_API" in problems
    assert any("abi.exports" in p and "without an EDGEQ_ABI_VERSION bump" in p for p in problems)
