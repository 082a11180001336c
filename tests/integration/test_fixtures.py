"""The PyKMIP fixtures in tests/fixtures/pykmip: still what PyKMIP encodes today, and every
one readable by `kmipctl ttlv decode`. (tests/unit/test_fixtures.c checks that kmipd's
codec reproduces them byte for byte and parses the requests.)"""
import importlib.util
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
GENERATOR = FIXTURES / "gen_pykmip.py"
COMMITTED = FIXTURES / "pykmip"


def load_generator():
    spec = importlib.util.spec_from_file_location("gen_pykmip", GENERATOR)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


GEN = load_generator()
NAMES = sorted(GEN.FIXTURES)


def test_there_are_requests_and_responses():
    kinds = [GEN.FIXTURES[name][0] for name in NAMES]
    assert kinds.count(True) >= 10 and kinds.count(False) >= 10
    assert sorted(p.stem for p in COMMITTED.glob("*.hex")) == NAMES


def test_regenerated_fixtures_equal_the_committed_ones(tmp_path):
    done = subprocess.run([sys.executable, str(GENERATOR), str(tmp_path)],
                          capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr.decode()
    fresh = sorted(p.name for p in tmp_path.iterdir())
    assert fresh == sorted(p.name for p in COMMITTED.glob("*.hex"))
    changed = [name for name in fresh
               if (tmp_path / name).read_bytes() != (COMMITTED / name).read_bytes()]
    assert not changed, (
        f"PyKMIP now encodes {changed} differently from the committed fixtures: look at "
        f"the difference, then rerun {GENERATOR.relative_to(ROOT)} if it is sound")


@pytest.mark.parametrize("name", NAMES)
def test_fixture_format(name):
    text = (COMMITTED / f"{name}.hex").read_text()
    assert text.endswith("\n") and text.count("\n") == 1
    body = text[:-1]
    assert body == body.lower() and len(body) % 2 == 0
    data = bytes.fromhex(body)
    # One TTLV structure whose length covers the rest of the message.
    assert data[3] == 0x01 and int.from_bytes(data[4:8], "big") == len(data) - 8


@pytest.mark.parametrize("name", NAMES)
def test_kmipctl_decodes_every_fixture(kmipctl, name):
    request, operations, _ = GEN.FIXTURES[name]
    done = kmipctl("ttlv", "decode", str(COMMITTED / f"{name}.hex"))
    assert done.returncode == 0, done.stderr.decode()
    text = done.stdout.decode()
    first = "Request Message (Structure)" if request else "Response Message (Structure)"
    assert text.startswith(first), text
    for op in operations:
        label = op.name.replace("_", " ").title()
        expected = f"Operation (Enumeration): {label} (0x{op.value:08X})"
        assert expected in text, text
    assert text.count("Batch Item (Structure)") == len(operations), text
