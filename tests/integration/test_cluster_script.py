"""cluster/local.sh: a 3-node loopback cluster in the background, driven as a user would."""
import os
import pathlib
import socket
import subprocess
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "cluster" / "local.sh"
HOSTS = ["127.0.0.1", "127.0.0.2", "127.0.0.3"]


def ports_free(*ports):
    for host in HOSTS:
        for port in ports:
            with socket.socket() as s:
                try:
                    s.bind((host, port))
                except OSError:
                    return False
    return True


def free_ports():
    """A KMIP port and a Raft port (whose successor, the peer channel, is free too) that
    are free on 127.0.0.1-3."""
    for _ in range(100):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port < 65000 and ports_free(port, port + 1, port + 2):
            return port, port + 1
    pytest.skip("no free ports")


@pytest.fixture
def cluster(build, tmp_path):
    directory = tmp_path / "cluster"  # does not exist yet: `down` may remove it
    kmip_port, raft_port = free_ports()
    env = dict(os.environ, KMIPD=str(build / "kmipd"))

    def run(*args, timeout=90):
        return subprocess.run([str(SCRIPT), "--dir", str(directory), *args], env=env,
                              capture_output=True, text=True, timeout=timeout)

    run.dir = directory
    run.kmip_port = kmip_port
    run.raft_port = raft_port
    yield run
    if (directory / "cluster.env").exists():
        run("down")


def client(directory, host, port):
    from kmip.pie.client import ProxyKmipClient
    pki = directory / "pki"
    c = ProxyKmipClient(hostname=host, port=port, cert=str(pki / "client.pem"),
                        key=str(pki / "client-key.pem"), ca=str(pki / "ca.pem"),
                        config_file="/dev/null")
    c.open()
    return c


def create(cluster, node):
    from kmip import enums
    c = client(cluster.dir, f"127.0.0.{node}", cluster.kmip_port)
    try:
        return c.create(enums.CryptographicAlgorithm.AES, 256)
    finally:
        c.close()


def get(cluster, node, uid):
    c = client(cluster.dir, f"127.0.0.{node}", cluster.kmip_port)
    try:
        return c.get(uid).value
    finally:
        c.close()


def eventually(what, timeout):
    """what() once it stops raising, within @timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return what()
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_up_status_failover_restart_down(cluster):
    started = time.monotonic()
    up = cluster("--port", str(cluster.kmip_port), "--raft-port", str(cluster.raft_port),
                 "up", "3")
    assert up.returncode == 0, up.stdout + up.stderr
    for node in (1, 2, 3):
        assert f"node {node} serves KMIP on 127.0.0.{node}:{cluster.kmip_port}" in up.stdout
    for name in ("ca.pem", "client.pem", "client-key.pem"):
        assert (cluster.dir / "pki" / name).exists()
    env = (cluster.dir / "cluster.env").read_text()
    assert f"NODES=3\nPORT={cluster.kmip_port}\nRAFT_PORT={cluster.raft_port}\n" in env

    status = cluster("status")
    assert status.returncode == 0, status.stdout + status.stderr
    rows = [line.split() for line in status.stdout.splitlines()[2:]]
    assert [(r[0], r[1], r[3]) for r in rows] == [
        (str(n), "ready", f"127.0.0.{n}:{cluster.kmip_port}") for n in (1, 2, 3)]

    # Written through node 2, read through the others at once.
    uid = create(cluster, 2)
    material = get(cluster, 2, uid)
    assert len(material) == 32
    assert get(cluster, 1, uid) == material
    assert get(cluster, 3, uid) == material

    # Node 1 killed: writes through node 2 work again within 10 s.
    killed = cluster("kill", "1")
    assert killed.returncode == 0, killed.stdout + killed.stderr
    status = cluster("status")
    assert status.returncode == 3
    assert status.stdout.splitlines()[2].split()[1] == "stopped"
    assert "SIGKILL" in status.stdout.splitlines()[2]
    t0 = time.monotonic()
    uid2 = eventually(lambda: create(cluster, 2), timeout=10)
    assert time.monotonic() - t0 < 10
    material2 = get(cluster, 3, uid2)

    # Node 1 back: it serves the old key and catches up with the one made without it.
    started_again = cluster("start", "1")
    assert started_again.returncode == 0, started_again.stdout + started_again.stderr
    assert get(cluster, 1, uid) == material
    assert eventually(lambda: get(cluster, 1, uid2), timeout=10) == material2

    stop = cluster("stop")
    assert stop.returncode == 0, stop.stdout + stop.stderr
    assert stop.stdout.count("(exit 0)") == 3, stop.stdout
    down = cluster("down")
    assert down.returncode == 0, down.stdout + down.stderr
    assert not cluster.dir.exists()
    assert time.monotonic() - started < 60


def test_down_refuses_a_directory_it_did_not_make(cluster):
    cluster.dir.mkdir()
    (cluster.dir / "precious").write_text("keep me")
    down = cluster("down")
    assert down.returncode != 0
    assert "no cluster.env" in down.stderr
    assert (cluster.dir / "precious").exists()


def test_up_fails_clearly_when_a_node_cannot_start(cluster):
    kmip_port, raft_port = cluster.kmip_port, cluster.raft_port
    # Node 2's Raft port is taken: the script names node 2, shows its log, stops the rest.
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.2", raft_port))
        blocker.listen()
        up = cluster("--port", str(kmip_port), "--raft-port", str(raft_port), "up", "3")
    assert up.returncode == 1
    assert "node 2 exited before it was ready" in up.stderr, up.stderr
    status = cluster("status")
    assert status.returncode == 3
    assert "ready" not in " ".join(l.split()[1] for l in status.stdout.splitlines()[2:])
