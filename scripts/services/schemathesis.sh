#!/usr/bin/env bash
# Installs schemathesis (from PyPI) into .tools/schemathesis, idempotently. The API test
# (node/tests/api_schema.rs) runs it against a live node's /v1/openapi.json.
set -euo pipefail
cd "$(dirname "$0")/../.."
version="4.32.5"
venv=".tools/schemathesis"
if [ -x "$venv/bin/st" ] && "$venv/bin/st" --version 2>/dev/null | grep -q "$version"; then
  echo "schemathesis $version already installed in $venv"
  exit 0
fi
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$version"
"$venv/bin/st" --version
