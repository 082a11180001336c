#!/bin/bash
# Replicated Create on a store that grows: two kmipd binaries side by side on fresh
# three-node clusters (cluster/local.sh), alternating, so a change to the write path is
# judged on the same machine in the same minutes.
#
#   bench/grown-store-ab.sh [--rounds N] [--connections C] [--fill S] [--rate R]
#                           [--old-args "FLAGS"] [--new-args "FLAGS"] OLD_KMIPD NEW_KMIPD
#
# (the two may be the same binary with different kmipd flags)
#
# Per round and binary: a fresh cluster, S s (default 30) of Creates back to back spread
# over the three endpoints (about 200,000 keys in 30 s on this machine), then three 10 s
# runs on the grown store, back to back or offered at R Creates/s (--rate); each
# prints kmip-bench's RESULT line prefixed with the label (old/new), the round, the run and
# the CPU the kernel's DAMON threads (kdamond) used during it (0 where none runs);
# then the megabytes written to the machine's disks over the four runs, and each node's
# store file size and how many copies and checkpoints it wrote.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=3 conns=64 fill=30 rate="" old_args="" new_args=""
while [ $# -gt 2 ]; do
	case "$1" in
	--rounds) rounds=$2; shift 2 ;;
	--connections) conns=$2; shift 2 ;;
	--fill) fill=$2; shift 2 ;;
	--rate) rate=$2; shift 2 ;;
	--old-args) old_args=$2; shift 2 ;;
	--new-args) new_args=$2; shift 2 ;;
	*) sed -n 2,15p "$0"; exit 2 ;;
	esac
done
[ $# -eq 2 ] || { sed -n 2,15p "$0"; exit 2; }
old=$(realpath "$1") new=$(realpath "$2")
# shellcheck source=bench/lib.sh
. bench/lib.sh
bench=build/bench/kmip-bench
endpoints=127.0.0.1:5696,127.0.0.2:5696,127.0.0.3:5696

# Sectors (512 bytes) written to the machine's disks so far.
written() {
	local sum=0 dev
	for dev in /sys/block/*; do
		case "${dev##*/}" in loop* | ram* | zram*) continue ;; esac
		sum=$((sum + $(awk '{print $7}' "$dev/stat")))
	done
	echo "$sum"
}

run() { # binary label round flags
	local d before ticks line
	d=$(mktemp -d /tmp/grown-XXXXXX)
	before=$(written)
	# At debug every checkpoint is logged (at info one a minute): counted below.
	# shellcheck disable=SC2086 # the flags are words
	KMIPD=$1 cluster/local.sh --dir "$d" up 3 -- --server.log_level debug $4 >/dev/null
	for run in 0 1 2 3; do
		local secs=10 offer=()
		[ "$run" = 0 ] && secs=$fill
		[ "$run" != 0 ] && [ -n "$rate" ] && offer=(--rate "$rate")
		ticks=$(kdamond_ticks)
		line=$("$bench" --endpoints "$endpoints" --spread --mix create=100 "${offer[@]}" \
			--connections "$conns" --duration "$secs" --quiet \
			--ca "$d/pki/ca.pem" --cert "$d/pki/client.pem" --key "$d/pki/client-key.pem" |
			grep '^RESULT ')
		echo "$2 round=$3 run=$run kdamond_cpu_ms=$(kdamond_ms_since "$ticks") $line"
	done
	# A clean stop flushes what the kernel still held: counted, so that writes put off are
	# not missed.
	cluster/local.sh --dir "$d" down >/dev/null
	echo "$2 round=$3 disk_written_mb=$((($(written) - before) / 2048))"
	for i in 1 2 3; do
		printf '%s round=%s node%s store_bytes=%s copies=%s checkpoints=%s\n' "$2" "$3" "$i" \
			"$(stat -c %s "$d/node$i/store/data.mdb")" \
			"$(grep -c 'snapshot of the key store at' "$d/node$i.log" 2>/dev/null || true)" \
			"$(grep -c 'checkpoint of the key store at' "$d/node$i.log" 2>/dev/null || true)"
	done
	rm -rf "$d"
}

for round in $(seq "$rounds"); do
	run "$old" old "$round" "$old_args"
	run "$new" new "$round" "$new_args"
done
