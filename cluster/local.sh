#!/usr/bin/env bash
# A kmipd cluster of N nodes on this machine's loopback: node I on 127.0.0.I. See --help and
# cluster/README.md.
set -euo pipefail

SELF=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")
KIND=local

node_host() { printf '127.0.0.%s' "$1"; }

node_exec() {
	shift
	exec "$@"
}

kind_check() { :; }
kind_prepare() { :; }
kind_node_note() { :; }
kind_teardown() { :; }
kind_command() { return 2; }

kind_usage() {
	cat <<'EOF'
usage: cluster/local.sh [--dir DIR] [options] SUBCOMMAND [ARGS]

A kmipd cluster on loopback: node I listens on 127.0.0.I (KMIP on --port, Raft on
--raft-port, the peer channel on the Raft port + 1), in dev mode with one PKI (DIR/pki) and
one local root key (DIR/root.key) shared by every node.

subcommands
  up [N] [-- KMIPD_ARGS]  start N nodes (1..9, default 3) in the background and return once
                          every node serves KMIP (60 s at most). Without --dir, the data go to
                          a new directory under /tmp, printed. Extra kmipd flags after --
                          (e.g. -- --cluster.election_timeout_ms=500) are kept for `start`.
  status                  each node: ready, starting or stopped, pid, KMIP address, and its
                          last log line about the leader. Exit status 3 if a node is down.
  stop                    SIGTERM every node, wait for each, report its exit status
  kill NODE               SIGKILL node NODE
  start NODE              start node NODE again with the same flags; returns once it serves
  down                    stop (SIGKILL what will not stop), then delete DIR if `up` made it
  foreground [N]          `up`, then every node's log on stdout prefixed "[node I]" until
                          Ctrl-C or SIGTERM, which stop the cluster (`make run`)

options
  --dir DIR          the cluster's directory (required after `up`; cluster.env in it records
                     the node count, ports and kmipd binary)
  --port P           KMIP port of every node (default 5696)
  --raft-port R      Raft port of every node (default 7696; R+1 is the peer channel)
  --log-level LEVEL  debug, info, warn or error (default info)

files in DIR: cluster.env, pki/ (ca.pem, client.pem, client-key.pem, server*.pem), root.key,
nodeI/ (data, pid, exit), nodeI.log (the node's stdout and stderr).
kmipd binary: $KMIPD, else build/kmipd of this repository.
EOF
}

# shellcheck source=cluster/lib.sh
. "$(dirname "$SELF")/lib.sh"

main "$@"
