#!/usr/bin/env bash
# A test of a real network partition (needs root: it adds namespaces, veth links and a
# bridge, and removes them; `make test` runs it through tests/integration/test_partition.py
# where the machine allows): a 3-node cluster/netns.sh cluster, a key written through node
# 1, the leader cut off, writes on both sides, heal, convergence. Prints each check, then
# PASS or FAIL (exit status 0 or 1). --keep leaves the cluster up for a look afterwards.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
NETNS=$HERE/netns.sh
PYTHON=/usr/bin/python3
KEEP=0
[[ ${1:-} != --keep ]] || KEEP=1

[[ $(id -u) == 0 ]] || {
	echo "netns-selftest.sh: needs root (network namespaces)" >&2
	exit 1
}
if ip link show kmipd-br0 >/dev/null 2>&1; then
	echo "netns-selftest.sh: kmipd-br0 exists: another netns cluster is up; \`cluster/netns.sh --dir DIR down\` it first" >&2
	exit 1
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/kmipd-netns-selftest.XXXXXX")
DIR=$WORK/cluster
CLIENT=$WORK/client.py
FAILED=0

cleanup() {
	if ((KEEP)); then
		echo "kept: $NETNS --dir $DIR status|down (then rm -r $WORK)"
	else
		"$NETNS" --dir "$DIR" down >/dev/null 2>&1 || true
		rm -rf "$WORK"
	fi
}
trap cleanup EXIT

ok() { echo "ok    $*"; }
fail() {
	echo "FAIL  $*"
	FAILED=1
}
note() { echo "      $*"; }

# One KMIP request with PyKMIP: prints "OK VALUE SECONDS" or "ERR SECONDS MESSAGE".
cat >"$CLIENT" <<'EOF'
import sys, time
from kmip import enums
from kmip.pie.client import ProxyKmipClient

pki, host, op = sys.argv[1], sys.argv[2], sys.argv[3]
t0 = time.monotonic()
try:
    c = ProxyKmipClient(hostname=host, port=5696, cert=pki + "/client.pem",
                        key=pki + "/client-key.pem", ca=pki + "/ca.pem",
                        config_file="/dev/null")
    c.open()
    try:
        if op == "create":
            value = c.create(enums.CryptographicAlgorithm.AES, 256)
        else:
            value = c.get(sys.argv[4]).value.hex()
    finally:
        c.close()
    print("OK %s %.2f" % (value, time.monotonic() - t0))
except Exception as e:
    msg = " ".join(str(e).split())
    print("ERR %.2f %s: %s" % (time.monotonic() - t0, type(e).__name__, msg))
EOF

# kmip NODE OP [UID] [--inside]: from the root namespace, or from inside node NODE's
# namespace (the only way to reach a partitioned node). At most KMIP_TIMEOUT seconds.
KMIP_TIMEOUT=20
kmip() {
	local node=$1 op=$2 uid=${3:-} where=${4:-}
	local cmd=(timeout "$KMIP_TIMEOUT" "$PYTHON" "$CLIENT" "$DIR/pki" "10.96.0.$node" "$op")
	[[ -z $uid ]] || cmd+=("$uid")
	if [[ $where == --inside ]]; then
		cmd=(ip netns exec "kmipd-$node" "${cmd[@]}")
	fi
	"${cmd[@]}" || [[ $? != 124 ]] || echo "ERR $KMIP_TIMEOUT.00 no answer within $KMIP_TIMEOUT s"
}

# retry SECONDS NODE OP [UID] [--inside]: the first OK answer within SECONDS, or the last
# error. The failed attempts go to stderr (shown as notes).
retry() {
	local seconds=$1 start=$SECONDS out
	shift
	while :; do
		out=$(kmip "$@")
		if [[ $out == OK* ]] || ((SECONDS - start >= seconds)); then
			printf '%s\n' "$out"
			return
		fi
		printf '      %s attempt: %s %s: %s\n' "$(date -u +%H:%M:%S.%3N)" "$2" "$1" "$out" >&2
		sleep 0.3
	done
}

now() { date -u +%H:%M:%S.%3N; }
since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }

field() { cut -d' ' -f"$1" <<<"$2"; }

echo "== up: 3 nodes in namespaces kmipd-1..3 (10.96.0.1-3), data in $DIR"
"$NETNS" --dir "$DIR" up 3 | sed 's/^/      /'

echo "== a key through node 1, from the root namespace"
out=$(kmip 1 create)
[[ $out == OK* ]] || {
	fail "create through node 1: $out"
	exit 1
}
K1=$(field 2 "$out")
ok "created $K1 through node 1"
V1=$(field 2 "$(kmip 1 get "$K1")")
for n in 2 3; do
	out=$(retry 5 "$n" get "$K1")
	if [[ $(field 2 "$out") == "$V1" ]]; then ok "node $n reads it"; else fail "node $n reads $K1: $out"; fi
done

LEADER=
for n in 1 2 3; do
	if grep 'raft: .*leader' "$DIR/node$n.log" | tail -n 1 | grep -q "this node ($n) is the leader"; then
		LEADER=$n
	fi
done
if [[ -z $LEADER ]]; then
	LEADER=1
	note "the logs name no leader; partitioning node 1"
else
	note "leader according to the logs: node $LEADER"
fi
MAJORITY=()
for n in 1 2 3; do
	[[ $n == "$LEADER" ]] || MAJORITY+=("$n")
done

echo "== partition node $LEADER (its bridge port down)"
"$NETNS" --dir "$DIR" partition "$LEADER" | sed 's/^/      /'
T0=$(date +%s.%N)
note "partitioned at $(now) UTC"


echo "== the majority (nodes ${MAJORITY[*]}) keeps accepting writes"
out=$(retry 10 "${MAJORITY[0]}" create)
if [[ $out == OK* ]]; then
	K2=$(field 2 "$out")
	ok "node ${MAJORITY[0]} accepted a write $(since "$T0") s after the partition ($K2)"
else
	K2=
	fail "node ${MAJORITY[0]} accepted no write within 10 s: $out"
fi
out=$(retry 10 "${MAJORITY[1]}" create)
if [[ $out == OK* ]]; then
	K3=$(field 2 "$out")
	ok "node ${MAJORITY[1]} accepted a write too ($K3)"
else
	K3=
	fail "node ${MAJORITY[1]} accepted no write: $out"
fi
V2=
[[ -z $K2 ]] || V2=$(field 2 "$(retry 5 "${MAJORITY[1]}" get "$K2")")

echo "== the minority (node $LEADER, reached from inside its namespace) refuses writes"
out=$(KMIP_TIMEOUT=4 kmip "$LEADER" get "$K1")
note "root namespace -> partitioned node $LEADER: $out"
if [[ $out == ERR* ]]; then
	ok "the partitioned node is unreachable from the root namespace"
else
	fail "the partitioned node still answers the root namespace: $out"
fi
out=$(kmip "$LEADER" create "" --inside)
note "answer: $out"
secs=$(field 2 "$out")
if [[ $out == ERR* && $out == *"no quorum"* ]] && awk "BEGIN { exit !($secs <= 8) }"; then
	ok "node $LEADER's write failed with \"no quorum\" after $secs s"
else
	fail "node $LEADER's write: expected a \"no quorum\" failure within ~5 s, got: $out"
fi
if [[ -n $K2 ]]; then
	note "node $LEADER reading $K2 (made by the majority): $(kmip "$LEADER" get "$K2" --inside)"
fi
note "node $LEADER reading $K1 (made before): $(kmip "$LEADER" get "$K1" --inside)"
"$NETNS" --dir "$DIR" status | sed 's/^/      /' || true

echo "== heal"
"$NETNS" --dir "$DIR" heal | sed 's/^/      /'
T1=$(date +%s.%N)
note "healed at $(now) UTC"
if [[ -n $K2 ]]; then
	out=$(retry 15 "$LEADER" get "$K2")
	if [[ $out == OK* && $(field 2 "$out") == "$V2" ]]; then
		ok "node $LEADER reads $K2, written during the partition, $(since "$T1") s after the heal"
	else
		fail "node $LEADER does not read $K2 within 15 s of the heal: $out"
	fi
fi
if [[ -n $K3 ]]; then
	out=$(retry 15 "$LEADER" get "$K3")
	if [[ $out == OK* ]]; then ok "node $LEADER reads $K3 too"; else fail "node $LEADER reads $K3: $out"; fi
fi
out=$(retry 5 "$LEADER" get "$K1")
if [[ $(field 2 "$out") == "$V1" ]]; then
	ok "node $LEADER still reads $K1"
else
	fail "node $LEADER reads $K1: $out"
fi
out=$(retry 10 "$LEADER" create)
if [[ $out == OK* ]]; then
	ok "node $LEADER accepts writes again ($(field 2 "$out"))"
else
	fail "node $LEADER accepts no write after the heal: $out"
fi
"$NETNS" --dir "$DIR" status | sed 's/^/      /' || true

echo "== stop"
if "$NETNS" --dir "$DIR" stop | sed 's/^/      /'; then
	ok "every node stopped with status 0"
else
	fail "a node did not stop cleanly"
fi

if ((FAILED)); then
	echo FAIL
	exit 1
fi
echo PASS
