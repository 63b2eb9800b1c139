#!/bin/sh
# Crypto throughput of btrfs-extcrypt, each figure as a ratio to a reference
# measured in the same run (Documentation/design.rst section 7):
#   xts-enc / xts-dec  AES-256-XTS over 4 KiB data units (xts_encrypt/decrypt on
#                      1 MiB runs, a new tweak per unit), against
#                      `openssl speed -evp aes-256-xts -bytes 4096 -seconds 3`
#                      (-multi N for all threads).  Goal: >= 0.9 single thread.
#                      Also against the same EVP loop run inside our process
#                      ("raw-xts"), measured in alternating rounds with ours.
#   csum-T             csum_batch over 4 KiB units against the library's own call
#                      (ISA-L crc32_iscsi, XXH64, OpenSSL SHA256, libb2 blake2b)
#                      on the same 4 KiB pieces, in alternating rounds.
# Every figure is the best of its rounds: load from other processes only ever
# slows a round down.
#
# usage: bench/crypto.sh [UNIT_TESTS_BINARY]
#   env: EXTCRYPT_UNIT (default build/tests/unit/unit-tests),
#        BENCH_SECONDS (per openssl run, and per measurement of ours and of its
#                       in-process reference, split into rounds; default 3),
#        BENCH_ROUNDS (openssl runs / alternating rounds, default 2),
#        BENCH_THREADS (default: nproc)
set -eu

UNIT=${1:-${EXTCRYPT_UNIT:-build/tests/unit/unit-tests}}
SECS=${BENCH_SECONDS:-3}
ROUNDS=${BENCH_ROUNDS:-2}
THREADS=${BENCH_THREADS:-$(nproc)}

if [ ! -x "$UNIT" ]; then
	echo "bench/crypto.sh: unit binary '$UNIT' not found; build it with 'make unit'" >&2
	exit 2
fi
command -v openssl >/dev/null || { echo "bench/crypto.sh: openssl not installed" >&2; exit 2; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

# openssl speed prints kB/s (1000 bytes) in its last "AES-256-XTS" line; best of ROUNDS runs.
openssl_xts() {
	best=0
	i=0
	while [ "$i" -lt "$ROUNDS" ]; do
		if [ "$1" -gt 1 ]; then
			v=$(openssl speed -multi "$1" -evp aes-256-xts -bytes 4096 -seconds "$SECS" 2>/dev/null |
				awk '/^AES-256-XTS/ { v = $NF } END { sub(/k$/, "", v); printf "%.0f", v * 1000 }')
		else
			v=$(openssl speed -evp aes-256-xts -bytes 4096 -seconds "$SECS" 2>/dev/null |
				awk '/^AES-256-XTS/ { v = $NF } END { sub(/k$/, "", v); printf "%.0f", v * 1000 }')
		fi
		best=$(awk -v a="$best" -v b="$v" 'BEGIN { printf "%.0f", (b > a ? b : a) }')
		i=$((i + 1))
	done
	echo "$best"
}

echo "reference: openssl speed -evp aes-256-xts -bytes 4096 -seconds $SECS, best of $ROUNDS"
echo "1 $(openssl_xts 1)" > "$tmp/openssl"
if [ "$THREADS" -gt 1 ]; then
	echo "reference: openssl speed -multi $THREADS -evp aes-256-xts -bytes 4096 -seconds $SECS, best of $ROUNDS"
	echo "$THREADS $(openssl_xts "$THREADS")" >> "$tmp/openssl"
fi
echo "measuring: $UNIT --bench --seconds $SECS --rounds $ROUNDS --threads $THREADS"
"$UNIT" --bench --seconds "$SECS" --rounds "$ROUNDS" --threads "$THREADS" > "$tmp/ours"

awk -v ref="$tmp/openssl" '
	BEGIN {
		while ((getline line < ref) > 0) { split(line, f, " "); xts[f[1]] = f[2] }
		printf "%-14s %7s %10s %10s %7s  %s\n", "what", "threads", "ours MB/s", "ref MB/s", "ratio", "reference"
	}
	/^#/ { next }
	{
		if ($1 ~ /^xts-/) {
			m = ($2 > 1) ? " -multi " $2 : ""
			printf "%-14s %7d %10.0f %10.0f %7.2f  %s\n", $1, $2, $3 / 1e6, xts[$2] / 1e6, (xts[$2] > 0 ? $3 / xts[$2] : 0), "openssl speed" m
			printf "%-14s %7d %10.0f %10.0f %7.2f  %s\n", $1, $2, $3 / 1e6, $4 / 1e6, ($4 > 0 ? $3 / $4 : 0), "same EVP loop in-process"
		} else {
			printf "%-14s %7d %10.0f %10.0f %7.2f  %s\n", $1, $2, $3 / 1e6, $4 / 1e6, ($4 > 0 ? $3 / $4 : 0), "library raw (" substr($1, 6) ")"
		}
	}' "$tmp/ours"
