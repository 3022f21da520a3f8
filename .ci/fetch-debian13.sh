#!/usr/bin/env bash
# Fetch Debian 13 ("trixie") packages without changing the system's apt state.
#
# Usage: fetch-debian13.sh DEST_DIR PACKAGE...
#
# The mirror is read from this machine's apt configuration (the first `deb` URI that
# serves a Debian suite with the `main` component, security mirrors excluded); no host
# name is written here. Packages are downloaded with a private sources list and lists
# directory under DEST_DIR/apt, then unpacked with `dpkg -x` into DEST_DIR/root.
# Re-running is cheap: packages already unpacked are skipped.
set -euo pipefail

dest=${1:?usage: fetch-debian13.sh DEST_DIR PACKAGE...}
shift
mkdir -p "$dest"
dest=$(cd "$dest" && pwd)
stamp="$dest/.fetched-$(printf '%s\n' "$@" | sort | tr '\n' '+')"
if [ -e "$stamp" ]; then
  exit 0
fi

mirror_from_apt() {
  local f
  # deb822 .sources files
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -r "$f" ] || continue
    awk '
      BEGIN { RS=""; FS="\n" }
      {
        uris=""; suites=""; comps=""; types=""
        for (i = 1; i <= NF; i++) {
          if ($i ~ /^URIs:/)       { sub(/^URIs:[ \t]*/, "", $i); uris=$i }
          if ($i ~ /^Suites:/)     { sub(/^Suites:[ \t]*/, "", $i); suites=$i }
          if ($i ~ /^Components:/) { sub(/^Components:[ \t]*/, "", $i); comps=$i }
          if ($i ~ /^Types:/)      { sub(/^Types:[ \t]*/, "", $i); types=$i }
        }
        if (types ~ /(^| )deb( |$)/ && comps ~ /(^| )main( |$)/ && suites !~ /security/ \
            && suites ~ /(bookworm|trixie|bullseye|stable|testing|sid)/) {
          split(uris, u, " "); print u[1]; exit
        }
      }' "$f"
  done
  # one-line sources.list format
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -r "$f" ] || continue
    awk '$1 == "deb" && $0 !~ /security/ && / main/ {
           for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; exit }
         }' "$f"
  done
}

mirror=$(mirror_from_apt | head -n 1)
if [ -z "$mirror" ]; then
  echo "fetch-debian13: no Debian mirror found in the apt configuration" >&2
  exit 1
fi

apt_dir="$dest/apt"
mkdir -p "$apt_dir/lists/partial" "$apt_dir/parts" "$apt_dir/archives/partial" "$dest/debs"
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror trixie main" > "$apt_dir/sources.list"
apt_opts=(
  -o "Dir::Etc::SourceList=$apt_dir/sources.list"
  -o "Dir::Etc::SourceParts=$apt_dir/parts"
  -o "Dir::State::Lists=$apt_dir/lists"
  -o "Dir::Cache::Archives=$apt_dir/archives"
  -o "Dir::Cache::pkgcache=$apt_dir/pkgcache.bin"
  -o "Dir::Cache::srcpkgcache=$apt_dir/srcpkgcache.bin"
  -o "APT::Architecture=amd64"
  -o "Debug::NoLocking=1"
)
apt-get "${apt_opts[@]}" -qq update
( cd "$dest/debs" && apt-get "${apt_opts[@]}" -qq download "$@" )
mkdir -p "$dest/root"
for deb in "$dest"/debs/*.deb; do
  dpkg -x "$deb" "$dest/root"
done
touch "$stamp"
