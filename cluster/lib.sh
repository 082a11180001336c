# shellcheck shell=bash
# The part of cluster/local.sh and cluster/netns.sh that does not depend on where the nodes
# run. Not a command: the two scripts source it after defining
#
#   SELF                 the absolute path of the script (it re-runs itself to supervise nodes)
#   KIND                 "local" or "netns", recorded in DIR/cluster.env
#   node_host I          the address node I listens on (KMIP and Raft)
#   node_exec I CMD...   exec CMD as node I (in its network namespace, for netns.sh)
#   kind_check           fails unless this machine can run the cluster (netns.sh: root)
#   kind_prepare         makes what the nodes need before they start (netns.sh: the network)
#   kind_node_note I     a word or two for `status` about node I's network, or nothing
#   kind_teardown        removes what kind_prepare made (`down`)
#   kind_usage           the script's help text
#   kind_command NAME... runs a subcommand this file does not know, or returns 2
#
# Layout of DIR: cluster.env (written by `up`), pki/ (made by node 1 in dev mode), root.key,
# nodeI/ (node I's data, with pid, exit and log_offset), nodeI.log (stdout and stderr).

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PROG=cluster/$(basename "$SELF")
ENV_MARKER="# Written by cluster/local.sh or cluster/netns.sh; \`down\` deletes this directory only if CREATED_DIR=1."
READY_TIMEOUT=60
STOP_TIMEOUT=30

DIR=
NODES=
PORT=
RAFT_PORT=
LOG_LEVEL=
KMIPD_BIN=
CREATED_DIR=0
EXTRA_ARGS=()
EXTRA_GIVEN=0

die() {
	printf '%s: %s\n' "$PROG" "$*" >&2
	exit 1
}

say() {
	printf '%s\n' "$*"
}

# --- cluster.env --------------------------------------------------------------------------

write_env() {
	local tmp="$DIR/cluster.env.tmp" arg
	{
		printf '%s\n' "$ENV_MARKER"
		printf 'KIND=%s\n' "$KIND"
		printf 'NODES=%s\n' "$NODES"
		printf 'PORT=%s\n' "$PORT"
		printf 'RAFT_PORT=%s\n' "$RAFT_PORT"
		printf 'KMIPD=%s\n' "$KMIPD_BIN"
		printf 'LOG_LEVEL=%s\n' "$LOG_LEVEL"
		printf 'CREATED_DIR=%s\n' "$CREATED_DIR"
		for arg in "${EXTRA_ARGS[@]}"; do
			printf 'ARG=%s\n' "$arg"
		done
	} >"$tmp"
	mv -f "$tmp" "$DIR/cluster.env"
}

# Reads DIR/cluster.env into ENV_* variables (not sourced: it is data, not code).
# Returns 1 when there is none; dies when it is not ours.
read_env() {
	local file="$DIR/cluster.env" first key value line
	ENV_KIND='' ENV_NODES='' ENV_PORT='' ENV_RAFT_PORT='' ENV_KMIPD='' ENV_LOG_LEVEL=''
	ENV_CREATED_DIR=0
	ENV_ARGS=()
	[[ -f $file ]] || return 1
	IFS= read -r first <"$file" || true
	[[ $first == "$ENV_MARKER" ]] || die "$file was not written by cluster/local.sh or cluster/netns.sh"
	while IFS= read -r line; do
		[[ $line == '#'* || -z $line ]] && continue
		key=${line%%=*}
		value=${line#*=}
		case $key in
		KIND) ENV_KIND=$value ;;
		NODES) ENV_NODES=$value ;;
		PORT) ENV_PORT=$value ;;
		RAFT_PORT) ENV_RAFT_PORT=$value ;;
		KMIPD) ENV_KMIPD=$value ;;
		LOG_LEVEL) ENV_LOG_LEVEL=$value ;;
		CREATED_DIR) ENV_CREATED_DIR=$value ;;
		ARG) ENV_ARGS+=("$value") ;;
		*) die "$file: unknown setting '$key'" ;;
		esac
	done <"$file"
	[[ $ENV_KIND == "$KIND" ]] ||
		die "$DIR holds a '$ENV_KIND' cluster; use cluster/$ENV_KIND.sh for it"
	return 0
}

# For every subcommand but `up`: the cluster must exist, and its settings come from it.
load_env() {
	[[ -n $DIR ]] || die "which cluster? give --dir DIR (the directory \`up\` printed)"
	[[ -d $DIR ]] || die "$DIR does not exist"
	DIR=$(cd "$DIR" && pwd)
	read_env || die "$DIR has no cluster.env: start the cluster with \`$PROG --dir $DIR up\`"
	NODES=$ENV_NODES PORT=$ENV_PORT RAFT_PORT=$ENV_RAFT_PORT KMIPD_BIN=$ENV_KMIPD
	LOG_LEVEL=$ENV_LOG_LEVEL CREATED_DIR=$ENV_CREATED_DIR
	EXTRA_ARGS=("${ENV_ARGS[@]}")
}

# --- nodes --------------------------------------------------------------------------------

node_log() { printf '%s/node%s.log' "$DIR" "$1"; }

check_node_arg() {
	if ! [[ ${1:-} =~ ^[1-9]$ ]] || ((10#$1 > NODES)); then
		die "NODE must be 1..$NODES, not '${1:-}'"
	fi
}

# The pid of node I if it runs (checked against its command line), else nothing.
node_pid() {
	local pid arg
	[[ -f $DIR/node$1/pid ]] || return 0
	pid=$(<"$DIR/node$1/pid")
	[[ $pid =~ ^[0-9]+$ && -r /proc/$pid/cmdline ]] || return 0
	while IFS= read -r -d '' arg; do
		if [[ $arg == "$DIR/node$1" ]]; then
			printf '%s' "$pid"
			return 0
		fi
	done 2>/dev/null </proc/"$pid"/cmdline || true
}

node_running() { [[ -n $(node_pid "$1") ]]; }

# The exit status recorded by node I's supervisor, described.
node_exit() {
	local rc
	[[ -f $DIR/node$1/exit ]] || return 0
	rc=$(<"$DIR/node$1/exit")
	if ((rc > 128)); then
		printf 'exit %s, SIG%s' "$rc" "$(kill -l $((rc - 128)) 2>/dev/null || echo $((rc - 128)))"
	else
		printf 'exit %s' "$rc"
	fi
}

members() {
	local i out=
	for ((i = 1; i <= NODES; i++)); do
		out+="${out:+,}$i@$(node_host "$i"):$RAFT_PORT"
	done
	printf '%s' "$out"
}

# The server certificate names every node address (127.0.0.1 it names anyway).
server_hosts() {
	local i host out=
	for ((i = 1; i <= NODES; i++)); do
		host=$(node_host "$i")
		[[ $host == 127.0.0.1 ]] || out+="${out:+,}$host"
	done
	printf '%s' "$out"
}

node_args() {
	local i=$1 hosts
	hosts=$(server_hosts)
	NODE_ARGS=(--dev --data-dir "$DIR/node$i" --server.pki_dir "$DIR/pki"
		--root_key.file "$DIR/root.key" --listen "$(node_host "$i"):$PORT"
		--raft.id "$i" --raft.address "$(node_host "$i"):$RAFT_PORT"
		--cluster.members "$(members)" --log-level "$LOG_LEVEL")
	[[ -z $hosts ]] || NODE_ARGS+=(--server.hosts "$hosts")
	NODE_ARGS+=("${EXTRA_ARGS[@]}")
}

# `__run I` (internal): runs in its own session, starts node I, records its pid and, when it
# ends, its exit status. kmipd gets SIGTERM and SIGKILL directly, never through this shell.
cmd_run() {
	local i=$1 pid rc=0
	load_env
	node_args "$i"
	mkdir -p "$DIR/node$i"
	node_exec "$i" "$KMIPD_BIN" "${NODE_ARGS[@]}" </dev/null &
	pid=$!
	printf '%s\n' "$pid" >"$DIR/node$i/pid.tmp"
	mv -f "$DIR/node$i/pid.tmp" "$DIR/node$i/pid"
	wait "$pid" 2>/dev/null || rc=$?
	printf '%s\n' "$rc" >"$DIR/node$i/exit.tmp"
	mv -f "$DIR/node$i/exit.tmp" "$DIR/node$i/exit"
	printf '=== %s %s: node %s ended (%s)\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$PROG" "$i" \
		"$(node_exit "$i")"
}

# Starts node I in the background; returns once it has a pid that runs kmipd (or has
# ended). The supervisor records the pid of its child at fork, before the child has become
# kmipd (through `ip netns exec` for namespaces): in that window node_pid cannot recognise
# it, and a caller would take the node for one that had already exited.
launch_node() {
	local i=$1 log offset deadline
	log=$(node_log "$i")
	mkdir -p "$DIR/node$i"
	chmod 700 "$DIR/node$i"
	rm -f "$DIR/node$i/pid" "$DIR/node$i/exit"
	printf '=== %s %s starts node %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$PROG" "$i" >>"$log"
	offset=$(stat -c %s "$log")
	printf '%s\n' "$offset" >"$DIR/node$i/log_offset"
	setsid "$SELF" --dir "$DIR" __run "$i" </dev/null >>"$log" 2>&1 &
	deadline=$((SECONDS + 10))
	until [[ -f $DIR/node$i/pid ]]; do
		((SECONDS < deadline)) || die "node $i: its supervisor did not start (see $log)"
		sleep 0.05
	done
	until node_running "$i" || [[ -f $DIR/node$i/exit ]]; do
		((SECONDS < deadline)) || die "node $i: kmipd did not start (see $log)"
		sleep 0.02
	done
}

# The part of node I's log written since it was last started.
current_log() {
	local offset=0 log
	log=$(node_log "$1")
	[[ -f $log ]] || return 0
	[[ -f $DIR/node$1/log_offset ]] && offset=$(<"$DIR/node$1/log_offset")
	tail -c +$((offset + 1)) "$log"
}

# (grep reads everything: with pipefail, an early exit would fail the pipeline.)
node_ready() { current_log "$1" | grep -x ready >/dev/null; }

report_failure() {
	local i=$1 why=$2
	{
		printf '%s: node %s %s; the end of %s:\n' "$PROG" "$i" "$why" "$(node_log "$i")"
		current_log "$i" | tail -n 25 | sed 's/^/    /'
	} >&2
}

# Waits until each given node printed "ready"; reports the first that fails.
wait_ready() {
	local deadline=$((SECONDS + READY_TIMEOUT)) pending=("$@") left i
	while ((${#pending[@]} > 0)); do
		left=()
		for i in "${pending[@]}"; do
			if node_ready "$i"; then
				say "node $i serves KMIP on $(node_host "$i"):$PORT (pid $(node_pid "$i"))"
			elif ! node_running "$i"; then
				wait_exit_file "$i"
				report_failure "$i" "exited before it was ready ($(node_exit "$i"))"
				return 1
			else
				left+=("$i")
			fi
		done
		pending=("${left[@]}")
		((${#pending[@]} > 0)) || break
		if ((SECONDS >= deadline)); then
			report_failure "${pending[0]}" "did not print \"ready\" within $READY_TIMEOUT s"
			return 1
		fi
		sleep 0.1
	done
}

# --- subcommands --------------------------------------------------------------------------

# `up` before anything starts: the directory, the settings, cluster.env.
prepare_up() {
	local want_nodes=${1:-} port_given=$PORT raft_given=$RAFT_PORT i pid
	[[ -z $want_nodes || $want_nodes =~ ^[1-9]$ ]] || die "N must be 1..9, not '$want_nodes'"
	kind_check
	if [[ -z $DIR ]]; then
		DIR=$(mktemp -d "${TMPDIR:-/tmp}/kmipd-$KIND.XXXXXX")
		CREATED_DIR=1
		say "data directory: $DIR (give --dir $DIR to the other subcommands)"
	elif [[ ! -e $DIR ]]; then
		mkdir -p "$DIR"
		CREATED_DIR=1
	fi
	[[ -d $DIR ]] || die "$DIR is not a directory"
	DIR=$(cd "$DIR" && pwd)
	[[ $CREATED_DIR == 0 ]] || chmod 700 "$DIR"
	if read_env; then
		for ((i = 1; i <= ENV_NODES; i++)); do
			pid=$(NODES=$ENV_NODES node_pid "$i")
			[[ -z $pid ]] || die "node $i of the cluster in $DIR already runs (pid $pid); see \`$PROG --dir $DIR status\`"
		done
		[[ -z $want_nodes || $want_nodes == "$ENV_NODES" ]] ||
			die "$DIR holds a $ENV_NODES-node cluster; use \`down\` or another --dir for $want_nodes nodes"
		[[ -z $raft_given || $raft_given == "$ENV_RAFT_PORT" ]] ||
			die "$DIR's cluster uses Raft port $ENV_RAFT_PORT (its members are fixed); use another --dir"
		want_nodes=$ENV_NODES
		RAFT_PORT=$ENV_RAFT_PORT
		PORT=${port_given:-$ENV_PORT}
		LOG_LEVEL=${LOG_LEVEL:-$ENV_LOG_LEVEL}
		CREATED_DIR=$ENV_CREATED_DIR
		((EXTRA_GIVEN)) || EXTRA_ARGS=("${ENV_ARGS[@]}")
	fi
	NODES=${want_nodes:-3}
	PORT=${PORT:-5696}
	RAFT_PORT=${RAFT_PORT:-7696}
	LOG_LEVEL=${LOG_LEVEL:-info}
	KMIPD_BIN=${KMIPD:-$ROOT/build/kmipd}
	[[ $KMIPD_BIN == /* ]] || KMIPD_BIN=$PWD/$KMIPD_BIN
	[[ -x $KMIPD_BIN ]] || die "$KMIPD_BIN is missing: run make (or set KMIPD=/path/to/kmipd)"
	check_pki
	write_env
}

# A PKI made before this cluster (e.g. by a single dev node in the same directory) lacks the
# node addresses or the node URI the peer channel requires: say so instead of failing later.
check_pki() {
	local cert=$DIR/pki/server.pem sans i host
	[[ -f $cert ]] || return 0
	command -v openssl >/dev/null || return 0
	sans=$(openssl x509 -in "$cert" -noout -ext subjectAltName 2>/dev/null | tr -d ' \n') || return 0
	sans+=,
	for ((i = 1; i <= NODES; i++)); do
		host=$(node_host "$i")
		if [[ $sans != *"IPAddress:$host,"* ]]; then
			die "$cert does not name node $i's address $host (it was made for another cluster or a single dev node); move $DIR/pki aside (clients then need the new ca.pem) or use another --dir"
		fi
	done
	[[ $sans == *URI:urn:kmipd:node* ]] ||
		die "$cert is not a node certificate (made before clustering); move $DIR/pki aside (clients then need the new ca.pem) or use another --dir"
}

# Node 1 first: in dev mode it makes the shared PKI and root key, which the others must find
# complete. Then the rest, then wait until every node serves.
start_all() {
	local deadline i all=()
	kind_prepare
	launch_node 1
	deadline=$((SECONDS + READY_TIMEOUT))
	until [[ -s $DIR/pki/ca.pem && -s $DIR/pki/client.pem && -s $DIR/pki/client-key.pem && -s $DIR/root.key ]]; do
		if ! node_running 1; then
			wait_exit_file 1
			report_failure 1 "exited before it made the PKI ($(node_exit 1))"
			return 1
		fi
		if ((SECONDS >= deadline)); then
			report_failure 1 "did not make $DIR/pki and $DIR/root.key within $READY_TIMEOUT s"
			return 1
		fi
		sleep 0.05
	done
	for ((i = 2; i <= NODES; i++)); do
		launch_node "$i"
	done
	for ((i = 1; i <= NODES; i++)); do
		all+=("$i")
	done
	wait_ready "${all[@]}"
}

print_endpoints() {
	local i all=() vcenter
	for ((i = 1; i <= NODES; i++)); do
		all+=("$(node_host "$i"):$PORT")
	done
	vcenter=${all[0]}
	((NODES < 2)) || vcenter="${all[0]} and ${all[1]}"
	say "cluster of $NODES node(s) in $DIR, Raft port $RAFT_PORT (peer channel $((RAFT_PORT + 1)))"
	say "KMIP endpoints: ${all[*]}"
	say "For vCenter, one key provider with the KMS servers $vcenter:"
	say "  KMS certificate (trust it):  $DIR/pki/ca.pem"
	say "  client certificate and key:  $DIR/pki/client.pem $DIR/pki/client-key.pem (tenant 'default')"
	say "Admin API: https://$(node_host 1):9696 (every node on its address, port 9696):"
	say "  kmipctl tenant list --endpoint https://$(node_host 1):9696 --pki-dir $DIR/pki"
}

cmd_up() {
	prepare_up "$@"
	if ! start_all; then
		say "stopping the nodes that did start" >&2
		stop_nodes >&2 || true
		exit 1
	fi
	print_endpoints
	say "status, stop, kill NODE, start NODE, down: $PROG --dir $DIR ..."
}

cmd_status() {
	local i pid state line notes all_up=1
	load_env
	say "cluster in $DIR: $KIND, $NODES node(s), KMIP port $PORT, Raft port $RAFT_PORT"
	printf '%-4s %-8s %-7s %-17s %s\n' node state pid "KMIP address" \
		"notes; the node's last log line about the leader since it started"
	for ((i = 1; i <= NODES; i++)); do
		pid=$(node_pid "$i")
		notes=$(kind_node_note "$i")
		if [[ -z $pid ]]; then
			state=stopped all_up=0
			[[ ! -f $DIR/node$i/exit ]] || notes+="${notes:+, }$(node_exit "$i")"
		elif node_ready "$i"; then
			state=ready
		else
			state=starting
		fi
		line=$(current_log "$i" | grep -E 'leader|quorum' | tail -n 1 || true)
		printf '%-4s %-8s %-7s %-17s %s\n' "$i" "$state" "${pid:--}" "$(node_host "$i"):$PORT" \
			"${notes:+($notes) }${line:--}"
	done
	((all_up)) || return 3
}

# After node I's process is gone, its supervisor records how it ended: wait a little for it.
wait_exit_file() {
	local deadline=$((SECONDS + 3))
	while [[ ! -f $DIR/node$1/exit ]] && ((SECONDS < deadline)); do
		sleep 0.05
	done
}

# SIGTERM to every running node, then wait and report how each ended. Returns 1 if a node
# would not stop or ended with a non-zero status.
stop_nodes() {
	local i pid deadline rc=0 stopping=() left
	for ((i = 1; i <= NODES; i++)); do
		pid=$(node_pid "$i")
		if [[ -n $pid ]]; then
			kill -TERM "$pid" 2>/dev/null || true
			stopping+=("$i")
		else
			say "node $i: not running"
		fi
	done
	deadline=$((SECONDS + STOP_TIMEOUT))
	while ((${#stopping[@]} > 0)); do
		left=()
		for i in "${stopping[@]}"; do
			if node_running "$i"; then
				left+=("$i")
				continue
			fi
			wait_exit_file "$i"
			say "node $i: stopped ($(node_exit "$i"))"
			[[ $(cat "$DIR/node$i/exit" 2>/dev/null) == 0 ]] || rc=1
		done
		stopping=("${left[@]}")
		((${#stopping[@]} > 0)) || break
		if ((SECONDS >= deadline)); then
			for i in "${stopping[@]}"; do
				say "node $i: still running $STOP_TIMEOUT s after SIGTERM (pid $(node_pid "$i")); \`kill $i\` ends it"
			done
			return 1
		fi
		sleep 0.1
	done
	return "$rc"
}

cmd_stop() {
	load_env
	stop_nodes
}

cmd_kill() {
	local i=${1:-} pid deadline
	load_env
	check_node_arg "$i"
	pid=$(node_pid "$i")
	[[ -n $pid ]] || die "node $i is not running"
	kill -KILL "$pid"
	deadline=$((SECONDS + 10))
	while node_running "$i"; do
		((SECONDS < deadline)) || die "node $i (pid $pid) survived SIGKILL for 10 s"
		sleep 0.05
	done
	wait_exit_file "$i"
	say "node $i: killed (pid $pid, $(node_exit "$i"))"
}

cmd_start() {
	local i=${1:-} pid
	load_env
	check_node_arg "$i"
	kind_check
	pid=$(node_pid "$i")
	[[ -z $pid ]] || die "node $i already runs (pid $pid)"
	[[ -s $DIR/pki/client-key.pem && -s $DIR/root.key ]] ||
		die "$DIR has no PKI or root key yet: use \`up\`"
	kind_prepare
	launch_node "$i"
	wait_ready "$i" || exit 1
	# A node that knows its tenants serves (and prints "ready") before it hears from the
	# leader; wait a little for that too, so that what it serves is current.
	local deadline=$((SECONDS + 10)) line
	while ((SECONDS < deadline)); do
		line=$(current_log "$i" | grep -E 'raft: .*is the leader' | tail -n 1 || true)
		if [[ -n $line ]]; then
			say "node $i rejoined: $(sed -E 's/^[^ ]+ +[a-z]+ +//' <<<"$line")"
			return 0
		fi
		sleep 0.1
	done
	say "node $i has not heard from a leader within 10 s (no quorum?); it serves what it has"
}

cmd_down() {
	local i pid
	[[ -n $DIR ]] || die "which cluster? give --dir DIR"
	[[ -f $DIR/cluster.env ]] ||
		die "$DIR has no cluster.env: not a cluster made by $PROG; nothing done"
	load_env
	stop_nodes || true
	for ((i = 1; i <= NODES; i++)); do
		pid=$(node_pid "$i")
		if [[ -n $pid ]]; then
			say "node $i: SIGKILL (it did not stop)"
			kill -KILL "$pid" 2>/dev/null || true
		fi
	done
	sleep 0.2
	for ((i = 1; i <= NODES; i++)); do
		! node_running "$i" || die "node $i still runs; $DIR kept"
	done
	kind_teardown
	if [[ $CREATED_DIR == 1 && -f $DIR/cluster.env && $DIR != / ]]; then
		rm -rf -- "$DIR"
		say "removed $DIR"
	else
		say "kept $DIR: it existed before \`up\` (remove it yourself if it is yours)"
	fi
}

# `make run`: the cluster with every node's log on the terminal until Ctrl-C or SIGTERM.
cmd_foreground() {
	local i offset
	prepare_up "$@"
	for ((i = 1; i <= NODES; i++)); do
		offset=0
		[[ ! -f $(node_log "$i") ]] || offset=$(stat -c %s "$(node_log "$i")")
		# Background jobs of a script ignore SIGINT: Ctrl-C does not cut the logs short.
		# tail ends on its own once this script has exited (--pid).
		tail --pid=$$ -F -c +$((offset + 1)) "$(node_log "$i")" 2>/dev/null |
			sed -u "s/^/[node $i] /" &
	done
	trap on_stop_signal INT TERM
	if ! start_all; then
		trap - INT TERM
		say "stopping the nodes that did start" >&2
		stop_nodes >&2 || true
		sleep 0.3
		exit 1
	fi
	say ""
	print_endpoints
	say "Logs of every node follow; Ctrl-C stops the cluster (data stays in $DIR)."
	say ""
	while :; do
		sleep 1 &
		wait $! || true
		local any=0
		for ((i = 1; i <= NODES; i++)); do
			! node_running "$i" || any=1
		done
		if ((!any)); then
			sleep 0.3
			say "$PROG: every node has stopped" >&2
			exit 1
		fi
	done
}

on_stop_signal() {
	local rc=0
	trap - INT TERM
	say ""
	say "stopping the cluster"
	stop_nodes || rc=$?
	sleep 0.5 # the last log lines
	exit "$rc"
}

# --- the command line ---------------------------------------------------------------------

main() {
	local args=() cmd
	while (($# > 0)); do
		case $1 in
		-h | --help | help)
			kind_usage
			exit 0
			;;
		--dir) DIR=${2:?--dir needs a directory} && shift ;;
		--dir=*) DIR=${1#*=} ;;
		--port) PORT=${2:?--port needs a port} && shift ;;
		--port=*) PORT=${1#*=} ;;
		--raft-port) RAFT_PORT=${2:?--raft-port needs a port} && shift ;;
		--raft-port=*) RAFT_PORT=${1#*=} ;;
		--log-level) LOG_LEVEL=${2:?--log-level needs a level} && shift ;;
		--log-level=*) LOG_LEVEL=${1#*=} ;;
		--)
			shift
			EXTRA_ARGS=("$@")
			EXTRA_GIVEN=1
			break
			;;
		-*) die "unknown option '$1' (see --help)" ;;
		*) args+=("$1") ;;
		esac
		shift
	done
	[[ -z $PORT || ($PORT =~ ^[0-9]+$ && PORT -ge 1 && PORT -le 65535) ]] || die "bad --port '$PORT'"
	[[ -z $RAFT_PORT || ($RAFT_PORT =~ ^[0-9]+$ && RAFT_PORT -ge 1 && RAFT_PORT -le 65534) ]] ||
		die "bad --raft-port '$RAFT_PORT' (the peer channel uses the next port too)"
	((${#args[@]} > 0)) || {
		kind_usage >&2
		exit 2
	}
	cmd=${args[0]}
	args=("${args[@]:1}")
	case $cmd in
	up) cmd_up "${args[@]}" ;;
	foreground) cmd_foreground "${args[@]}" ;;
	status) cmd_status ;;
	stop) cmd_stop ;;
	kill) cmd_kill "${args[@]}" ;;
	start) cmd_start "${args[@]}" ;;
	down) cmd_down ;;
	__run) cmd_run "${args[@]}" ;;
	*)
		local rc=0
		kind_command "$cmd" "${args[@]}" || rc=$?
		((rc != 2)) || die "unknown subcommand '$cmd' (see --help)"
		return "$rc"
		;;
	esac
}
