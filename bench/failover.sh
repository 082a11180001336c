#!/usr/bin/env bash
# The failover drill: a fresh 3-node kmipd cluster on loopback; kmip-bench drives a mix as
# vCenter with a key provider of two KMS would (--endpoints LEADER,FOLLOWER); at --kill-at
# the leader gets SIGKILL, at --restart-at it starts again. Writes a timeline (CSV), a
# per-request log, a PNG plot (with gnuplot) and a summary: the write-unavailability window,
# failed reads, errors. See bench/README.md ("failover.sh").
#
#   bench/failover.sh [--build DIR] [--out DIR] [--duration S] [--kill-at S] [--restart-at S]
#                     [--mix SPEC] [--connections N] [--keys K] [--timeout MS] [--keep]
#                     [-- KMIPD_ARGS...]
#
# Defaults: 20 s measured (after a 1 s warm-up), kill at 5 s, restart at 12 s, mix
# get=80,create=20 over 1000 keys made beforehand, 16 connections, no request timeout
# (--timeout MS: kmip-bench fails a request, and fails over, after MS ms). Without --out the
# results go to a new directory /tmp/kmipd-failover.XXXXXX (printed). KMIPD_ARGS go to every
# node (e.g. -- --cluster.election_timeout_ms=500).
# Exit status: 0 when both targets are met (writes resume <= 3 s after the kill, no failed
# read), 3 when one is not, 1 when the drill could not run.
set -euo pipefail
cd "$(dirname "$0")/.."
ME=failover.sh
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

BUILD=build
OUT=
DURATION=20
KILL_AT=5
RESTART_AT=12
MIX=get=80,create=20
CONNS=16
KEYS=1000
TIMEOUT=0
KEEP=0
KMIPD_ARGS=()
TARGET_WRITE_MS=3000

usage() { sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
	case $1 in
	--build) BUILD=$2; shift 2 ;;
	--out) OUT=$2; shift 2 ;;
	--duration) DURATION=$2; shift 2 ;;
	--kill-at) KILL_AT=$2; shift 2 ;;
	--restart-at) RESTART_AT=$2; shift 2 ;;
	--mix) MIX=$2; shift 2 ;;
	--connections) CONNS=$2; shift 2 ;;
	--keys) KEYS=$2; shift 2 ;;
	--timeout) TIMEOUT=$2; shift 2 ;;
	--keep) KEEP=1; shift ;;
	--) shift; KMIPD_ARGS=("$@"); break ;;
	-h | --help) usage; exit 0 ;;
	*) echo "failover.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
	esac
done
awk -v k="$KILL_AT" -v r="$RESTART_AT" -v d="$DURATION" 'BEGIN { exit !(0 < k && k < r && r < d) }' ||
	{ echo "failover.sh: want 0 < --kill-at < --restart-at < --duration" >&2; exit 2; }

KMIPD=$BUILD/kmipd
BENCH=$BUILD/bench/kmip-bench
for f in "$KMIPD" "$BENCH"; do
	[ -x "$f" ] || { echo "failover.sh: $f is missing; run make (make BUILD=$BUILD)" >&2; exit 1; }
done
if [ -z "$OUT" ]; then
	OUT=$(mktemp -d /tmp/kmipd-failover.XXXXXX)
else
	mkdir -p "$OUT"
fi
OUT=$(cd "$OUT" && pwd)
TMP=$(mktemp -d "${TMPDIR:-/tmp}/kmipd-failover-data.XXXXXX")
STARTED=() # every kmipd started; each leads its own process group (setsid)
BENCH_PID=
SLEEP_PID=

# shellcheck disable=SC2317 # (run by the traps)
cleanup() {
	local pid alive
	trap - EXIT INT TERM
	[ -z "$SLEEP_PID" ] || kill "$SLEEP_PID" 2>/dev/null || true
	if [ -n "$BENCH_PID" ]; then
		kill -TERM "$BENCH_PID" 2>/dev/null || true
		wait "$BENCH_PID" 2>/dev/null || true
	fi
	for pid in "${STARTED[@]}"; do
		kill -TERM -- "-$pid" 2>/dev/null || true
	done
	for _ in $(seq 100); do
		alive=0
		for pid in "${STARTED[@]}"; do
			kill -0 -- "-$pid" 2>/dev/null && alive=1
		done
		[ "$alive" = 0 ] && break
		sleep 0.1
	done
	for pid in "${STARTED[@]}"; do
		kill -KILL -- "-$pid" 2>/dev/null || true
	done
	cp "$TMP"/*.log "$OUT"/ 2>/dev/null || true
	if [ "$KEEP" = 1 ]; then
		echo "failover.sh: kept the cluster's data in $TMP" >&2
	else
		rm -rf "$TMP"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

now_ms() { local t=$EPOCHREALTIME; printf '%s' "$((${t%.*} * 1000 + 10#${t#*.} / 1000))"; }

# Sleeps until the wall clock reaches $1 (ms since the epoch); in the background, so that
# a signal runs the traps at once.
sleep_until_ms() {
	local left=$(($1 - $(now_ms)))
	[ "$left" -gt 0 ] || return 0
	sleep "$(awk -v l="$left" 'BEGIN { printf "%.3f", l / 1000 }')" &
	SLEEP_PID=$!
	wait "$SLEEP_PID" || true
	SLEEP_PID=
}

# $1 seconds into the measured window, in ms since the epoch.
at_ms() { awk -v t0="$T0" -v s="$1" 'BEGIN { printf "%.0f", t0 + s * 1000 }'; }

# An ISO time of kmipd's log (2026-11-23T16:28:30.941Z) in ms since the epoch.
log_ms() { date -d "$1" +%s%3N; }

# ---- the cluster (as bench/cluster-bench.sh starts it) ------------------------------------

read -r PORT RPORT <<<"$(free_ports)"
MEMBERS="1@127.0.0.1:$RPORT,2@127.0.0.2:$RPORT,3@127.0.0.3:$RPORT"
NODE_PID=()

start_node() { # I LOG
	local i=$1
	setsid "$KMIPD" --dev --data-dir "$TMP/node$i" --server.pki_dir "$TMP/pki" \
		--server.hosts 127.0.0.2,127.0.0.3 --root_key.file "$TMP/root.key" \
		--listen "127.0.0.$i:$PORT" --raft.id "$i" --raft.address "127.0.0.$i:$RPORT" \
		--cluster.members "$MEMBERS" $(admin_args "$KMIPD" "127.0.0.$i") "${KMIPD_ARGS[@]}" \
		>"$2" 2>&1 </dev/null &
	NODE_PID[i]=$!
	STARTED+=($!)
	disown "$!"
}

for i in 1 2 3; do
	start_node "$i" "$TMP/node$i.log"
	if [ "$i" = 1 ]; then # node 1 makes the PKI and the root key the others share
		for _ in $(seq 600); do
			[ -s "$TMP/pki/client-key.pem" ] && [ -s "$TMP/root.key" ] && break
			kill -0 "${NODE_PID[1]}" 2>/dev/null || break
			sleep 0.05
		done
	fi
done
for i in 1 2 3; do
	wait_ready "$TMP/node$i.log" "${NODE_PID[i]}" "node $i"
done
L=
for _ in $(seq 100); do
	L=$(leader)
	[ -n "$L" ] && break
	sleep 0.1
done
[ -n "$L" ] || { echo "failover.sh: the nodes do not agree on a leader" >&2; exit 1; }
F=
for i in 1 2 3; do
	[ "$i" = "$L" ] || { F=$i; break; }
done
ENDPOINTS="127.0.0.$L:$PORT,127.0.0.$F:$PORT"
echo "== $(date -u '+%Y-%m-%d %H:%M:%S UTC'), $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
echo "== cluster: 3 nodes on 127.0.0.{1,2,3}:$PORT (Raft :$RPORT); leader node $L, endpoint 2 = follower node $F${KMIPD_ARGS[*]:+; kmipd flags: ${KMIPD_ARGS[*]}}"

# ---- the drill ---------------------------------------------------------------------------

"$BENCH" --ca "$TMP/pki/ca.pem" --cert "$TMP/pki/client.pem" --key "$TMP/pki/client-key.pem" \
	--endpoints "$ENDPOINTS" --mix "$MIX" --connections "$CONNS" --keys "$KEYS" \
	--duration "$DURATION" --warmup 1 --timeout "$TIMEOUT" --timeline "$OUT/timeline.csv" \
	--request-log "$OUT/requests.csv" --name failover >"$OUT/bench.out" 2>&1 &
BENCH_PID=$!
T0=
for _ in $(seq 1200); do
	T0=$(sed -n 's/^WINDOW_START unix_ms=//p' "$OUT/bench.out")
	[ -n "$T0" ] && break
	if ! kill -0 "$BENCH_PID" 2>/dev/null; then
		echo "failover.sh: kmip-bench ended before its measured window; its output:" >&2
		sed 's/^/    /' "$OUT/bench.out" >&2
		exit 1
	fi
	sleep 0.05
done
[ -n "$T0" ] || { echo "failover.sh: kmip-bench did not start its window within 60 s" >&2; exit 1; }
echo "== kmip-bench --endpoints $ENDPOINTS --mix $MIX --connections $CONNS --timeout $TIMEOUT: window of $DURATION s from $(date -u -d "@$((T0 / 1000))" +%H:%M:%S)"

sleep_until_ms "$(at_ms "$KILL_AT")"
OLD_PID=${NODE_PID[L]}
kill -KILL "$OLD_PID"
KILL_MS=$(now_ms)
echo "   t=$((KILL_MS - T0))ms  SIGKILL to the leader, node $L (pid $OLD_PID)"
for _ in $(seq 100); do
	kill -0 "$OLD_PID" 2>/dev/null || break
	sleep 0.01
done
mv "$TMP/node$L.log" "$TMP/node$L.before-kill.log"

sleep_until_ms "$(at_ms "$RESTART_AT")"
start_node "$L" "$TMP/node$L.log"
RESTART_MS=$(now_ms)
echo "   t=$((RESTART_MS - T0))ms  node $L started again (pid ${NODE_PID[L]})"

rc=0
wait "$BENCH_PID" || rc=$?
BENCH_PID=
[ "$rc" = 0 ] || [ "$rc" = 3 ] || {
	echo "failover.sh: kmip-bench failed (exit $rc):" >&2
	sed 's/^/    /' "$OUT/bench.out" >&2
	exit 1
}
wait_ready "$TMP/node$L.log" "${NODE_PID[L]}" "node $L (restarted)"
for _ in $(seq 100); do # the restarted node should hear from the leader
	grep -qE "$LEADER_RE" "$TMP/node$L.log" && break
	sleep 0.1
done

# ---- what happened -----------------------------------------------------------------------

KILL_T=$((KILL_MS - T0))
# The first leader line logged by a surviving node after the kill.
NEW_LEADER_LINE=$(for i in 1 2 3; do [ "$i" = "$L" ] || grep -hE "$LEADER_RE" "$TMP/node$i.log"; done |
	sort | while read -r ts rest; do
		[ "$(log_ms "$ts")" -gt "$KILL_MS" ] && { printf '%s %s\n' "$ts" "$rest"; break; }
	done || true)
ELECTED_MS=-
NEW_LEADER=-
if [ -n "$NEW_LEADER_LINE" ]; then
	ELECTED_MS=$(($(log_ms "${NEW_LEADER_LINE%% *}") - KILL_MS))
	NEW_LEADER=$(sed -E 's/.*raft: (this node \(([0-9]+)\)|node ([0-9]+) at).*/\2\3/' <<<"$NEW_LEADER_LINE")
fi
REJOIN_LINE=$(grep -E "$LEADER_RE" "$TMP/node$L.log" | head -n 1 || true)
REJOINED_MS=-
[ -z "$REJOIN_LINE" ] || REJOINED_MS=$(($(log_ms "${REJOIN_LINE%% *}") - RESTART_MS))

# From the per-request log (ms into the window): the first write, and the first read, that
# succeeded after the kill and that was not already answered before it, i.e. that started
# after the kill or failed over; failures and failovers by operation.
read -r WRITE_MS READ_MS LAST_WRITE GET_ERR ALL_ERR FO_ALL FO_CREATE FO_GET FO_CONN \
	RECOVERED MAX_RECOVERED <<<"$(awk -F, -v k="$KILL_T" '
	/^#/ || $1 == "t_ms" { next }
	$4 == "ok" && $1 > k && ($2 > k || $6 > 0) {
		if ($3 == "create" && w == "") w = $1 - k
		if ($3 == "get" && r == "") r = $1 - k
	}
	$4 == "ok" && $3 == "create" && $1 <= k { last = $1 }
	$4 == "ok" && $6 > 0 { rec++; if ($5 > maxrec) maxrec = $5 }
	$4 == "error" { all++; if ($3 == "get") gerr++ }
	$4 == "failover" { fo++; if ($3 == "create") fc++; else if ($3 == "get") fg++; else fconn++ }
	END {
		printf "%s %s %s %d %d %d %d %d %d %d %.1f\n", (w == "" ? "-" : sprintf("%.0f", w)),
			(r == "" ? "-" : sprintf("%.0f", r)), (last == "" ? "-" : sprintf("%.0f", k - last)),
			gerr, all, fo, fc, fg, fconn, rec, maxrec
	}' "$OUT/requests.csv")"
RESULT=$(grep '^RESULT ' "$OUT/bench.out" || true)
field() { sed -nE "s/.*[ ]$1=([^ ]*).*/\\1/p" <<<" $2"; }
OPS=$(field ops_per_s "$RESULT")

WRITE_OK="NOT met"
[ "$WRITE_MS" != - ] && [ "$WRITE_MS" -le "$TARGET_WRITE_MS" ] && WRITE_OK=met
READ_OK="NOT met"
[ "$GET_ERR" = 0 ] && READ_OK=met

# ---- the plot ----------------------------------------------------------------------------

PLOT="$OUT/failover.png"
if command -v gnuplot >/dev/null; then
	header=$(head -n 1 "$OUT/timeline.csv")
	per_op=
	for op in create get getattr activate query discover; do
		[[ ,$header, == *",${op}_ok,"* ]] &&
			per_op+=", '' using (\$1/1000):(column('${op}_ok')*10) with lines lw 1.5 title '$op ok/s'"
	done
	gnuplot <<EOF || { echo "failover.sh: gnuplot failed" >&2; PLOT=; }
set terminal pngcairo size 1200,800 font ',10'
set output '$PLOT'
set datafile separator ','
set key autotitle columnhead top right
set multiplot layout 2,1 title "kmipd failover drill: SIGKILL to the leader (node $L) at ${KILL_AT} s, restarted at ${RESTART_AT} s; kmip-bench --endpoints node $L, node $F; $MIX, $CONNS connections"
set grid
set lmargin 10
set rmargin 10
set xrange [0:$DURATION]
set arrow 1 from $KILL_T/1000.0, graph 0 to $KILL_T/1000.0, graph 1 nohead lc rgb 'red' dt 2
set arrow 2 from $((RESTART_MS - T0))/1000.0, graph 0 to $((RESTART_MS - T0))/1000.0, graph 1 nohead lc rgb 'dark-green' dt 2
set ylabel 'per second'
set format x ''
set y2label 'errors, failovers per 100 ms'
set y2tics
set ytics nomirror
set yrange [0:*]
set y2range [0:*]
plot '$OUT/timeline.csv' using (\$1/1000):(column('ok')*10) with lines lw 2 lc rgb 'black' title 'ok/s (all)' $per_op, \
     '' using (\$1/1000):'errors' axes x1y2 with impulses lw 4 lc rgb 'red' title 'errors (right axis)', \
     '' using (\$1/1000):'failovers' axes x1y2 with points pt 7 ps 0.8 lc rgb 'orange' title 'failovers (right axis)'
unset y2label
unset y2tics
set ytics mirror
set yrange [*:*]
set format x '%g'
set xlabel 'seconds into the measured window (100 ms intervals)'
set ylabel 'latency (ms), log scale'
set logscale y
# An interval in which no request completed has no latency: NaN breaks the line there.
ms(c) = strcol(c) eq '' ? NaN : column(c)
plot '$OUT/timeline.csv' using (\$1/1000):(ms('p99_ms')) with linespoints pt 7 ps 0.3 lw 2 lc rgb 'blue' title 'p99', \
     '' using (\$1/1000):(ms('max_ms')) with linespoints pt 7 ps 0.2 lw 1 lc rgb 'gray' title 'max', \
     '' using (\$1/1000):(ms('p50_ms')) with linespoints pt 7 ps 0.2 lw 1 lc rgb 'dark-green' title 'p50'
unset multiplot
EOF
else
	echo "failover.sh: gnuplot is not installed (apt-get install gnuplot-nox); no plot" >&2
	PLOT=
fi

# ---- the summary -------------------------------------------------------------------------

{
	echo "failover drill, $(date -u -d "@$((T0 / 1000))" '+%Y-%m-%d %H:%M:%S UTC'): 3 nodes, leader node $L killed (SIGKILL) at t=$(awk -v t="$KILL_T" 'BEGIN { printf "%.3f", t / 1000 }') s, restarted at t=$(awk -v t="$((RESTART_MS - T0))" 'BEGIN { printf "%.3f", t / 1000 }') s"
	echo "client: kmip-bench --endpoints $ENDPOINTS (node $L, then node $F), --mix $MIX, $CONNS connections, $DURATION s, request timeout ${TIMEOUT} ms (0: none)"
	echo "  new leader elected (first leader line of a surviving node): ${ELECTED_MS} ms after the kill (node $NEW_LEADER)"
	echo "  write unavailability (kill -> first successful Create after it): ${WRITE_MS} ms   [target <= ${TARGET_WRITE_MS} ms: $WRITE_OK]"
	echo "    (the last Create answered before the kill completed ${LAST_WRITE} ms before it)"
	echo "  read unavailability (kill -> first successful Get after it): ${READ_MS} ms"
	echo "  failed reads: $GET_ERR   [target 0: $READ_OK]"
	echo "  errors in all (after trying both endpoints): $ALL_ERR"
	echo "  failovers: $FO_ALL (create $FO_CREATE, get $FO_GET, no request in flight $FO_CONN); requests that succeeded after a failover: $RECOVERED, the slowest in ${MAX_RECOVERED} ms"
	echo "  throughput over the window: ${OPS:-?} ops/s; restarted node heard from the leader ${REJOINED_MS} ms after its start"
	echo "  files: $OUT/timeline.csv, $OUT/requests.csv, $OUT/bench.out, ${PLOT:-no plot}, node logs in $OUT"
	echo "RESULT_FAILOVER leader=$L follower=$F kill_t_ms=$KILL_T restart_t_ms=$((RESTART_MS - T0)) election_ms=$ELECTED_MS write_unavailable_ms=$WRITE_MS read_unavailable_ms=$READ_MS failed_reads=$GET_ERR errors=$ALL_ERR failovers=$FO_ALL recovered=$RECOVERED max_recovered_ms=$MAX_RECOVERED ops_per_s=${OPS:-0} write_target=$([ "$WRITE_OK" = met ] && echo met || echo missed) read_target=$([ "$READ_OK" = met ] && echo met || echo missed)"
} | tee "$OUT/summary.txt"
grep -E '^(error|failover) ' "$OUT/bench.out" | sed 's/^/  kmip-bench: /' || true
if [ "$WRITE_OK" != met ] || [ "$READ_OK" != met ]; then
	exit 3
fi
