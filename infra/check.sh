#!/usr/bin/env bash
# Compile infra/main.bicep where a Bicep compiler is installed; say plainly when it is not.
set -euo pipefail
cd "$(dirname "$0")"
if command -v bicep >/dev/null 2>&1; then
  bicep build main.bicep --stdout >/dev/null && echo "infra: main.bicep compiles (bicep $(bicep --version))"
elif command -v az >/dev/null 2>&1 && az bicep version >/dev/null 2>&1; then
  az bicep build --file main.bicep --stdout >/dev/null && echo "infra: main.bicep compiles (az bicep)"
else
  echo "infra: NOT COMPILED - no Bicep compiler on this machine (bicep or az bicep); infra/main.bicep is unchecked here"
fi
