#!/usr/bin/env bash
# The whole Tollgate test suite: installs and starts what the tests need (idempotently), then
# runs formatting and lint checks and every test of the workspace.
# Usage: scripts/test.sh            (from the repository root; CI calls it through .ci/run)
set -euo pipefail
cd "$(dirname "$0")/.."

# Services: Step 1 (domain, offline CLI) needs none. Later steps add their installers here
# (scripts/services/*.sh), each idempotent and each stopped by the tests that start it.
for setup in scripts/services/*.sh; do
  [ -e "$setup" ] || continue
  echo "== $setup"
  bash "$setup"
done

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test"
cargo test --workspace --locked
