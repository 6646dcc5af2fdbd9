#!/usr/bin/env bash
# Check infra/ on any machine. Where a Bicep compiler is installed, compile main.bicep. Everywhere, run
# tests/unit/test_infra.py: main.bicep parsed with a Python Bicep parser (pycep-parser), each resource type and
# API version checked against the pairs Microsoft's template reference documents, and azure.yaml checked against
# the tag azd finds the app by. A compiler only warns on an unknown type or version (BCP081), so both run.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PY:-.venv/bin/python}"
if command -v bicep >/dev/null 2>&1; then
  bicep build infra/main.bicep --stdout >/dev/null && echo "infra: main.bicep compiles (bicep $(bicep --version))"
elif command -v az >/dev/null 2>&1 && az bicep version >/dev/null 2>&1; then
  az bicep build --file infra/main.bicep --stdout >/dev/null && echo "infra: main.bicep compiles (az bicep)"
else
  echo "infra: no Bicep compiler on this machine (bicep or az bicep): main.bicep is parsed and checked, not compiled"
fi
"$PY" -m pytest -q -p no:cacheprovider tests/unit/test_infra.py
