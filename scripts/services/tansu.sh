#!/usr/bin/env bash
# Installs tansu (an Apache-Kafka-compatible broker written in Rust) for the Kafka tests,
# idempotently: the binary is cached in ~/.cargo/bin and rebuilt only when the version differs.
# The tests start and stop their own broker on 127.0.0.1 (node/tests/support/kafka.rs).
set -euo pipefail
version="${TANSU_VERSION:-}"
if command -v tansu >/dev/null 2>&1 && tansu --version >/dev/null 2>&1; then
  installed="$(tansu --version 2>/dev/null | awk '{print $NF}')"
  if [ -z "$version" ] || [ "$installed" = "$version" ]; then
    echo "tansu $installed already installed: $(command -v tansu)"
    exit 0
  fi
fi
echo "installing tansu ${version:-latest} (10-15 minutes on 2 cores) ..."
if [ -n "$version" ]; then
  cargo install tansu --locked --version "$version" --features dynostore,libsql
else
  cargo install tansu --locked --features dynostore,libsql
fi
tansu --version
