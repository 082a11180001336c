#!/usr/bin/env bash
# A kmipd cluster of N nodes, each in its own network namespace, for real partition tests:
# node I is 10.96.0.I in namespace kmipd-I, linked by a veth pair to the bridge kmipd-br0 in
# the root namespace, which has 10.96.0.254. Needs root. See --help and cluster/README.md.
set -euo pipefail

SELF=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")
KIND=netns
NET=10.96.0
BRIDGE=kmipd-br0
HOST_ADDR=$NET.254

node_host() { printf '%s.%s' "$NET" "$1"; }
netns_name() { printf 'kmipd-%s' "$1"; }
veth_name() { printf 'kmipd-v%s' "$1"; } # the root namespace's end, a bridge port

node_exec() {
	local i=$1
	shift
	exec ip netns exec "$(netns_name "$i")" "$@"
}

kind_check() {
	[[ $(id -u) == 0 ]] || die "needs root: it creates network namespaces, a bridge and veth links (try sudo)"
	command -v ip >/dev/null || die "needs ip (apt-get install iproute2)"
}

link_exists() { ip link show "$1" >/dev/null 2>&1; }

# The bridge, and for each node a namespace with lo and eth0 (10.96.0.I/24), its veth peer
# on the bridge. What exists already is kept, so `start` after `down` elsewhere works too.
kind_prepare() {
	local i ns veth route
	route=$(ip -4 route show "$NET.0/24" 2>/dev/null || true)
	if [[ -n $route && $route != *"dev $BRIDGE "* ]]; then
		die "$NET.0/24 is already routed here ($route); netns.sh needs it for the cluster"
	fi
	if ! link_exists "$BRIDGE"; then
		ip link add "$BRIDGE" type bridge
		ip addr add "$HOST_ADDR/24" dev "$BRIDGE"
	fi
	ip link set "$BRIDGE" up
	for ((i = 1; i <= NODES; i++)); do
		ns=$(netns_name "$i") veth=$(veth_name "$i")
		[[ -e /run/netns/$ns ]] || ip netns add "$ns"
		ip -n "$ns" link set lo up
		if ! link_exists "$veth"; then
			ip -n "$ns" link del eth0 2>/dev/null || true
			ip link add "$veth" type veth peer name eth0 netns "$ns"
			ip -n "$ns" addr add "$(node_host "$i")/24" dev eth0
		fi
		ip link set "$veth" master "$BRIDGE"
		ip link set "$veth" up
		ip -n "$ns" link set eth0 up
	done
}

kind_node_note() {
	local veth flags
	veth=$(veth_name "$1")
	if ! link_exists "$veth"; then
		printf 'no network'
		return
	fi
	flags=$(ip -o link show "$veth" | sed -n 's/^[^<]*<\([^>]*\)>.*/\1/p')
	[[ ,$flags, == *,UP,* ]] || printf 'partitioned'
}

kind_teardown() {
	local i
	for ((i = 1; i <= NODES; i++)); do
		# Deleting the namespace deletes its veth pair too, but the kernel does that
		# after `ip netns del` returns: the pair may vanish between the check and the
		# delete, which must not stop the teardown before the bridge goes.
		[[ ! -e /run/netns/$(netns_name "$i") ]] || ip netns del "$(netns_name "$i")"
		! link_exists "$(veth_name "$i")" || ip link del "$(veth_name "$i")" 2>/dev/null || true
	done
	! link_exists "$BRIDGE" || ip link del "$BRIDGE"
	say "removed the namespaces kmipd-1..$NODES and the bridge $BRIDGE"
}

# partition NODE: the bridge end of its veth link goes down. The node then reaches neither
# the other nodes nor the root namespace (only itself, from inside its namespace).
cmd_partition() {
	local i=${1:-}
	load_env
	check_node_arg "$i"
	kind_check
	link_exists "$(veth_name "$i")" || die "node $i has no network: use up or start"
	ip link set "$(veth_name "$i")" down
	say "node $i ($(node_host "$i")) is cut off: $(veth_name "$i") is down; \`heal\` brings it back"
}

cmd_heal() {
	local i
	load_env
	kind_check
	for ((i = 1; i <= NODES; i++)); do
		if link_exists "$(veth_name "$i")"; then
			ip link set "$(veth_name "$i")" up
		fi
	done
	say "every node's link is up"
}

kind_command() {
	local cmd=$1
	shift
	case $cmd in
	partition) cmd_partition "$@" ;;
	heal) cmd_heal ;;
	*) return 2 ;;
	esac
}

kind_usage() {
	cat <<'EOF'
usage: cluster/netns.sh [--dir DIR] [options] SUBCOMMAND [ARGS]        (as root)

A kmipd cluster with one network namespace per node: node I runs in namespace kmipd-I as
10.96.0.I (eth0, a veth pair whose other end kmipd-vI is a port of the bridge kmipd-br0 in
the root namespace, which has 10.96.0.254). From the root namespace every node answers on
10.96.0.I:PORT. Dev mode, one PKI (DIR/pki, the server certificate names 10.96.0.1..N) and
one local root key (DIR/root.key) shared by every node. One such cluster per machine.

subcommands
  up [N] [-- KMIPD_ARGS]  make the network, start N nodes (1..9, default 3), return once every
                          node serves KMIP (60 s at most); without --dir, a new directory
                          under /tmp, printed
  status                  each node: ready, starting or stopped, pid, address, "partitioned" if its
                          link is down, its last log line about the leader; exit 3 if one is down
  stop                    SIGTERM every node, wait, report exit statuses (the network stays)
  kill NODE               SIGKILL node NODE
  start NODE              start node NODE again with the same flags
  partition NODE          set kmipd-vNODE down: the node reaches no other node and is not
                          reachable from the root namespace (clients can still reach it from
                          inside: ip netns exec kmipd-NODE ...)
  heal                    set every node's link up again
  down                    stop (SIGKILL what will not stop), delete the namespaces and the
                          bridge, and delete DIR if `up` made it
  foreground [N]          `up`, then every node's log prefixed "[node I]" until Ctrl-C

options
  --dir DIR          the cluster's directory (required after `up`)
  --port P           KMIP port (default 5696)
  --raft-port R      Raft port (default 7696; R+1 is the peer channel)
  --log-level LEVEL  debug, info, warn or error (default info)

kmipd binary: $KMIPD, else build/kmipd of this repository.
EOF
}

# shellcheck source=cluster/lib.sh
. "$(dirname "$SELF")/lib.sh"

main "$@"
