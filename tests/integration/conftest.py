"""Shared fixtures: where the build put the programs under test."""
import os
import pathlib
import subprocess
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).parent))

ROOT = pathlib.Path(__file__).resolve().parents[2]
BUILD = pathlib.Path(os.environ.get("KMIPD_BUILD", ROOT / "build"))


@pytest.fixture(scope="session")
def build():
    return BUILD


@pytest.fixture
def node(build, tmp_path):
    """A running dev node, stopped (and checked to stop cleanly) after the test."""
    from node import Node
    n = Node(build, tmp_path / "node").start()
    yield n
    if n.proc is not None:
        assert n.stop() == 0, n.stderr()


@pytest.fixture
def cluster(build, tmp_path):
    """A running 3-node cluster, each node stopped (and checked to stop cleanly) after the
    test. Modules that share one cluster between tests define their own."""
    from node import Cluster
    c = Cluster(build, tmp_path / "cluster").start()
    yield c
    for rc in c.stop():
        assert rc == 0


@pytest.fixture(scope="module")
def shared_node(build, tmp_path_factory):
    """One dev node for a whole test module (tests that do not restart it)."""
    from node import Node
    n = Node(build, tmp_path_factory.mktemp("shared") / "node").start()
    yield n
    if n.proc is not None:
        assert n.stop() == 0, n.stderr()


@pytest.fixture(scope="session")
def kmipctl(build):
    path = build / "kmipctl"
    assert path.exists(), f"{path} is missing: run make first"

    def run(*args, input=None):
        return subprocess.run([str(path), *args], input=input, capture_output=True, timeout=30)

    return run


@pytest.fixture(scope="session")
def kmip_process(build):
    """Runs one request through the message layer, returns the response bytes."""
    path = build / "tests" / "tools" / "kmip_process"
    assert path.exists(), f"{path} is missing: run make first"

    def run(request: bytes) -> bytes:
        done = subprocess.run([str(path)], input=request, capture_output=True, timeout=30)
        assert done.returncode == 0, done.stderr.decode()
        return done.stdout

    return run
