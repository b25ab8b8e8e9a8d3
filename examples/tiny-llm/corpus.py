"""Offline training text: the docstrings of the Python standard library, collected deterministically
(sorted module names, each module's docstrings by sorted name, duplicates dropped)."""

from __future__ import annotations

import importlib
import inspect
import sys
import warnings

SKIP = {"antigravity", "this", "idlelib", "tkinter", "turtle", "turtledemo", "lib2to3", "test", "pydoc_data",
        "ensurepip", "venv", "__main__", "__phello__", "_pydev_bundle"}


def _import(name: str):
    """The module, or None where it does not import here (platform-specific modules add nothing)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return importlib.import_module(name)
    except Exception:  # noqa: BLE001
        return None


def _docs_of(module) -> list[str]:
    out = [module.__doc__ or ""]
    for _, obj in sorted(vars(module).items()):
        if getattr(obj, "__module__", None) != module.__name__:
            continue
        if inspect.isclass(obj) or inspect.isfunction(obj):
            out.append(obj.__doc__ or "")
            if inspect.isclass(obj):
                out += [m.__doc__ or "" for _, m in sorted(vars(obj).items()) if inspect.isfunction(m)]
    return out


def stdlib_docstrings(max_chars: int = 4_000_000) -> str:
    """Joined docstrings, at most max_chars characters (depends only on the Python version and platform)."""
    seen: set[str] = set()
    parts: list[str] = []
    total = 0
    for name in sorted(sys.stdlib_module_names):
        if name in SKIP or name.startswith("_"):
            continue
        module = _import(name)
        if module is None:
            continue
        for doc in _docs_of(module):
            if not isinstance(doc, str):
                continue
            doc = inspect.cleandoc(doc).strip()
            if len(doc) < 40 or doc in seen:
                continue
            seen.add(doc)
            parts.append(doc)
            total += len(doc) + 2
            if total >= max_chars:
                return "\n\n".join(parts)
    return "\n\n".join(parts)


if __name__ == "__main__":
    text = stdlib_docstrings()
    print(f"{len(text):,} characters; sample:\n{text[:400]}")
