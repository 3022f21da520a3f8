#!/usr/bin/env bash
# Everything the tests need beyond the Rust toolchain, installed or fetched once:
#   * apt packages: gcc (the oracle's C stubs), dpkg (unpacking), qemu-system-x86 (GNU Mach),
#     installed only when missing, and only as root or through sudo;
#   * the oracle, Debian 13's GNU MIG (mig-x86-64-gnu) and GNU Mach headers (gnumach-dev),
#     into target/debian13;
#   * Debian 13's GNU Mach kernel (gnumach-image-1.8-amd64-up) into target/debian13-kernel.
# Packages are fetched without changing the system's apt state (.ci/fetch-debian13.sh).
# Nothing here is fatal: a missing piece makes the tests that need it skip, or fail under CI.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v gcc >/dev/null || need_apt+=(gcc)
command -v dpkg-deb >/dev/null || need_apt+=(dpkg)
command -v qemu-system-x86_64 >/dev/null || need_apt+=(qemu-system-x86)
if [ ${#need_apt[@]} -gt 0 ]; then
  sudo=()
  [ "$(id -u)" = 0 ] || sudo=(sudo -n)
  echo "== installing ${need_apt[*]}"
  { "${sudo[@]}" apt-get update -qq && "${sudo[@]}" apt-get install -y -qq "${need_apt[@]}"; } \
    || echo "warning: could not install ${need_apt[*]}; the tests that need them will skip (or fail under CI)"
fi

if [ ! -x target/debian13/root/usr/bin/x86_64-gnu-mig ]; then
  echo "== fetching the GNU MIG oracle (Debian 13 mig-x86-64-gnu, gnumach-dev) into target/debian13"
  bash .ci/fetch-debian13.sh target/debian13 mig-x86-64-gnu gnumach-dev \
    || echo "warning: could not fetch the oracle; conformance tests will skip (or fail under CI)"
fi

if [ ! -e target/debian13-kernel/root/boot/gnumach-1.8-amd64-up.gz ]; then
  echo "== fetching Debian 13's GNU Mach kernel (gnumach-image-1.8-amd64-up) into target/debian13-kernel"
  bash .ci/fetch-debian13.sh target/debian13-kernel gnumach-image-1.8-amd64-up \
    || echo "warning: could not fetch the GNU Mach kernel; the gnumach-pager tests will skip (or fail under CI)"
fi
