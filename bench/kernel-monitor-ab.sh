#!/bin/bash
# How much of a grown store's tail is the kernel's memory access monitor (DAMON): the same
# kmipd on fresh three-node clusters (cluster/local.sh), with the machine's kdamond threads
# running and stopped, alternating. A diagnostic: it stops and restarts the kernel's
# monitors (root only), and puts back the state it found when it exits, however it exits.
#
#   bench/kernel-monitor-ab.sh [--rounds N] [--fill S] [--rate R] [-- KMIPD_ARGS...]
#
# Per round and state (on, then off): a fresh cluster, S s (default 60) of Creates back to
# back spread over the three endpoints, then two 10 s runs offered at R Creates/s (default
# 3000) at 64 connections. Each run prints kmip-bench's RESULT line prefixed with the state,
# the round and the run, and the CPU the kdamond threads used during it.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh
rounds=2 fill=60 rate=3000
while [ $# -gt 0 ]; do
	case "$1" in
	--rounds) rounds=$2; shift 2 ;;
	--fill) fill=$2; shift 2 ;;
	--rate) rate=$2; shift 2 ;;
	-h | --help) sed -n 2,12p "$0"; exit 0 ;;
	--) shift; break ;;
	*) break ;;
	esac
done
mapfile -t monitors < <(kernel_monitors)
if [ ${#monitors[@]} -eq 0 ]; then
	echo "kernel-monitor-ab.sh: no DAMON monitor runs on this machine ($KERNEL_MONITORS): nothing to compare" >&2
	exit 1
fi
[ -w "${monitors[0]}/state" ] || { echo "kernel-monitor-ab.sh: needs root" >&2; exit 1; }

dir=""
cleanup() {
	set_kernel_monitors on "${monitors[@]}"
	[ -z "$dir" ] || { cluster/local.sh --dir "$dir" down >/dev/null 2>&1 || true; rm -rf "$dir"; }
}
trap cleanup EXIT

bench=build/bench/kmip-bench
endpoints=127.0.0.1:5696,127.0.0.2:5696,127.0.0.3:5696
echo "== ${#monitors[@]} DAMON monitor(s) running: ${monitors[*]}"
for round in $(seq "$rounds"); do
	for state in on off; do
		set_kernel_monitors "$state" "${monitors[@]}"
		dir=$(mktemp -d /tmp/kernel-monitor-XXXXXX)
		cluster/local.sh --dir "$dir" up 3 -- "$@" >/dev/null
		tls=(--ca "$dir/pki/ca.pem" --cert "$dir/pki/client.pem" --key "$dir/pki/client-key.pem")
		"$bench" --endpoints "$endpoints" --spread --mix create=100 --connections 64 \
			--duration "$fill" --quiet "${tls[@]}" >/dev/null
		for run in 1 2; do
			ticks=$(kdamond_ticks)
			line=$("$bench" --endpoints "$endpoints" --spread --mix create=100 \
				--connections 64 --rate "$rate" --duration 10 --quiet "${tls[@]}" |
				grep '^RESULT ')
			echo "monitor=$state round=$round run=$run kdamond_cpu_ms=$(kdamond_ms_since "$ticks") $line"
		done
		cluster/local.sh --dir "$dir" down >/dev/null
		rm -rf "$dir"
		dir=""
	done
done
