"""Membership on real nodes: a node whose data directory is lost rejoins and refills, a new
node joins a running cluster, nodes of different clusters refuse each other, a witness
never serves KMIP and never stays leader."""
import json
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
    c = Cluster(build, tmp_path / "c", extra_args=["--cluster.snapshot_threshold", "64",
                                                   "--cluster.snapshot_trailing", "64"])
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


def test_kmipctl_cluster_status_remove_and_add(build, tmp_path, kmipctl, stopped_at_end):
    c = Cluster(build, tmp_path / "c", cluster_id="ops")
    stopped_at_end(c)
    c.start()
    create_keys(c.nodes[0], 5)
    pki = ["--pki-dir", str(c.pki), "--cluster-id", "ops"]

    def ctl(*args):
        r = kmipctl(*args)
        r.stdout, r.stderr = r.stdout.decode(), r.stderr.decode()
        return r

    def status(node):
        r = ctl("cluster", "status", "--node", node.raft_address, "--json", *pki)
        return r.returncode, json.loads(r.stdout)

    rc, st = status(c.nodes[1])
    assert rc == 0
    assert st["cluster_id"] == "ops" and st["leader_id"] in (1, 2, 3)
    assert sorted(n["id"] for n in st["nodes"]) == [1, 2, 3]
    assert sum(n["state"] == "leader" for n in st["nodes"]) == 1
    assert all(len(n["members"]) == 3 for n in st["nodes"])
    table = ctl("cluster", "status", "--node", c.nodes[0].raft_address, *pki)
    assert table.returncode == 0
    assert "leader node %d" % st["leader_id"] in table.stdout

    # A wrong cluster id is refused by the node.
    r = ctl("cluster", "status", "--node", c.nodes[0].raft_address,
                "--pki-dir", str(c.pki), "--cluster-id", "other")
    assert r.returncode == 1 and "belongs to cluster 'ops', not 'other'" in r.stderr

    # Remove the leader itself: it hands leadership over and the next leader removes it.
    leader = next(n for n in c.nodes if n.id == st["leader_id"])
    r = ctl("cluster", "remove", str(leader.id), "--node", c.nodes[0].raft_address, *pki)
    assert r.returncode == 0, r.stderr
    assert f"node {leader.id} removed" in r.stdout
    rest = [n for n in c.nodes if n is not leader]
    rc, st = status(rest[0])
    assert rc == 0 and sorted(n["id"] for n in st["nodes"]) == sorted(n.id for n in rest)
    create_keys(rest[1], 3)
    # Removing it again is refused with a reason; adding it back makes it a voter.
    r = ctl("cluster", "remove", str(leader.id), "--node", rest[0].raft_address, *pki)
    assert r.returncode == 1 and "is not a member" in r.stderr
    r = ctl("cluster", "add", f"{leader.id}@{leader.raft_address}", "--node",
                rest[0].raft_address, *pki)
    assert r.returncode == 0, r.stderr
    rc, st = status(leader)
    assert rc == 0 and len(st["nodes"]) == 3
    assert all(m["role"] == "voter" for m in st["nodes"][0]["members"])
    # A node that is down shows as unreachable, and the exit status says so.
    assert rest[1].stop() == 0
    rc, st = status(rest[0])
    assert rc == 3
    assert [n["state"] for n in st["nodes"] if n["id"] == rest[1].id] == ["unreachable"]
