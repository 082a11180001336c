"""The cluster through the admin API and kmipctl on real nodes: every member's applied index
and lag, leadership handed to a chosen node, a node drained before an upgrade (its port
refuses, its connections close, it stops leading, /readyz says why) and undrained, and a
member removed and added back."""
import json
import socket
import time

from kmip import enums

from node import kmipctl, wait_closed


def leader_id(node, timeout=10, expect=None, other_than=None):
    """The leader @node knows of (once it is @expect, or not @other_than, if given: views
    converge within a heartbeat or two)."""
    deadline = time.monotonic() + timeout
    seen = None
    while time.monotonic() < deadline:
        status, body = node.admin("GET", "/v1/cluster")
        seen = body.get("leader") if status == 200 else None
        if seen and (expect is None or seen == expect) and seen != other_than:
            return seen
        time.sleep(0.1)
    raise AssertionError(f"leader {seen}, expected {expect or 'one'}")


def test_status_shows_every_member_with_its_lag_and_who_is_down(build, cluster):
    with cluster.nodes[0].pykmip() as c:
        for _ in range(5):
            c.create(enums.CryptographicAlgorithm.AES, 256)
    status, body = cluster.nodes[1].admin("GET", "/v1/cluster")
    assert status == 200
    members = {m["id"]: m for m in body["members"]}
    assert sorted(members) == [1, 2, 3]
    assert [m["id"] for m in body["members"] if m["leader"]] == [body["leader"]]
    for m in members.values():
        assert m["reachable"] and m["role"] == "voter"
        assert m["applied_index"] > 0 and 0 <= m["lag"] < 100
    assert members[body["leader"]]["state"] == "leader"
    table = kmipctl(build, cluster.nodes[2], "cluster", "status")
    assert table.returncode == 0, table.stderr
    assert "APPLIED" in table.stdout and "leader" in table.stdout

    down = next(n for n in cluster.nodes if n.id != body["leader"])
    asked = next(n for n in cluster.nodes if n is not down)
    assert down.stop() == 0
    done = kmipctl(build, asked, "cluster", "status", "--json")
    assert done.returncode == 3, done.stderr
    gone = [m for m in json.loads(done.stdout)["members"] if m["id"] == down.id]
    assert gone and gone[0]["reachable"] is False and gone[0]["error"]
    down.start_at(down.host, down.port)


def test_leadership_goes_where_it_is_sent(build, cluster):
    first = leader_id(cluster.nodes[0])
    target = next(n.id for n in cluster.nodes if n.id != first)
    asked = next(n for n in cluster.nodes if n.id not in (first, target))  # forwarded
    done = kmipctl(build, asked, "cluster", "transfer", str(target))
    assert done.returncode == 0, done.stderr
    assert f"handed leadership to node {target}" in done.stdout
    for n in cluster.nodes:
        assert leader_id(n, expect=target) == target
    # Writes go on through every node.
    for n in cluster.nodes:
        with n.pykmip() as c:
            c.create(enums.CryptographicAlgorithm.AES, 128)
    status, body = asked.admin("POST", "/v1/cluster/transfer", {"to": 42})
    assert status == 409 and "not a voting member" in body["error"]


def refuses_connections(node):
    try:
        socket.create_connection((node.host, node.port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


def test_a_drained_node_refuses_kmip_hands_leadership_over_and_comes_back(build, cluster):
    leader = next(n for n in cluster.nodes if n.id == leader_id(cluster.nodes[0]))
    others = [n for n in cluster.nodes if n is not leader]
    with leader.pykmip() as c:
        uid = c.create(enums.CryptographicAlgorithm.AES, 256)
        value = c.get(uid).value
    idle = leader.connect()
    done = kmipctl(build, leader, "cluster", "drain")
    assert done.returncode == 0, done.stderr
    assert "leadership handed over" in done.stdout
    assert wait_closed(idle), "an idle connection of the drained node stayed open"
    idle.close()
    assert refuses_connections(leader)
    status, body = leader.admin("GET", "/readyz", cert=None)
    assert status == 503 and "drained" in body["why"]
    assert leader_id(others[0], other_than=leader.id) != leader.id
    # vCenter's other endpoint serves the key, and writes go on.
    for n in others:
        with n.pykmip() as c:
            assert c.get(uid).value == value
            c.create(enums.CryptographicAlgorithm.AES, 128)
    status, body = others[0].admin("GET", "/v1/cluster")
    assert all(m["reachable"] for m in body["members"])  # drained is not down

    done = kmipctl(build, leader, "cluster", "undrain")
    assert done.returncode == 0, done.stderr
    deadline = time.monotonic() + 5
    while refuses_connections(leader) and time.monotonic() < deadline:
        time.sleep(0.05)
    with leader.pykmip() as c:
        assert c.get(uid).value == value
    assert leader.admin("GET", "/readyz", cert=None)[0] == 200


def test_a_member_is_removed_and_added_back(build, cluster):
    first = leader_id(cluster.nodes[0])
    leaving = next(n for n in cluster.nodes if n.id != first)
    asked = next(n for n in cluster.nodes if n is not leaving)
    done = kmipctl(build, asked, "cluster", "remove", str(leaving.id))
    assert done.returncode == 0, done.stderr
    assert f"node {leaving.id} removed" in done.stdout
    status, body = asked.admin("GET", "/v1/cluster")
    assert sorted(m["id"] for m in body["members"]) == sorted(
        n.id for n in cluster.nodes if n is not leaving)
    again = kmipctl(build, asked, "cluster", "remove", str(leaving.id))
    assert again.returncode == 1 and "is not a member" in again.stderr
    with asked.pykmip() as c:
        c.create(enums.CryptographicAlgorithm.AES, 256)
    done = kmipctl(build, asked, "cluster", "add", f"{leaving.id}@{leaving.raft_address}")
    assert done.returncode == 0, done.stderr
    status, body = asked.admin("GET", "/v1/cluster")
    assert sorted(m["id"] for m in body["members"]) == [1, 2, 3]
    assert all(m["role"] == "voter" for m in body["members"])
    bad = kmipctl(build, asked, "cluster", "add", "nonsense")
    assert bad.returncode == 2
