#!/bin/sh
# Builds the seed corpus of the `frontend` fuzz target in fuzz/corpus/frontend (ignored by
# git): this project's own test .defs files, plus Debian 13's gnumach-dev .defs files from
# the oracle (target/debian13/root), raw and preprocessed by gcc so that they are
# self-contained. GNU Mach files are only ever copied here at run time, never committed.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
out="$here/corpus/frontend"
mkdir -p "$out"
for f in "$root"/mig-rs/tests/defs/*/*.defs; do
	[ -f "$f" ] && cp "$f" "$out/own-$(basename "$(dirname "$f")")-$(basename "$f")"
done
inc="${MIG_ORACLE_DIR:-$root/target/debian13/root}/usr/include/x86_64-linux-gnu"
if [ -d "$inc" ]; then
	for f in "$inc"/mach/*.defs "$inc"/device/*.defs "$inc"/mach/x86_64/*.defs "$inc"/mach_debug/*.defs; do
		n=$(echo "${f#$inc/}" | tr / _)
		cp "$f" "$out/gnumach-$n"
		gcc -E -x c -I"$inc" "$f" > "$out/gnumach-pp-$n" 2>/dev/null || true
		gcc -E -x c -DSEQNOS -I"$inc" "$f" > "$out/gnumach-pp-seqnos-$n" 2>/dev/null || true
	done
else
	echo "seed.sh: no oracle at $inc; seeding with this project's files only" >&2
fi
ls "$out" | wc -l
