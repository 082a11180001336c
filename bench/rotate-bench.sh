#!/usr/bin/env bash
# A tenant's KEK rotated under load on a 3-node cluster on loopback: how long the leader
# takes to re-seal every object and retire the old KEK, and what clients see meanwhile.
# See bench/README.md.
#
#   bench/rotate-bench.sh [--build DIR] [--keys N] [--seconds S] [--connections C]
#                         [--mix SPEC] [--wait-idle S]
#
# The dev tenant is filled with --keys keys (default 20000), then kmip-bench runs --mix
# (default get=80,create=20) for --seconds (default 30) over the three endpoints with a
# request log; about 8 s in, `kmipctl tenant rotate-kek default`. Printed: the time from
# the rotation to the old KEK's retirement, how many objects the leader re-sealed, and
# per window (requests started before, during, after) requests, errors, p50 and p99.
set -euo pipefail
cd "$(dirname "$0")/.."
ME=rotate-bench.sh
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

BUILD=build
KEYS=20000
DURATION=30
CONNS=16
MIX=get=80,create=20
WAIT_IDLE=60

while [ $# -gt 0 ]; do
	case $1 in
	--build) BUILD=$2; shift 2 ;;
	--keys) KEYS=$2; shift 2 ;;
	--seconds) DURATION=$2; shift 2 ;;
	--connections) CONNS=$2; shift 2 ;;
	--mix) MIX=$2; shift 2 ;;
	--wait-idle) WAIT_IDLE=$2; shift 2 ;;
	-h | --help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "$ME: unknown option $1 (see --help)" >&2; exit 2 ;;
	esac
done
BUILD=$(built "$BUILD" kmipd kmipctl bench/kmip-bench)

TMP=$(mktemp -d /tmp/rotate-bench.XXXXXX)
BENCH_PID=
cleanup() {
	[ -n "$BENCH_PID" ] && kill "$BENCH_PID" 2>/dev/null || true
	KMIPD=$BUILD/kmipd cluster/local.sh --dir "$TMP/cluster" down >/dev/null 2>&1 || true
	rm -rf "$TMP"
}
trap cleanup EXIT

check_machine "$WAIT_IDLE"
KMIPD=$BUILD/kmipd cluster/local.sh --dir "$TMP/cluster" up 3 >/dev/null
PKI=$TMP/cluster/pki
ctl() { "$BUILD/kmipctl" "$@" --endpoint https://127.0.0.1:9696 --pki-dir "$PKI"; }
bench() {
	"$BUILD/bench/kmip-bench" --ca "$PKI/ca.pem" --cert "$PKI/client.pem" \
		--key "$PKI/client-key.pem" --endpoints 127.0.0.1:5696,127.0.0.2:5696,127.0.0.3:5696 \
		--spread --connections "$CONNS" --quiet "$@"
}
now_ms() { date +%s%3N; }

echo "== filling the tenant with $KEYS keys"
bench --mix create=100 --requests "$KEYS" --name fill | grep '^RESULT '

echo "== $DURATION s of $MIX at $CONNS connections; rotation 5 s in"
bench --mix "$MIX" --duration "$DURATION" --warmup 0 --keys 1000 --name load \
	--request-log "$TMP/requests.csv" >"$TMP/bench.out" &
BENCH_PID=$!
# The request log's window starts once kmip-bench has made its --keys: wait for that.
sleep 8
ROTATE_MS=$(now_ms)
ctl tenant rotate-kek default
RETIRED_MS=
while kill -0 "$BENCH_PID" 2>/dev/null; do
	if ! ctl tenant show default | grep -q retiring; then
		RETIRED_MS=$(now_ms)
		break
	fi
	sleep 0.1
done
wait "$BENCH_PID" || true
BENCH_PID=
grep '^RESULT ' "$TMP/bench.out"
[ -n "$RETIRED_MS" ] || { echo "$ME: the old KEK was not retired within the run" >&2; exit 3; }
# What the leader re-sealed (objects created after the rotation were sealed under the new
# KEK already).
RESEALED=$(grep -ho '([0-9]* re-sealed by this node)' "$TMP"/cluster/node*.log | tr -dc '0-9\n' |
	sort -n | tail -1)
OBJECTS=$(ctl tenant show default | awk '/^objects/ {print $2}')

python3 - "$TMP/requests.csv" "$ROTATE_MS" "$RETIRED_MS" "${RESEALED:-0}" "$OBJECTS" <<'PY'
import csv, sys
path, rotate, retired = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
resealed, objects = int(sys.argv[4]), int(sys.argv[5])
with open(path) as f:
    start = int(f.readline().split("unix_ms=")[1])
    rows = [r for r in csv.DictReader(f) if r["op"] != "connection"]
windows = {"before": [], "during": [], "after": []}
for r in rows:
    t = start + float(r["start_ms"])
    w = "before" if t < rotate else "during" if t < retired else "after"
    windows[w].append(r)
secs = (retired - rotate) / 1000
print(f"== rotation to retirement: {secs:.2f} s; the leader re-sealed {resealed} objects "
      f"({resealed / secs:.0f}/s over that time); the tenant holds {objects} now")
slow = max(rows, key=lambda r: float(r["latency_ms"]))
print(f"== slowest request: {float(slow['latency_ms']):.1f} ms ({slow['op']}), started "
      f"{(start + float(slow['start_ms']) - rotate) / 1000:+.2f} s from the rotation "
      f"(retired at +{secs:.2f} s)")
for name, rs in windows.items():
    lat = sorted(float(r["latency_ms"]) for r in rs if r["result"] == "ok")
    errors = sum(r["result"] == "error" for r in rs)
    if not lat:
        print(f"   {name:6} no requests")
        continue
    q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))]
    print(f"   {name:6} {len(rs):7d} requests  {errors} errors  p50 {q(0.5):6.2f} ms  "
          f"p99 {q(0.99):6.2f} ms  max {lat[-1]:7.2f} ms")
PY
