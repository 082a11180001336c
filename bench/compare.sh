#!/usr/bin/env bash
# kmipd against pykmip-server and against canned-server (the TLS + framing ceiling), side
# by side on this machine, with the same certificates and the same kmip-bench load. Starts
# a fresh kmipd dev node (fresh data directory, durable as always), a pykmip-server
# (Debian's python3-pykmip) configured with kmipd's dev PKI, and canned-server; runs every
# scenario against each; prints one table with ops/s, p99 and the ratios
# kmipd/pykmip-server and kmipd/ceiling. Everything it started is stopped on exit.
#
#   bench/compare.sh [--build DIR] [--out DIR] [--quick] [--rounds N] [--no-pykmip]
#                    [--no-tls13] [--wait-idle SECONDS] [--keep]
#
#   --build DIR       where kmipd and bench/ binaries are (default build; make them first)
#   --out DIR         keep every kmip-bench output, the server logs and table.txt there
#   --quick           short runs (2 s; pykmip-server 2 s): a smoke test, not figures
#   --rounds N        run every scenario N times, the servers taking turns, and report
#                     the median round of each (default 1)
#   --no-pykmip       skip pykmip-server
#   --no-tls13        skip the extra TLS 1.3 rows (kmipd and the ceiling only)
#   --wait-idle S     first wait up to S seconds for the machine to be idle (default 60)
#   --keep            keep the temporary directory (data dirs, configs, logs)
#
# Durations (seconds) can be changed with KMIPD_SECONDS, CEILING_SECONDS, PYKMIP_SECONDS;
# the number of connections with CONNECTIONS (16), keys read by Get with KEYS (256).
# See bench/README.md for what each figure means.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
ME=compare.sh
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
BUILD=build
OUT=
QUICK=0
PYKMIP=1
TLS13=1
WAIT_IDLE=60
KEEP=0
ROUNDS=1
while [ $# -gt 0 ]; do
	case "$1" in
	--build) BUILD=$2; shift 2 ;;
	--out) OUT=$2; shift 2 ;;
	--quick) QUICK=1; shift ;;
	--rounds) ROUNDS=$2; shift 2 ;;
	--no-pykmip) PYKMIP=0; shift ;;
	--no-tls13) TLS13=0; shift ;;
	--wait-idle) WAIT_IDLE=$2; shift 2 ;;
	--keep) KEEP=1; shift ;;
	-h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) echo "compare.sh: unknown option $1" >&2; exit 2 ;;
	esac
done
case "$BUILD" in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac

if [ $QUICK = 1 ]; then
	: "${KMIPD_SECONDS:=2}" "${CEILING_SECONDS:=2}" "${PYKMIP_SECONDS:=2}"
else
	: "${KMIPD_SECONDS:=10}" "${CEILING_SECONDS:=10}" "${PYKMIP_SECONDS:=5}"
fi
: "${CONNECTIONS:=16}" "${KEYS:=256}"

KMIPD=$BUILD/kmipd
BENCH=$BUILD/bench/kmip-bench
CANNED=$BUILD/bench/canned-server
for f in "$KMIPD" "$BENCH" "$CANNED"; do
	[ -x "$f" ] || { echo "compare.sh: $f is missing; build it first (make BUILD=$BUILD)" >&2; exit 1; }
done
if [ $PYKMIP = 1 ] && ! command -v pykmip-server >/dev/null; then
	echo "compare.sh: pykmip-server not found (apt-get install python3-pykmip), or use --no-pykmip" >&2
	exit 1
fi

TMP=$(mktemp -d /tmp/kmip-compare.XXXXXX)
[ -n "$OUT" ] && mkdir -p "$OUT" && OUT=$(cd "$OUT" && pwd)
SERVER_PIDS=()

cleanup() {
	local pid
	trap - EXIT INT TERM
	for pid in "${SERVER_PIDS[@]}"; do
		kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
	done
	for _ in $(seq 50); do
		local alive=0
		for pid in "${SERVER_PIDS[@]}"; do
			kill -0 -- "-$pid" 2>/dev/null && alive=1
		done
		[ $alive = 0 ] && break
		sleep 0.1
	done
	for pid in "${SERVER_PIDS[@]}"; do
		kill -KILL -- "-$pid" 2>/dev/null || true
	done
	if [ -n "$OUT" ]; then
		cp "$TMP"/*.log "$OUT"/ 2>/dev/null || true
	fi
	if [ $KEEP = 1 ]; then
		echo "compare.sh: kept $TMP" >&2
	else
		rm -rf "$TMP"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Starts a server in its own process group (so that its children stop with it).
start() {
	local log=$1
	shift
	setsid "$@" >"$log" 2>&1 &
	SERVER_PIDS+=($!)
	LAST_PID=$!
	disown "$LAST_PID" # no "Killed" notices from the shell when cleanup has to insist
}

check_machine "$WAIT_IDLE" "$(openssl version | cut -d' ' -f1-2)"

# ---- servers ---------------------------------------------------------------------------
KPORT=$(free_port)
RPORT=$(free_port)
start "$TMP/kmipd.log" "$KMIPD" --dev --data-dir "$TMP/kmipd" --listen "127.0.0.1:$KPORT" \
	--raft.address "127.0.0.1:$RPORT" $(admin_args "$KMIPD" 127.0.0.1)
KMIPD_PID=$LAST_PID
for _ in $(seq 300); do
	grep -q '^ready' "$TMP/kmipd.log" && break
	kill -0 "$KMIPD_PID" 2>/dev/null || { cat "$TMP/kmipd.log" >&2; exit 1; }
	sleep 0.1
done
grep -q '^ready' "$TMP/kmipd.log" || { echo "compare.sh: kmipd did not get ready" >&2; exit 1; }
PKI=$TMP/kmipd/pki
CLIENT=(--ca "$PKI/ca.pem" --cert "$PKI/client.pem" --key "$PKI/client-key.pem")

CPORT=$(free_port)
start "$TMP/canned.log" "$CANNED" --port "$CPORT" --cert "$PKI/server.pem" \
	--key "$PKI/server-key.pem" --ca "$PKI/ca.pem"
CANNED_PID=$LAST_PID

if [ $PYKMIP = 1 ]; then
	PPORT=$(free_port)
	mkdir -p "$TMP/pykmip/policies"
	# TLS1.2 is pykmip-server's only suite that works with today's OpenSSL (Basic is TLS
	# 1.0). Client certificates must carry EKU clientAuth (kmipd's dev certificates do).
	# WARNING logging: the default INFO logging would slow it down further.
	cat >"$TMP/pykmip/server.conf" <<EOF
[server]
hostname=127.0.0.1
port=$PPORT
certificate_path=$PKI/server.pem
key_path=$PKI/server-key.pem
ca_path=$PKI/ca.pem
auth_suite=TLS1.2
policy_path=$TMP/pykmip/policies
enable_tls_client_auth=True
logging_level=WARNING
database_path=$TMP/pykmip/pykmip.db
EOF
	start "$TMP/pykmip.log" pykmip-server -f "$TMP/pykmip/server.conf" \
		-l "$TMP/pykmip/server.log"
	PYKMIP_PID=$LAST_PID
fi

# Waits until a Discover Versions on port @1 succeeds.
wait_ready() {
	local port=$1 name=$2
	for _ in $(seq 150); do
		"$BENCH" "${CLIENT[@]}" --port "$port" --tls12 --connections 1 --requests 1 \
			--quiet >/dev/null 2>&1 && return 0
		sleep 0.2
	done
	echo "compare.sh: $name on port $port does not answer" >&2
	exit 1
}
wait_ready "$CPORT" canned-server
if [ $PYKMIP = 1 ]; then wait_ready "$PPORT" pykmip-server; fi

# The process ids whose CPU kmip-bench reports: the whole process group.
group_pids() {
	pgrep -g "$1" | paste -sd, -
}

# ---- runs ------------------------------------------------------------------------------
ROWS=()
# Per run (KEY.SERVER.ROUND): the RESULT line's fields. Per row (KEY.SERVER): the median
# round's fields, and the range of ops/s over the rounds.
declare -A R_OPS R_P99 R_ERR R_SCPU R_CCPU R_OTHER R_RES
declare -A OPS P99 ERR SCPU CCPU OTHER RES RANGE

# run KEY SERVER ROUND PORT SECONDS kmip-bench-args...
run() {
	local key=$1 server=$2 round=$3 port=$4 secs=$5 pid
	shift 5
	case $server in
	kmipd) pid=$KMIPD_PID ;;
	canned) pid=$CANNED_PID ;;
	pykmip) pid=$PYKMIP_PID ;;
	esac
	local k=$key.$server.$round
	local out="$TMP/$k.out"
	local cmd=("$BENCH" "${CLIENT[@]}" --port "$port" --connections "$CONNECTIONS"
		--duration "$secs" --keys "$KEYS" --name "$key.$server"
		--server-pid "$(group_pids "$pid")" "$@")
	local label=
	if [ "$ROUNDS" -gt 1 ]; then label="round $round"; fi
	printf '   %-5s %-7s %s  ' "$key" "$server" "$label"
	"${cmd[@]}" >"$out" 2>&1 || true
	if [ -n "$OUT" ]; then
		{ echo "\$ ${cmd[*]}"; cat "$out"; } >"$OUT/$k.txt"
	fi
	local line
	line=$(grep '^RESULT ' "$out" || true)
	if [ -z "$line" ]; then
		echo "no result (see below)"
		sed 's/^/      /' "$out" | tail -5
		R_OPS[$k]=0 R_P99[$k]=- R_ERR[$k]=-
		return 0
	fi
	field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$line"; }
	R_OPS[$k]=$(field ops_per_s)
	R_P99[$k]=$(field p99_ms)
	R_ERR[$k]=$(field errors)
	R_SCPU[$k]=$(field server_cpu_pct)
	R_CCPU[$k]=$(field client_cpu_pct)
	local o st
	o=$(field other_cpu_pct)
	st=$(field steal_pct)
	R_OTHER[$k]=$((${o:-0} + ${st:-0}))
	R_RES[$k]=
	if [[ " $* " == *" --resume "* ]]; then R_RES[$k]=$(field resumed_pct); fi
	echo "${R_OPS[$k]} ops/s, p99 ${R_P99[$k]} ms, errors ${R_ERR[$k]}, others' CPU ${R_OTHER[$k]}%"
	grep '^error ' "$out" | head -3 | sed 's/^/      /' || true
	return 0
}

# Picks the round with the median ops/s of KEY.SERVER as the row's figures.
summarize() {
	local key=$1 server=$2 r sorted median
	sorted=$(for r in $(seq "$ROUNDS"); do
		[ -n "${R_OPS[$key.$server.$r]:-}" ] && echo "${R_OPS[$key.$server.$r]} $r"
	done | sort -g)
	[ -z "$sorted" ] && return 0
	median=$(awk '{ a[NR] = $2 } END { print a[int((NR + 1) / 2)] }' <<<"$sorted")
	local m=$key.$server.$median k=$key.$server
	OPS[$k]=${R_OPS[$m]} P99[$k]=${R_P99[$m]} ERR[$k]=${R_ERR[$m]}
	SCPU[$k]=${R_SCPU[$m]:-} CCPU[$k]=${R_CCPU[$m]:-} OTHER[$k]=${R_OTHER[$m]:-}
	RES[$k]=${R_RES[$m]:-}
	RANGE[$k]=$(awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf("%.0f-%.0f", lo, hi) }' <<<"$sorted")
	# Errors in any round make the row invalid, not just in the median one.
	for r in $(seq "$ROUNDS"); do
		local e=${R_ERR[$key.$server.$r]:-0}
		if [ "$e" != 0 ] && [ "$e" != - ]; then ERR[$k]="${ERR[$k]}(+r$r:$e)"; fi
	done
	return 0
}

# scenario KEY "description" servers... -- kmip-bench args
scenario() {
	local key=$1 desc=$2
	shift 2
	local servers=()
	while [ "$1" != -- ]; do servers+=("$1"); shift; done
	shift
	if [ $PYKMIP = 0 ]; then
		local kept=() x
		for x in "${servers[@]}"; do [ "$x" = pykmip ] || kept+=("$x"); done
		servers=("${kept[@]}")
	fi
	ROWS+=("$key|$desc|${servers[*]}")
	echo "-- $key: $desc"
	local s round
	for round in $(seq "$ROUNDS"); do
		for s in "${servers[@]}"; do
			case $s in
			kmipd) run "$key" kmipd "$round" "$KPORT" "$KMIPD_SECONDS" "$@" ;;
			canned) run "$key" canned "$round" "$CPORT" "$CEILING_SECONDS" "$@" ;;
			pykmip) run "$key" pykmip "$round" "$PPORT" "$PYKMIP_SECONDS" "$@" ;;
			esac
		done
	done
	for s in "${servers[@]}"; do summarize "$key" "$s"; done
}

echo "== runs: $CONNECTIONS connections each, kmipd ${KMIPD_SECONDS} s, ceiling ${CEILING_SECONDS} s," \
	"pykmip-server ${PYKMIP_SECONDS} s (+1 s warm-up each), $ROUNDS round(s)"
# pykmip-server speaks TLS 1.2 only, so the comparison rows all use TLS 1.2 (what vCenter
# 7 negotiates too).
scenario a "Get, persistent connections, TLS 1.2" kmipd pykmip canned -- --mix get --tls12
scenario b1 "new connection per request (Discover Versions), full handshakes, TLS 1.2" \
	kmipd pykmip canned -- --new-connection --mix discover --tls12
scenario b2 "new connection per request (Discover Versions), resumed, TLS 1.2" \
	kmipd pykmip canned -- --new-connection --resume --mix discover --tls12
scenario c "Create AES-256, persistent connections, TLS 1.2" kmipd pykmip canned -- \
	--mix create --tls12
if [ $TLS13 = 1 ]; then
	scenario a13 "Get, persistent connections, TLS 1.3" kmipd canned -- --mix get --tls13
	scenario b13 "new connection per request, full handshakes, TLS 1.3" kmipd canned -- \
		--new-connection --mix discover --tls13
	scenario b13r "new connection per request, resumed, TLS 1.3" kmipd canned -- \
		--new-connection --resume --mix discover --tls13
fi

# ---- the table -------------------------------------------------------------------------
ratio() {
	local x=${OPS[$1]:-} y=${OPS[$2]:-}
	if [ -z "$x" ] || [ -z "$y" ] || [ "$y" = 0 ] || [ "$x" = 0 ]; then
		echo -
	else
		awk -v a="$x" -v b="$y" 'BEGIN { r = a / b; printf(r >= 10 ? "%.0fx" : "%.2fx", r) }'
	fi
}
pct() {
	local x=${OPS[$1]:-} y=${OPS[$2]:-}
	if [ -z "$x" ] || [ -z "$y" ] || [ "$y" = 0 ] || [ "$x" = 0 ]; then
		echo -
	else
		awk -v a="$x" -v b="$y" 'BEGIN { printf("%.0f%%", 100 * a / b) }'
	fi
}
table() {
	local fmt='%-5s %-13s %10s %9s %6s %8s %8s %6s %8s %13s %14s'
	if [ "$ROUNDS" -gt 1 ]; then fmt="$fmt %13s"; fi
	# shellcheck disable=SC2059
	printf "$fmt\n" scen server ops/s p99_ms errors srv_cpu cli_cpu others resumed \
		kmipd/pykmip kmipd/ceiling "ops/s range"
	local row key desc servers s disturbed=0
	for row in "${ROWS[@]}"; do
		IFS='|' read -r key desc servers <<<"$row"
		echo "$key: $desc"
		for s in $servers; do
			local k=$key.$s name=$s r1=- r2=-
			case $s in
			canned) name="canned(ceil)" ;;
			pykmip) name="pykmip-server" ;;
			kmipd)
				if [[ " $servers " == *" pykmip "* ]]; then
					r1=$(ratio "$key.kmipd" "$key.pykmip")
				fi
				if [[ " $servers " == *" canned "* ]]; then
					r2=$(pct "$key.kmipd" "$key.canned")
				fi
				;;
			esac
			local other=${OTHER[$k]:-}
			if [ -n "$other" ] && [ "$other" -gt 10 ]; then
				other="$other%!"
				disturbed=1
			else
				other=${other:+$other%}
			fi
			# shellcheck disable=SC2059
			printf "$fmt\n" "" "$name" "${OPS[$k]:-0}" "${P99[$k]:--}" "${ERR[$k]:--}" \
				"${SCPU[$k]:+${SCPU[$k]}%}" "${CCPU[$k]:+${CCPU[$k]}%}" "$other" \
				"${RES[$k]:+${RES[$k]}%}" "$r1" "$r2" "${RANGE[$k]:-}"
		done
	done
	echo
	echo "ops/s: successful requests per second (new connection rows: one request per"
	echo "connection, so also TLS handshakes per second); p99_ms: 99th percentile latency"
	echo "(new connection rows: connect + handshake + request + response); srv_cpu, cli_cpu:"
	echo "CPU of the server and of kmip-bench in the measured window (100% = one core of $(nproc));"
	echo "others: CPU taken meanwhile by other processes and the hypervisor (steal)."
	echo "canned(ceil) answers canned bytes over the same TLS: the ceiling of TLS + framing."
	echo "Create on canned-server stores nothing; it is there for scale only."
	if [ "$ROUNDS" -gt 1 ]; then
		echo "With $ROUNDS rounds each row is the round with the median ops/s; the range is over all rounds."
	fi
	if [ $disturbed = 1 ]; then
		echo "!: more than 10% of a core went to other work during that run: rerun on a quiet machine."
	fi
}
echo
echo "== results"
table | tee ${OUT:+"$OUT/table.txt"}
