"""How the leader groups writes into Raft entries (cluster.batch_hold_ms): a lone write
goes out at once; writes that arrive together share entries, and every one is answered.
The /metrics counters kmipd_raft_entries_appended_total and
kmipd_raft_writes_appended_total show it."""
import re
import subprocess
import time

from node import Cluster, Node


def appended(node):
    status, text = node.admin("GET", "/metrics")
    assert status == 200
    values = {}
    for name in ("entries", "writes"):
        m = re.search(rf"^kmipd_raft_{name}_appended_total (\d+)$", text, re.M)
        assert m, text
        values[name] = int(m.group(1))
    return values["entries"], values["writes"]


def create_key(client):
    from kmip.core import enums
    return client.create(enums.CryptographicAlgorithm.AES, 256)


def bench_creates(build, node, *args):
    """Runs kmip-bench's Creates against @node with @args; its output, once it succeeded."""
    pki = node.pki
    run = subprocess.run(
        [str(build / "bench" / "kmip-bench"), "--ca", str(pki / "ca.pem"),
         "--cert", str(pki / "client.pem"), "--key", str(pki / "client-key.pem"),
         "--host", node.host, "--port", str(node.port), "--mix", "create", *args,
         "--quiet"],
        capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    return run.stdout


def test_a_lone_write_is_not_held_and_goes_in_an_entry_of_its_own(build, tmp_path):
    # A hold of a second: a lone write that waited for it would take that long.
    n = Node(build, tmp_path / "n", ["--cluster.batch_hold_ms", "1000"]).start()
    try:
        entries, writes = appended(n)
        with n.pykmip() as client:
            for _ in range(5):
                start = time.monotonic()
                create_key(client)
                assert time.monotonic() - start < 0.5
        assert appended(n) == (entries + 5, writes + 5)
    finally:
        n.stop()


def test_writes_sent_together_share_entries_and_are_all_answered(build, tmp_path):
    n = Node(build, tmp_path / "n", ["--cluster.batch_hold_ms", "1000"]).start()
    try:
        entries, writes = appended(n)
        out = bench_creates(build, n, "--connections", "32", "--requests", "200")
        assert " ok=200 errors=0 " in out
        new_entries, new_writes = appended(n)
        assert new_writes - writes == 200
        assert new_entries - entries < 100
    finally:
        n.stop()


def test_a_write_through_a_follower_is_answered_without_waiting_for_a_heartbeat(
        build, tmp_path):
    # A follower answers a write once it has applied it, so it has to learn that the entry
    # is committed. With heartbeats half a second apart, a follower that learnt it only
    # from them would answer each of these sequential writes up to half a second late:
    # seconds for the twenty.
    c = Cluster(build, tmp_path / "c", extra_args=[
        "--cluster.heartbeat_ms", "500", "--cluster.election_timeout_ms", "3000"]).start()
    try:
        leader = c.leader()
        follower = next(n for n in c.nodes if n is not leader)
        entries, writes = appended(leader)
        with follower.pykmip() as client:
            start = time.monotonic()
            uids = [create_key(client) for _ in range(20)]
            elapsed = time.monotonic() - start
        print(f"20 writes through a follower: {elapsed:.2f} s")
        assert elapsed < 3, f"20 writes through a follower took {elapsed:.1f} s"
        assert appended(leader) == (entries + 20, writes + 20)
        with leader.pykmip() as client:
            for uid in uids:
                assert len(client.get(uid).value) == 32
    finally:
        c.stop()


def test_a_hold_that_is_not_a_number_of_milliseconds_is_refused(build, tmp_path):
    run = subprocess.run([str(build / "kmipd"), "--dev", "--data-dir", str(tmp_path / "n"),
                          "--cluster.batch_hold_ms", "2s"],
                         capture_output=True, text=True, timeout=30)
    assert run.returncode != 0
    assert "cluster.batch_hold_ms: '2s' is not a number from 0 to 1000" in run.stderr


def test_writes_that_come_while_an_entry_is_in_flight_wait_out_the_hold(build, tmp_path):
    # At a steady rate the next writes arrive while the last entry is still in flight. They
    # are held until batch_hold_ms after that entry was appended, not only until it is
    # applied (a millisecond or two here): otherwise entries follow the round trip, carry a
    # few writes each, and every one of them costs each node a log write and a store commit.
    # 2,000 writes a second for 2 s with a 20-ms hold: about 100 entries. Released when the
    # entry before is applied, the same writes took about 2,400 entries.
    c = Cluster(build, tmp_path / "c", extra_args=["--cluster.batch_hold_ms", "20"]).start()
    try:
        leader = c.leader()
        entries, writes = appended(leader)
        out = bench_creates(build, leader, "--connections", "64", "--rate", "2000",
                            "--duration", "2", "--warmup", "0")
        m = re.search(r"^RESULT .* ok=(\d+) errors=0 ", out, re.M)
        assert m, out
        ok = int(m.group(1))
        assert ok >= 3000, out
        new_entries, new_writes = appended(leader)
        print(f"{ok} writes in {new_entries - entries} entries")
        # Writes still in flight when the run ended were carried but not counted.
        assert ok <= new_writes - writes <= ok + 64
        assert new_entries - entries <= 300
    finally:
        c.stop()
