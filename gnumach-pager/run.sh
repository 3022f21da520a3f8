#!/usr/bin/env bash
# Boots Debian 13's GNU Mach in qemu (TCG) with the reference default pager as its default
# memory manager, and a worker task that pages 192 MiB through it under -m 128.
#
#   bash gnumach-pager/run.sh [--ram MiB] [--store MiB] [--timeout S] [--quiet] [OPTION=VALUE…]
#
# Builds the program (cargo build -p gnumach-pager --release), fetches the kernel package
# into target/debian13-kernel on first use, prints the serial console. Exit status: 0 PASS,
# 1 FAIL (the cause is printed), 2 no result (timeout), 3 qemu or the kernel unavailable.
# Program options: mem=<MiB> write-every=<n> store=ivshmem|memory:<MiB>|device:<name>
# store-limit=<MiB> fault=none|touch-after-free|second-dmm stall=<s> trace=<n>.
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo run -q --release -p gnumach-pager --bin gnumach-pager-qemu -- "$@"
