#!/usr/bin/env python3
"""Proves the Python mirror of the blob format equals runtimes/include/edgeq/edgeq_blob.h.

Compiles a probe that prints sizeof/offsetof of every struct field and the value of every
mirrored constant, compares them with edgeq/blob/layout.py and edgeq/formats/ids.py, and checks
that every EDGEQ_* constant in the header has a Python mirror. Exit 0 when equal, 1 otherwise.
"""

from __future__ import annotations

import ctypes
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEADER = ROOT / "runtimes/include/edgeq/edgeq_blob.h"
sys.path.insert(0, str(ROOT))

from edgeq.blob import layout
from edgeq.formats import ids

NOT_CONSTANTS = {"EDGEQ_BLOB_H", "EDGEQ_STATIC_ASSERT", "EDGEQ_MAGIC"}


def python_constants() -> dict[str, int]:
    found = {}
    for mod in (layout, ids):
        for name, value in vars(mod).items():
            if name.isupper() and isinstance(value, int) and not isinstance(value, bool):
                found[name] = value
    return found


def header_constant_names() -> set[str]:
    text = HEADER.read_text()
    names = set(re.findall(r"#define\s+EDGEQ_(\w+)\s+\S", text))
    names |= set(re.findall(r"^\s*EDGEQ_(\w+)\s*=", text, re.MULTILINE))
    return {n for n in names if "EDGEQ_" + n not in NOT_CONSTANTS}


def probe_source(consts: dict[str, int]) -> str:
    lines = ['#include <stdio.h>', '#include <stddef.h>', '#include "edgeq/edgeq_blob.h"', "int main(void) {"]
    for struct in layout.STRUCTS:
        name = struct.__name__
        lines.append(f'printf("sizeof {name} %zu\\n", sizeof({name}));')
        for field, *_ in struct._fields_:
            lines.append(f'printf("offsetof {name}.{field} %zu\\n", offsetof({name}, {field}));')
    for cname in sorted(consts):
        lines.append(f'printf("const {cname} %lld\\n", (long long)(EDGEQ_{cname}));')
    lines += ["return 0;", "}"]
    return "\n".join(lines)


def expected(consts: dict[str, int]) -> dict[str, int]:
    out = {}
    for struct in layout.STRUCTS:
        out[f"sizeof {struct.__name__}"] = ctypes.sizeof(struct)
        for field, *_ in struct._fields_:
            out[f"offsetof {struct.__name__}.{field}"] = getattr(struct, field).offset
    for name, value in consts.items():
        out[f"const {name}"] = value
    return out


def check(cc: str = "cc") -> list[str]:
    """Returns a list of mismatches (empty when the mirror is exact)."""
    consts = python_constants()
    in_header = header_constant_names()
    problems = [f"header constant EDGEQ_{n} has no Python mirror" for n in sorted(in_header - set(consts))]
    mirrored = {k: v for k, v in consts.items() if k in in_header}
    problems += [f"Python constant {n} does not exist in the header" for n in sorted(set(ids.__dict__) & (
        {k for k in consts if k not in in_header and k in vars(ids)}))]
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "probe.c"
        src.write_text(probe_source(mirrored))
        exe = Path(tmp) / "probe"
        subprocess.run([cc, "-std=c99", "-Wall", "-Werror", "-I", str(HEADER.parent.parent), str(src), "-o", str(exe)],
                       check=True, capture_output=True, text=True)
        out = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout
    got = {}
    for line in out.splitlines():
        key, value = line.rsplit(" ", 1)
        got[key] = int(value)
    for key, value in expected(mirrored).items():
        if got.get(key) != value:
            problems.append(f"{key}: C says {got.get(key)}, Python says {value}")
    return problems


def main() -> int:
    problems = check()
    for p in problems:
        print(p)
    print("ABI check: " + ("OK" if not problems else f"{len(problems)} mismatch(es)"))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
