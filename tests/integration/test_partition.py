"""A real network partition: cluster/netns-selftest.sh puts three nodes in their own
network namespaces, cuts the leader off, checks that the minority refuses writes while
the majority elects a leader and accepts them, heals, and checks that every node
converges. It needs root and network namespaces; where the machine cannot make them it
is skipped with the reason."""
import os
import pathlib
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


def namespaces_available():
    if os.geteuid() != 0:
        return "needs root"
    probe = subprocess.run(["ip", "netns", "add", "kmipd-probe"], capture_output=True)
    if probe.returncode != 0:
        return "cannot create a network namespace: " + probe.stderr.decode().strip()
    subprocess.run(["ip", "netns", "delete", "kmipd-probe"], capture_output=True)
    return None


def test_partitioned_leader_minority_refuses_majority_goes_on_heal_converges(build):
    reason = namespaces_available()
    if reason:
        pytest.skip(reason)
    env = dict(os.environ, KMIPD=str(build / "kmipd"))
    r = subprocess.run(["bash", str(ROOT / "cluster/netns-selftest.sh")], env=env,
                       capture_output=True, timeout=300)
    out = r.stdout.decode() + r.stderr.decode()
    assert r.returncode == 0, out
    assert out.rstrip().endswith("PASS"), out
    checks = [line for line in out.splitlines() if line.startswith(("ok ", "FAIL "))]
    assert len(checks) >= 8 and all(line.startswith("ok ") for line in checks), out
