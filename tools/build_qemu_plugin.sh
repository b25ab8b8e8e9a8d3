#!/usr/bin/env bash
# Builds qemu's instruction-count TCG plugin (tests/plugin/insn.c) from Debian's qemu source
# package: Debian ships no built plugins (DESIGN §6). Output: $EDGEQ_CACHE/qemu-plugins/libinsn.so
set -euo pipefail
OUT="${EDGEQ_CACHE:-$HOME/.cache/edgeq}/qemu-plugins"
[ -f "$OUT/libinsn.so" ] && exit 0
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
if ! grep -rqs "deb-src" /etc/apt/sources.list /etc/apt/sources.list.d/; then
  printf 'Types: deb-src\nURIs: http://deb.debian.org/debian\nSuites: bookworm\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
    | $SUDO tee /etc/apt/sources.list.d/edgeq-src.sources >/dev/null
  $SUDO apt-get update -qq
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get source --download-only qemu >/dev/null 2>&1)
tar -xJf "$work"/qemu_*.orig.tar.xz -C "$work" --wildcards '*/include/qemu/qemu-plugin.h' '*/tests/plugin/insn.c'
src=$(dirname "$(dirname "$(find "$work" -name insn.c)")")/..
mkdir -p "$OUT"
gcc -O2 -shared -fPIC -I"$src/include/qemu" "$src/tests/plugin/insn.c" $(pkg-config --cflags --libs glib-2.0) \
  -o "$OUT/libinsn.so.tmp"
mv "$OUT/libinsn.so.tmp" "$OUT/libinsn.so"
echo "bootstrap: built $OUT/libinsn.so"
