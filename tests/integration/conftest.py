"""Shared fixtures: where the build put the programs under test."""
import os
import pathlib
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
BUILD = pathlib.Path(os.environ.get("KMIPD_BUILD", ROOT / "build"))


@pytest.fixture(scope="session")
def build():
    return BUILD


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
