"""Rotating a tenant's KEK on a 3-node cluster while clients read and write through every
endpoint: new objects sealed under the new KEK at once, the old ones re-sealed in the
background by the leader, the old KEK retired after, no request failing meanwhile, and
every key the same bytes before, during and after, and after a restart of every node."""
import random
import threading
import time

from kmip import enums

from node import kmipctl


def kek(node, tenant):
    status, body = node.admin("GET", f"/v1/tenants/{tenant}")
    assert status == 200, body
    return body["kek"]


def wait_for(what, check, timeout=60):
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


class Load(threading.Thread):
    """Gets of known keys and Creates, round-robin over the nodes, until stopped; every
    failure is kept."""

    def __init__(self, cluster, cert, key, known):
        super().__init__(daemon=True)
        self.cluster, self.cert, self.key, self.known = cluster, cert, key, known
        self.stop = threading.Event()
        self.failures, self.gets, self.creates = [], 0, 0
        self.made = {}

    def run(self):
        clients = [n.pykmip(self.cert, self.key) for n in self.cluster.nodes]
        for c in clients:
            c.open()
        try:
            i = 0
            while not self.stop.is_set():
                c = clients[i % len(clients)]
                i += 1
                try:
                    uid = random.choice(list(self.known))
                    if c.get(uid).value != self.known[uid]:
                        self.failures.append(f"{uid}: different bytes")
                    self.gets += 1
                    if i % 4 == 0:
                        new = c.create(enums.CryptographicAlgorithm.AES, 256)
                        self.made[new] = c.get(new).value
                        self.creates += 1
                except Exception as e:  # every failure is a finding
                    self.failures.append(repr(e))
        finally:
            for c in clients:
                c.close()


def test_rotation_under_load_reseals_everything_and_fails_nothing(build, cluster, tmp_path):
    node = cluster.nodes[0]
    status, body = node.admin("POST", "/v1/tenants", {"name": "rot"})
    assert status == 201, body
    out = tmp_path / "rot"
    done = kmipctl(build, node, "client", "issue", "rot", "app", "--out", str(out))
    assert done.returncode == 0, done.stderr
    cert, key = out / "app.pem", out / "app-key.pem"
    known = {}
    with cluster.nodes[1].pykmip(cert, key) as c:
        for _ in range(300):
            uid = c.create(enums.CryptographicAlgorithm.AES, 256)
            known[uid] = c.get(uid).value
    assert kek(node, "rot")["version"] == 1

    load = Load(cluster, cert, key, known)
    load.start()
    time.sleep(1)
    done = kmipctl(build, cluster.nodes[2], "tenant", "rotate-kek", "rot")
    assert done.returncode == 0, done.stderr
    assert "version 2 is current" in done.stdout
    # A second rotation waits until the first one's old KEK is retired.
    status, body = node.admin("POST", "/v1/tenants/rot/rotate-kek", {})
    assert status == 409 and "still being retired" in body["error"], body
    shown = kmipctl(build, node, "tenant", "show", "rot").stdout
    assert "version 2" in shown

    for n in cluster.nodes:
        wait_for(f"version 1 retired on node {n.id}",
                 lambda n=n: "retiring_version" not in kek(n, "rot"))
        assert kek(n, "rot") ["version"] == 2 and kek(n, "rot")["loaded"]
    time.sleep(1)
    load.stop.set()
    load.join(30)
    assert load.failures == [], load.failures[:5]
    assert load.gets > 100 and load.creates > 10, (load.gets, load.creates)
    logs = "".join(n.stderr() for n in cluster.nodes)
    assert "re-sealing its objects from key-encryption key version 1 to 2" in logs
    assert "version 1 is retired" in logs

    everything = {**known, **load.made}
    for n in cluster.nodes:
        with n.pykmip(cert, key) as c:
            for uid in random.sample(list(everything), 60):
                assert c.get(uid).value == everything[uid]

    # Every node restarts with KEK version 2 alone, and reads every key.
    for n in cluster.nodes:
        assert n.stop() == 0
    cluster.start()
    with cluster.nodes[2].pykmip(cert, key) as c:
        for uid, material in everything.items():
            assert c.get(uid).value == material
    for n in cluster.nodes:
        assert kek(n, "rot")["version"] == 2 and kek(n, "rot")["state"] == "ready"

    # And it rotates again.
    status, body = node.admin("POST", "/v1/tenants/rot/rotate-kek", {})
    assert status == 200 and body["kek_version"] == 3, body
    for n in cluster.nodes:
        wait_for(f"version 2 retired on node {n.id}",
                 lambda n=n: "retiring_version" not in kek(n, "rot"))
    with cluster.nodes[0].pykmip(cert, key) as c:
        for uid in random.sample(list(everything), 30):
            assert c.get(uid).value == everything[uid]


def test_new_commands_wait_until_every_node_can_apply_them(build, tmp_path):
    """A node pinned to command level 2 (as an older kmipd is) holds back the commands
    it could not apply: a rotation is refused with the node named, on every node, and
    goes through once that node is at the current level (4)."""
    from node import Cluster
    c = Cluster(build, tmp_path / "cluster",
                node_args={3: ["--cluster.format_level", "2"]}).start()
    try:
        def rotate(node):
            return node.admin("POST", "/v1/tenants/default/rotate-kek", {})

        # Each node learns the others' levels within a few seconds; until then an
        # unheard member counts as level 2 too.
        time.sleep(3)
        status, body = rotate(c.nodes[0])
        assert status == 409, body
        assert "node 3 is at level 2" in body["error"]
        status, body = rotate(c.nodes[2])
        assert status == 409 and "this node's cluster.format_level is 2" in body["error"]
        status, cluster = c.nodes[0].admin("GET", "/v1/cluster")
        levels = {m["id"]: m.get("format_level") for m in cluster["members"]}
        assert levels == {1: 4, 2: 4, 3: 2}, levels

        node = c.nodes[2]
        assert node.stop() == 0
        node.extra_args = [a for a in node.extra_args
                           if a not in ("--cluster.format_level", "2")]
        node.start_at(node.host, c.kmip_port)
        wait_for("the rotation once node 3 is at level 4",
                 lambda: rotate(c.nodes[0])[0] == 200, timeout=20)
        for n in c.nodes:
            wait_for(f"version 1 retired on node {n.id}",
                     lambda n=n: "retiring_version" not in kek(n, "default"))
            assert kek(n, "default")["version"] == 2
    finally:
        for rc in c.stop():
            assert rc == 0
