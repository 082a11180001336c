# Shared by the benchmark scripts (sourced, not run): the machine check, free ports, and
# starting and watching a 3-node cluster's processes. The sourcing script sets ME (its
# name, for messages) and, for leader(), TMP (where nodeI.log are).

# Busy share of all CPUs over $1 seconds, in percent (from /proc/stat).
cpu_busy() {
	local before after idle total=0 i
	read -r -a before </proc/stat
	sleep "$1"
	read -r -a after </proc/stat
	idle=$(((after[4] + after[5]) - (before[4] + before[5])))
	for i in 1 2 3 4 5 6 7 8; do total=$((total + after[i] - before[i])); done
	if [ $total -gt 0 ]; then echo $((100 * (total - idle) / total)); else echo 0; fi
}

# Clock ticks the kdamond threads have used so far.
kdamond_ticks() {
	local sum=0 pid
	for pid in $(pgrep -x 'kdamond\.[0-9]+' || true); do
		sum=$((sum + $(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || echo 0)))
	done
	echo "$sum"
}

# kdamond_ms_since TICKS: CPU milliseconds the kdamond threads used since kdamond_ticks
# printed TICKS.
kdamond_ms_since() {
	echo $((($(kdamond_ticks) - $1) * 1000 / $(getconf CLK_TCK)))
}

# The kernel's memory access monitors (DAMON) running now: one sysfs directory a line.
# Each takes a CPU for tens of milliseconds every sampling interval, and longer the more
# pages the processes touch: it shows in kmipd's tail at a fixed rate.
KERNEL_MONITORS=/sys/kernel/mm/damon/admin/kdamonds
kernel_monitors() {
	local d
	for d in "$KERNEL_MONITORS"/[0-9]*; do
		[ -f "$d/state" ] && [ "$(cat "$d/state")" = on ] && echo "$d"
	done
	return 0
}

# set_kernel_monitors on|off DIR...: starts or stops those monitors (root only); their
# settings stay in sysfs, so "on" resumes them as they were.
set_kernel_monitors() {
	local state=$1 d
	shift
	for d in "$@"; do
		[ "$(cat "$d/state")" = "$state" ] || echo "$state" >"$d/state"
	done
}

# Prints the machine, then waits up to $1 seconds for it to be idle, and says whether the
# figures that follow were taken on an idle machine. $2: more to print about the machine.
check_machine() {
	local wait_idle=$1 busy waited=0
	echo "== machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'),"\
		"$(uname -sr),${2:+ $2,} $(date -u '+%Y-%m-%d %H:%M UTC')"
	busy=$(cpu_busy 2)
	while [ "$busy" -gt 15 ] && [ $waited -lt "$wait_idle" ]; do
		[ $waited = 0 ] && echo "== the machine is ${busy}% busy; waiting up to ${wait_idle} s for it to be idle"
		sleep 3
		waited=$((waited + 5))
		busy=$(cpu_busy 2)
	done
	if [ "$busy" -gt 15 ]; then
		echo "== WARNING: the machine is ${busy}% busy before the runs; the figures below are not clean. Busiest:"
		ps -eo pcpu,pid,comm --sort=-pcpu | sed -n '2,6p' | sed 's/^/     /'
	else
		echo "== machine idle before the runs (${busy}% busy)"
	fi
}

# Two ports (KMIP, Raft) free on 127.0.0.1-3, with Raft + 1 (the peer channel) free too;
# below Linux's ephemeral range.
free_ports() {
	python3 - <<'PY'
import random, socket
def free(port):
    for host in ("127.0.0.1", "127.0.0.2", "127.0.0.3"):
        s = socket.socket()
        try:
            s.bind((host, port))
        except OSError:
            return False
        finally:
            s.close()
    return True
while True:
    kmip, raft = random.randint(20000, 32000), random.randint(20000, 32000)
    if abs(kmip - raft) > 1 and free(kmip) and free(raft) and free(raft + 1):
        print(kmip, raft)
        break
PY
}

wait_ready() { # LOG PID NAME: returns once LOG says "ready"; exits if PID ends first
	for _ in $(seq 600); do
		grep -qx ready "$1" && return 0
		if ! kill -0 "$2" 2>/dev/null; then
			echo "$ME: $3 exited before it was ready; the end of $1:" >&2
			tail -n 20 "$1" | sed 's/^/    /' >&2
			exit 1
		fi
		sleep 0.1
	done
	echo "$ME: $3 did not print \"ready\" within 60 s" >&2
	exit 1
}

LEADER_RE='raft: (this node \([0-9]+\)|node [0-9]+ at [^ ]+) is the leader'

# The leader as every node sees it (the last leader line of each node's log), once they
# all agree; empty before.
leader() {
	local i line id agreed=
	for i in 1 2 3; do
		line=$(grep -E "$LEADER_RE" "$TMP/node$i.log" | tail -n 1) || return 0
		id=$(sed -E 's/.*raft: (this node \(([0-9]+)\)|node ([0-9]+) at).*/\2\3/' <<<"$line")
		[ -z "$agreed" ] || [ "$agreed" = "$id" ] || return 0
		agreed=$id
	done
	printf '%s' "$agreed"
}

# admin_args KMIPD HOST: "--admin.listen HOST:0" (any free port) for a kmipd that has an
# admin API, nothing for an older one (--build comparisons): nodes that share an address
# must not all take port 9696.
admin_args() {
	if "$1" --help 2>/dev/null | grep -q 'admin\.'; then
		printf -- '--admin.listen\n%s:0\n' "$2"
	fi
}

# BUILD FILE...: prints BUILD as an absolute path once every FILE under it is executable;
# exits naming the first that is not (the caller's $ME first).
built() {
	local dir=$1 f
	shift
	dir=$(cd "$dir" && pwd)
	for f in "$@"; do
		[ -x "$dir/$f" ] || { echo "$ME: $dir/$f is missing: run make first" >&2; exit 1; }
	done
	echo "$dir"
}
