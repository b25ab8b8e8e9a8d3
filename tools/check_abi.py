#!/usr/bin/env python3
"""Two guards over the runtime's C headers. Exit 0 when both hold, 1 otherwise.

1. Format mirror: the Python mirror of the blob format equals runtimes/include/edgeq/edgeq_blob.h.
   A probe prints sizeof/offsetof of every struct field and the value of every mirrored constant;
   they are compared with edgeq/blob/layout.py and edgeq/formats/ids.py, and every EDGEQ_* constant
   in the header must have a Python mirror.
2. ABI stability: the public ABI (edgeq.h, edgeq_pal.h, edgeq_pal_hooks.h: prototypes, struct sizes/alignments/field
   offsets and types, enum and #define values) and the symbols libedgeq.so exports must equal the
   committed manifest runtimes/abi/edgeq.abi.json unless EDGEQ_ABI_VERSION was bumped. After a
   deliberate change: bump EDGEQ_ABI_VERSION (and edgeq.runtime.ABI_VERSION), then
   `python tools/check_abi.py --update-manifest` and commit the manifest.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEADER = ROOT / "runtimes/include/edgeq/edgeq_blob.h"
INCLUDE = ROOT / "runtimes/include"
MANIFEST = ROOT / "runtimes/abi/edgeq.abi.json"
# The public ABI, and for each build's platform layer (runtimes/Makefile PAL=...) the headers whose
# EDGEQ_API functions that libedgeq.so exports: nothing more, nothing less.
ABI_HEADERS = ("edgeq.h", "edgeq_pal.h", "edgeq_pal_hooks.h")
EXPORTING_HEADERS = {"posix": ("edgeq.h", "edgeq_pal.h"), "hooks": ABI_HEADERS}
NOT_VALUES = {"EDGEQ_H", "EDGEQ_PAL_H", "EDGEQ_PAL_HOOKS_H", "EDGEQ_API"}
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


def _strip_comments(text: str) -> str:
    return re.sub(r"/\*.*?\*/", " ", text, flags=re.DOTALL)


def _one_line(text: str) -> str:
    """C declaration text in one canonical spelling: tokens separated by single spaces."""
    return " ".join(re.findall(r"\w+|[^\s\w]", text))


def parse_header(text: str) -> dict:
    """Functions (name -> prototype), structs (name -> [(field, type)]), value names of one header."""
    text = _strip_comments(text)
    functions = {}
    for m in re.finditer(r"EDGEQ_API\s+([^;{]+?\))\s*;", text):
        proto = _one_line(m.group(1))
        functions[re.search(r"(\w+) \(", proto).group(1)] = proto
    structs = {}
    for m in re.finditer(r"typedef\s+struct\s*\w*\s*\{(.*?)\}\s*(\w+)\s*;", text, re.DOTALL):
        fields = []
        for decl in filter(None, (d.strip() for d in m.group(1).split(";"))):
            fp = re.fullmatch(r"(.*?)\(\s*\*\s*(\w+)\s*\)\s*(\(.*\))", decl, re.DOTALL)  # function pointer
            f = re.fullmatch(r"(.*?)\b(\w+)\s*(\[[^\]]*\])?", decl, re.DOTALL)
            if fp:
                fields.append((fp.group(2), _one_line(f"{fp.group(1)}(*){fp.group(3)}")))
            elif f and "," not in decl:
                fields.append((f.group(2), _one_line(f.group(1) + (f.group(3) or ""))))
            else:
                raise ValueError(f"cannot parse field '{decl}' of {m.group(2)}: one declarator per line")
        structs[m.group(2)] = fields
    values = set(re.findall(r"#define\s+(EDGEQ_\w+)\s+\S", text)) - NOT_VALUES
    for body in re.findall(r"enum\s*\w*\s*\{(.*?)\}", text, re.DOTALL):
        values |= set(re.findall(r"\b(EDGEQ_\w+)\s*(?:=[^,]*)?(?:,|$)", body.strip()))
    return {"functions": functions, "structs": structs, "values": values}


def _layout_probe(headers: list[str], structs: dict, values: set[str]) -> str:
    lines = ["#include <stdio.h>", "#include <stddef.h>", *[f'#include "edgeq/{h}"' for h in headers],
             "int main(void) {"]
    for name, fields in structs.items():
        lines.append(f'printf("{name} size %zu\\n", sizeof({name}));')
        lines.append(f'printf("{name} align %zu\\n", offsetof(struct {{ char c; {name} x; }}, x));')
        for field, _ in fields:
            lines.append(f'printf("{name} .{field} %zu\\n", offsetof({name}, {field}));')
    for v in sorted(values):
        lines.append(f'printf("value {v} %lld\\n", (long long)({v}));')
    return "\n".join(lines + ["return 0;", "}"])


def exported_symbols(lib: Path) -> list[str]:
    """Defined global/weak symbols in the dynamic symbol table (readelf reads any ELF machine)."""
    out = subprocess.run(["readelf", "--dyn-syms", "-W", str(lib)], check=True, capture_output=True,
                         text=True).stdout
    names = set()
    for line in out.splitlines():
        cols = line.split()
        if len(cols) >= 8 and cols[4] in ("GLOBAL", "WEAK") and cols[6] != "UND" and cols[3] in ("FUNC", "OBJECT"):
            names.add(cols[7].split("@")[0])
    return sorted(names)


def abi_facts(include: Path = INCLUDE, cc: str = "cc") -> dict:
    """The ABI as the headers and this compiler define it (sizes are this host's: LP64)."""
    parsed = {h: parse_header((include / "edgeq" / h).read_text()) for h in ABI_HEADERS}
    structs = {k: v for p in parsed.values() for k, v in p["structs"].items()}
    values = set().union(*(p["values"] for p in parsed.values()))
    with tempfile.TemporaryDirectory() as tmp:
        src, exe = Path(tmp) / "abi_probe.c", Path(tmp) / "abi_probe"
        src.write_text(_layout_probe(list(ABI_HEADERS), structs, values))
        subprocess.run([cc, "-std=c99", "-Wall", "-Werror", "-I", str(include), str(src), "-o", str(exe)],
                       check=True, capture_output=True, text=True)
        out = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout
    got = dict(line.rsplit(" ", 1) for line in out.splitlines())
    layouts = {}
    for name, fields in structs.items():
        layouts[name] = {"size": int(got[f"{name} size"]), "align": int(got[f"{name} align"]),
                         "fields": [[f, t, int(got[f"{name} .{f}"])] for f, t in fields]}
    consts = {v: int(got[f"value {v}"]) for v in sorted(values)}
    return {"abi_version": consts["EDGEQ_ABI_VERSION"],
            "functions": {h: p["functions"] for h, p in parsed.items()},
            "structs": layouts, "values": consts}


def expected_exports(facts: dict, pal: str) -> list[str]:
    return sorted(name for h in EXPORTING_HEADERS[pal] for name in facts["functions"][h])


def _diff(old, new, path: str) -> list[str]:
    """Human-readable differences between two JSON values."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = [f"{path}.{k}: removed" for k in old if k not in new]
        out += [f"{path}.{k}: added ({json.dumps(new[k])})" for k in new if k not in old]
        for k in old.keys() & new.keys():
            out += _diff(old[k], new[k], f"{path}.{k}")
        return out
    return [] if old == new else [f"{path}: {json.dumps(old)} -> {json.dumps(new)}"]


def check_abi_stability(lib: Path | None, pal: str = "posix", manifest: Path = MANIFEST,
                        include: Path = INCLUDE, cc: str = "cc") -> list[str]:
    """Problems with the ABI against the manifest, and with lib's exports against the headers."""
    facts = abi_facts(include, cc)
    problems = []
    if lib is not None:
        got, want = exported_symbols(lib), expected_exports(facts, pal)
        problems += [f"{lib.name} exports {s}, which no public header declares EDGEQ_API" for s in got if s not in want]
        problems += [f"{lib.name} does not export {s} (declared EDGEQ_API)" for s in want if s not in got]
        if pal == "posix":  # the manifest records the host build's exports; others follow from the headers
            facts["exports"] = got
    if not manifest.is_file():
        return problems + [f"{manifest} missing: run tools/check_abi.py --update-manifest"]
    old = json.loads(manifest.read_text())
    facts.setdefault("exports", old.get("exports"))
    changes = _diff({k: v for k, v in old.items() if k != "abi_version"},
                    {k: v for k, v in facts.items() if k != "abi_version"}, "abi")
    if old["abi_version"] == facts["abi_version"]:
        problems += [f"ABI changed without an EDGEQ_ABI_VERSION bump: {c}" for c in changes]
        if changes:
            problems.append(f"if the change is intended: bump EDGEQ_ABI_VERSION in edgeq.h (and ABI_VERSION in "
                            f"edgeq/runtime.py), then run tools/check_abi.py --update-manifest and commit {MANIFEST.name}")
    else:
        problems.append(f"EDGEQ_ABI_VERSION is {facts['abi_version']} but {manifest.name} records "
                        f"{old['abi_version']}: run tools/check_abi.py --update-manifest and commit it")
    from edgeq import runtime

    if runtime.ABI_VERSION != facts["abi_version"]:
        problems.append(f"edgeq/runtime.py ABI_VERSION is {runtime.ABI_VERSION}, edgeq.h says {facts['abi_version']}")
    return problems


def host_library() -> Path:
    """libedgeq.so for this host, from the runtime binding's cached build (PAL=posix)."""
    from edgeq.runtime import build_library

    return build_library()


def update_manifest(lib: Path, manifest: Path = MANIFEST) -> None:
    facts = abi_facts()
    facts["exports"] = exported_symbols(lib)
    manifest.parent.mkdir(parents=True, exist_ok=True)
    tmp = manifest.with_suffix(".tmp")
    tmp.write_text(json.dumps(facts, indent=1) + "\n")
    os.replace(tmp, manifest)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lib", type=Path, help="libedgeq.so to check (default: the host build, PAL=posix)")
    ap.add_argument("--pal", default="posix", choices=sorted(EXPORTING_HEADERS), help="platform layer of --lib")
    ap.add_argument("--manifest", type=Path, default=MANIFEST)
    ap.add_argument("--include", type=Path, default=INCLUDE, help="include dir holding edgeq/*.h")
    ap.add_argument("--update-manifest", action="store_true", help="rewrite the manifest from the headers")
    args = ap.parse_args()
    lib = args.lib or host_library()
    if args.update_manifest:
        update_manifest(lib, args.manifest)
        print(f"wrote {args.manifest}")
        return 0
    mirror = check()
    stability = check_abi_stability(lib, args.pal, args.manifest, args.include)
    for p in mirror + stability:
        print(p)
    print("ABI check: " + ("OK" if not mirror else f"{len(mirror)} mismatch(es)"))
    print("ABI stability: " + ("OK" if not stability else f"{len(stability)} problem(s)"))
    return 1 if mirror or stability else 0


if __name__ == "__main__":
    sys.exit(main())
