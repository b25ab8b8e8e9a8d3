#!/usr/bin/env bash
# Creates the places of exporter.yaml on the coordinator (once per lab). LG_COORDINATOR=HOST:PORT selects it.
# Run with the labgrid-client of .venv-labgrid (tools/labgrid_env.sh), or any labgrid 26.x client.
set -euo pipefail
LG=${LABGRID_CLIENT:-labgrid-client}
EXPORTER=${1:-lab-host-1}

$LG -p lab-rpi5 create
$LG -p lab-rpi5 add-match "$EXPORTER/rpi5/*"
$LG -p lab-rpi5 set-comment "Raspberry Pi 5: edgeq deploy --target rpi5 --connect labgrid://lab-rpi5"

$LG -p lab-stm32h7 create
$LG -p lab-stm32h7 add-match "$EXPORTER/stm32h7/*"
$LG -p lab-stm32h7 set-comment "NUCLEO-H743ZI2: edgeq deploy --target stm32h7 --connect labgrid://lab-stm32h7"
# A place whose board is an emulator carries the tag emulated=true: edgeq then labels its timings emulated.
# $LG -p stm32-emulated set-tags emulated=true
