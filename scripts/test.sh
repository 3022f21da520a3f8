#!/usr/bin/env bash
# The test suite, including the conformance tests against GNU MIG (Debian 13) as an oracle.
#
# Fetches the oracle packages into target/debian13 on first use (see .ci/fetch-debian13.sh;
# needs a Debian apt mirror configured on the machine), then runs every test of the workspace.
# With CI set, a missing oracle fails the conformance tests instead of skipping them.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x target/debian13/root/usr/bin/x86_64-gnu-mig ]; then
  echo "== fetching the GNU MIG oracle (Debian 13 mig-x86-64-gnu, gnumach-dev) into target/debian13"
  bash .ci/fetch-debian13.sh target/debian13 mig-x86-64-gnu gnumach-dev \
    || echo "warning: could not fetch the oracle; conformance tests will skip (or fail under CI)"
fi

echo "== cargo test --workspace"
cargo test --workspace --all-targets
