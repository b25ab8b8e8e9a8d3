#!/usr/bin/env bash
# Installs what edgeq needs on Debian 12: system packages (only the missing ones)
# and a .venv with the project and its test/example extras. Safe to re-run.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  build-essential cmake pkg-config python3-venv
  qemu-user qemu-system-arm
  gcc-aarch64-linux-gnu g++-aarch64-linux-gnu libc6-dev-arm64-cross
  gcc-arm-none-eabi libnewlib-arm-none-eabi
  yosys iverilog
  openssh-server openssh-client adb
  libglib2.0-dev clang-14 libclang-rt-14-dev llvm-14
  openjdk-17-jdk-headless
)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "bootstrap: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

bash tools/build_qemu_plugin.sh || echo "bootstrap: qemu instruction-count plugin not built (deploy reports no instruction counts)"

PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
stamp=.venv/.edgeq-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "bootstrap: installing Python packages into .venv"
  .venv/bin/pip install -q --upgrade pip >/dev/null
  .venv/bin/pip install -q -e ".[dev,examples,gguf,llm,executorch]"
  touch "$stamp"
fi

# labgrid (device farms) in its own environment: its pyserial fork must not replace edgeq's pyserial.
bash tools/labgrid_env.sh || echo "bootstrap: .venv-labgrid not created (the labgrid tests will be skipped)"
