#!/usr/bin/env bash
# The test suite, including the conformance tests against GNU MIG (Debian 13) as an oracle
# and the pager on a real GNU Mach in qemu.
#
# Installs or fetches what the tests need on first use (scripts/setup.sh), then runs every
# test of the workspace. With CI set, a missing oracle or kernel fails the tests that need
# them instead of skipping them.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh

# Every package's unit, integration and doc tests. (Not `--all-targets`: it would also build
# the unit tests of mig-rs-macros, which mounts the library's source files and declares
# `test = false` because those tests run in the library.)
echo "== cargo test --workspace"
cargo test --workspace --no-fail-fast
# The benchmarks, each run once as a test (criterion's test mode): they must keep working.
echo "== cargo test --workspace --benches"
cargo test --workspace --benches --no-fail-fast
