"""Cross-compiles runtimes/ (libedgeq + edgeq_runner) for a target into a content-addressed cache."""

from edgeq.build.builder import BuildResult, build_runtime, cache_root, toolchain

__all__ = ["BuildResult", "build_runtime", "cache_root", "toolchain"]
