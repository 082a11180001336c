#!/usr/bin/env bash
# What a Key Protect tenant costs under KMIP load, beside a local one, on a 3-node cluster
# on loopback: the fake Key Protect (tests/integration/fake_keyprotect.py, real HTTPS) holds
# the root key. Runs alternate between a client of the local dev tenant and a client of a
# keyprotect tenant, same mix and connections, and report for each: ops/s, p50 and p99,
# and the provider calls the whole cluster made during the run (IAM tokens, wraps, unwraps,
# rewraps, metadata), per second. See bench/README.md.
#
#   bench/keyprotect-bench.sh [--build DIR] [--seconds S] [--rounds N] [--connections C]
#                             [--mix SPEC] [--check-interval-ms MS] [--wait-idle S]
#
# --check-interval-ms is root_key.check_interval_ms on the nodes (default 300000, the
# product's default: provider calls in the window are then ~0, as KEKs are cached).
set -euo pipefail
cd "$(dirname "$0")/.."
ME=keyprotect-bench.sh
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

BUILD=build
DURATION=10
ROUNDS=3
CONNS=16
MIX=create=20,get=80
CHECK_MS=300000
WAIT_IDLE=60

while [ $# -gt 0 ]; do
	case $1 in
	--build) BUILD=$2; shift 2 ;;
	--seconds) DURATION=$2; shift 2 ;;
	--rounds) ROUNDS=$2; shift 2 ;;
	--connections) CONNS=$2; shift 2 ;;
	--mix) MIX=$2; shift 2 ;;
	--check-interval-ms) CHECK_MS=$2; shift 2 ;;
	--wait-idle) WAIT_IDLE=$2; shift 2 ;;
	-h | --help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "$ME: unknown option $1 (see --help)" >&2; exit 2 ;;
	esac
done
BUILD=$(built "$BUILD" kmipd kmipctl bench/kmip-bench)

TMP=$(mktemp -d /tmp/kp-bench.XXXXXX)
FAKE_PID=
cleanup() {
	KMIPD=$BUILD/kmipd cluster/local.sh --dir "$TMP/cluster" down >/dev/null 2>&1 || true
	[ -n "$FAKE_PID" ] && kill "$FAKE_PID" 2>/dev/null || true
	rm -rf "$TMP"
}
trap cleanup EXIT

check_machine "$WAIT_IDLE"

echo "== starting the fake Key Protect"
API_KEY=bench-api-key-$RANDOM$RANDOM
/usr/bin/python3 tests/integration/fake_keyprotect.py --port 0 --dir "$TMP/kp" \
	--api-key "$API_KEY" >"$TMP/kp.json" 2>"$TMP/kp.log" &
FAKE_PID=$!
for _ in $(seq 100); do [ -s "$TMP/kp.json" ] && break; sleep 0.1; done
[ -s "$TMP/kp.json" ] || { echo "$ME: the fake Key Protect did not start:" >&2; cat "$TMP/kp.log" >&2; exit 1; }
field() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$TMP/kp.json" "$1"; }
URL=$(field url)
ROOT=$(field root_key_id)
printf '%s\n' "$API_KEY" >"$TMP/api-key"
chmod 600 "$TMP/api-key"
stats() {
	python3 -c "import ssl, sys, urllib.request
ctx = ssl.create_default_context(cafile=sys.argv[1])
print(urllib.request.urlopen(sys.argv[2] + '/_fake/stats', context=ctx).read().decode())" \
		"$(field ca)" "$URL"
}

echo "== starting 3 nodes (root_key.check_interval_ms=$CHECK_MS)"
KMIPD=$BUILD/kmipd cluster/local.sh --dir "$TMP/cluster" up 3 -- \
	--keyprotect.url="$URL" --keyprotect.iam_url="$URL/identity/token" \
	--keyprotect.instance_id="$(field instance_id)" --keyprotect.api_key_file="$TMP/api-key" \
	--keyprotect.ca_file="$(field ca)" --root_key.check_interval_ms="$CHECK_MS" >/dev/null
PKI=$TMP/cluster/pki
ctl() { "$BUILD/kmipctl" "$@" --endpoint "https://127.0.0.$NODE:9696" --pki-dir "$PKI"; }
NODE=1 ctl tenant create kp --provider keyprotect --root-key "$ROOT" >/dev/null
for NODE in 1 2 3; do
	for _ in $(seq 100); do
		ctl tenant show kp | grep -q 'version 1, ready' && break
		sleep 0.1
	done
	ctl tenant show kp | grep -q 'version 1, ready' ||
		{ echo "$ME: node $NODE did not unwrap the tenant's KEK" >&2; exit 1; }
done
NODE=1 ctl client issue kp bench --out "$TMP/kpclient" >/dev/null

run() { # $1 name, $2 cert, $3 key
	"$BUILD/bench/kmip-bench" --ca "$PKI/ca.pem" --cert "$2" --key "$3" \
		--endpoints 127.0.0.1:5696,127.0.0.2:5696,127.0.0.3:5696 --spread \
		--connections "$CONNS" --mix "$MIX" --duration "$DURATION" --name "$1" --quiet
}

calls() { # the fake's counters as one number of calls
	stats | python3 -c "import json,sys; print(sum(json.load(sys.stdin).values()))"
}

echo "== $ROUNDS rounds of $DURATION s, $CONNS connections spread over 3 endpoints, mix $MIX"
: >"$TMP/results"
for r in $(seq "$ROUNDS"); do
	# Alternating which goes first, so neither always runs on the bigger store.
	order="local kp"
	[ $((r % 2)) = 0 ] && order="kp local"
	for tenant in $order; do
		if [ $tenant = local ]; then
			cert=$PKI/client.pem key=$PKI/client-key.pem
		else
			cert=$TMP/kpclient/bench.pem key=$TMP/kpclient/bench-key.pem
		fi
		before=$(calls)
		start=$(date +%s.%N)
		line=$(run "$tenant" "$cert" "$key" | grep '^RESULT ')
		end=$(date +%s.%N)
		after=$(calls)
		# Over the whole run (the keys made for gets and the warm-up included).
		echo "$line provider_calls=$((after - before)) provider_calls_per_s=$(python3 -c "print(round(($after - $before) / ($end - $start), 2))")" |
			tee -a "$TMP/results"
	done
done

python3 - "$TMP/results" <<'PY'
import re, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    f = dict(re.findall(r"(\w+)=(\S+)", line))
    rows.setdefault(f["name"], []).append(f)
med = lambda name, key: statistics.median(float(r[key]) for r in rows[name])
print("== medians over %d rounds" % len(rows["local"]))
for name in ("local", "kp"):
    print(f"   {name:6} ops/s {med(name, 'ops_per_s'):9.1f}  p50 {med(name, 'p50_ms'):6.2f} ms"
          f"  p99 {med(name, 'p99_ms'):6.2f} ms  provider calls/s {med(name, 'provider_calls_per_s'):.2f}")
print("== keyprotect / local: ops/s %.3f, p50 %.3f, p99 %.3f" % (
    med("kp", "ops_per_s") / med("local", "ops_per_s"),
    med("kp", "p50_ms") / med("local", "p50_ms"),
    med("kp", "p99_ms") / med("local", "p99_ms")))
PY
echo "== fake Key Protect counters: $(stats)"
