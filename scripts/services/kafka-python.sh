#!/usr/bin/env bash
# Installs kafka-python (a pure-Python Kafka client, from PyPI) into .tools/kafka-python,
# idempotently: the Kafka tests use it as a producer independent of our own client.
set -euo pipefail
cd "$(dirname "$0")/../.."
version="2.2.15"
venv=".tools/kafka-python"
if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "import kafka, sys; sys.exit(kafka.__version__ != '$version')" 2>/dev/null; then
  echo "kafka-python $version already installed in $venv"
  exit 0
fi
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check "kafka-python==$version"
"$venv/bin/python" -c "import kafka; print('kafka-python', kafka.__version__)"
