#!/bin/bash
# A/B: two kmipd binaries under the same kmip-bench load, alternating, three rounds each,
# so a change is judged side by side on this machine rather than against old figures.
#
#   bench/ab-kmipd.sh OLD_KMIPD NEW_KMIPD [kmip-bench options...]
#   e.g. bench/ab-kmipd.sh /tmp/old/build/kmipd build/kmipd --mix create --duration 5
set -euo pipefail
cd "$(dirname "$0")/.."
ME=ab-kmipd.sh
# shellcheck source=bench/lib.sh
. bench/lib.sh
[ $# -ge 2 ] || { sed -n 2,6p "$0"; exit 2; }
old=$1 new=$2
shift 2
opts=("$@")
[ ${#opts[@]} -gt 0 ] || opts=(--mix create --connections 16 --duration 5)
bench=build/bench/kmip-bench

run() { # binary label
	local d port pid
	d=$(mktemp -d)
	port=$((20000 + RANDOM % 10000))
	"$1" --dev --data-dir "$d/n" --listen "127.0.0.1:$port" \
		--raft.address "127.0.0.1:$((port + 1))" $(admin_args "$1" 127.0.0.1) \
		>"$d/out" 2>"$d/err" &
	pid=$!
	for _ in $(seq 100); do grep -q '^ready' "$d/out" 2>/dev/null && break; sleep 0.1; done
	"$bench" --port "$port" --ca "$d/n/pki/ca.pem" --cert "$d/n/pki/client.pem" \
		--key "$d/n/pki/client-key.pem" "${opts[@]}" | grep '^RESULT ' | sed "s/^/$2 /"
	kill "$pid"
	wait "$pid" || true
	rm -rf "$d"
}

for _ in 1 2 3; do
	run "$old" old
	run "$new" new
done
