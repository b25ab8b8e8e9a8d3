#!/usr/bin/env bash
# Creates .venv-labgrid: labgrid's coordinator, exporter and client in an environment of their own.
# Why separate: labgrid depends on pyserial-labgrid, a fork that installs the same `serial` module as
# pyserial. In one environment with edgeq, whichever was installed last wins, silently. edgeq only
# shells out to .venv-labgrid/bin/labgrid-client, so the two never share an interpreter.
# Safe to re-run: does nothing while the stamp is newer than this script.
set -euo pipefail
cd "$(dirname "$0")/.."
exec 9<tools/labgrid_env.sh && flock 9  # one at a time (parallel test workers may all ask for it)

LABGRID_VERSION=26.0.1
venv=.venv-labgrid
stamp=$venv/.edgeq-labgrid-$LABGRID_VERSION
if [ -f "$stamp" ] && [ "$stamp" -nt tools/labgrid_env.sh ] && [ -x "$venv/bin/labgrid-client" ]; then
  exit 0
fi
PY=${PYTHON:-python3}
[ -x "$venv/bin/python" ] || "$PY" -m venv "$venv"
echo "bootstrap: installing labgrid==$LABGRID_VERSION into $venv"
"$venv/bin/pip" install -q --upgrade pip >/dev/null
"$venv/bin/pip" install -q "labgrid==$LABGRID_VERSION"
"$venv/bin/labgrid-client" --help >/dev/null
rm -f "$venv"/.edgeq-labgrid-*
touch "$stamp"
