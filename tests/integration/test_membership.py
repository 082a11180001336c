"""Membership on real nodes: a node whose data directory is lost rejoins and refills, a new
node joins a running cluster, nodes of different clusters refuse each other, a witness
never serves KMIP and never stays leader."""
import shutil
import socket
import time

import pytest
from kmip.core import enums

from node import Cluster


def client(node):
    c = node.pykmip()
    c.open()
    return c


def create_keys(node, n):
    c = client(node)
    try:
        keys = {}
        for _ in range(n):
            uid = c.create(enums.CryptographicAlgorithm.AES, 256)
            keys[uid] = c.get(uid).value
        return keys
    finally:
        c.close()


def assert_has(node, keys):
    c = client(node)
    try:
        for uid, value in keys.items():
            assert c.get(uid).value == value
    finally:
        c.close()


def wait_for_log(node, text, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in node.log_path.read_text():
            return
        time.sleep(0.1)
    raise AssertionError(f"{text!r} not in the log of node {node.id}:\n" +
                         node.log_path.read_text()[-3000:])


@pytest.fixture
def stopped_at_end():
    clusters = []
    yield clusters.append
    for c in clusters:
        for rc in c.stop():
            assert rc == 0


def test_wiped_node_rejoins_refills_and_votes(build, tmp_path, stopped_at_end):
    c = Cluster(build, tmp_path / "c", extra_args=["--cluster.snapshot_threshold", "64"])
    stopped_at_end(c)
    c.start()
    keys = create_keys(c.nodes[0], 150)
    wiped = c.nodes[2]
    assert wiped.stop() == 0
    shutil.rmtree(wiped.data_dir)
    keys.update(create_keys(c.nodes[0], 150))

    wiped.start_at(wiped.host, c.kmip_port)
    assert_has(wiped, keys)  # no retries: it serves what the cluster acknowledged
    keys.update(create_keys(wiped, 20))
    wait_for_log(wiped, "joined the cluster as node 3")
    assert any("node 3 has an empty log; removing and adding it again" in
               n.log_path.read_text() for n in c.nodes[:2])

    # It votes again: with one of the other two stopped, it makes the majority.
    other = c.leader()
    if other is wiped:
        other = c.nodes[0]
    assert other.stop() == 0
    survivor = next(n for n in c.nodes if n is not other)
    keys.update(create_keys(survivor, 5))
    assert_has(wiped, keys)


def test_new_node_joins_a_running_cluster(build, tmp_path, stopped_at_end):
    c = Cluster(build, tmp_path / "c")
    stopped_at_end(c)
    c.start()
    keys = create_keys(c.nodes[1], 40)
    # Node 4 is configured with the members it will have; it finds the cluster running
    # and asks the leader to add it.
    new = c.make_node(4, 4)
    c.nodes.append(new)
    new.start_at(new.host, c.kmip_port)
    wait_for_log(new, "joined the cluster as node 4")
    assert_has(new, keys)
    keys.update(create_keys(new, 10))
    assert_has(c.nodes[0], keys)
    # Four voters: losing one leaves a majority of three.
    assert c.nodes[2].stop() == 0
    keys.update(create_keys(new, 5))
    assert_has(c.nodes[1], keys)


def test_nodes_of_different_clusters_refuse_each_other(build, tmp_path, stopped_at_end):
    c = Cluster(build, tmp_path / "c", cluster_id="alpha")
    stopped_at_end(c)
    c.start()
    keys = create_keys(c.nodes[0], 10)
    stray = c.nodes[2]
    assert stray.stop() == 0
    # The same node, now claiming another cluster: it has a log, so it starts Raft at
    # once and talks to the others, who refuse every connection.
    stray.extra_args = [a if a != "alpha" else "beta" for a in stray.extra_args]
    before = len(stray.log_path.read_text())
    stray.start_at(stray.host, c.kmip_port)
    for n in c.nodes[:2]:
        wait_for_log(n, "it belongs to cluster 'beta', this node to cluster 'alpha'")
    wait_for_log(stray, "it belongs to cluster 'alpha', this node to cluster 'beta'")
    keys.update(create_keys(c.nodes[1], 10))  # the real cluster carries on
    assert "is the leader" not in stray.log_path.read_text()[before:]
    assert stray.stop() == 0
    # Back in its own cluster, it catches up.
    stray.extra_args = [a if a != "beta" else "alpha" for a in stray.extra_args]
    stray.start_at(stray.host, c.kmip_port)
    assert_has(stray, keys)


def test_witness_serves_no_kmip_and_never_stays_leader(build, tmp_path, stopped_at_end):
    # The witness times out first, so it is elected first; it must hand leadership over.
    c = Cluster(build, tmp_path / "c", node_args={
        1: ["--cluster.election_timeout_ms", "3000"],
        2: ["--cluster.election_timeout_ms", "3000"],
        3: ["--raft.role", "witness", "--cluster.election_timeout_ms", "300"]})
    stopped_at_end(c)
    c.start()
    witness = c.nodes[2]
    wait_for_log(witness, "this node is a witness; handing leadership to another voter")
    with pytest.raises(OSError):
        socket.create_connection((witness.host, c.kmip_port), timeout=2).close()
    keys = create_keys(c.nodes[0], 20)
    leader = c.leader()
    assert leader is not witness
    # Stop the leader: the witness (fastest to time out) wins again and hands over to
    # the one voter left.
    assert leader.stop() == 0
    remaining = next(n for n in c.nodes[:2] if n is not leader)
    keys.update(create_keys(remaining, 5))
    assert_has(remaining, keys)
    time.sleep(1)
    assert c.leader() is remaining

