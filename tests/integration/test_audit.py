"""The audit trail: one JSON line per KMIP batch item, never key material, reopened on
SIGHUP for log rotation."""
import json
import os
import signal
import time

import pytest
from kmip import enums

from node import Node


def read_events(path, expect, timeout=5):
    """The audit file's events once it holds at least @expect of them (workers flush at
    the end of each loop turn)."""
    deadline = time.monotonic() + timeout
    while True:
        lines = path.read_text().splitlines() if path.exists() else []
        if len(lines) >= expect or time.monotonic() > deadline:
            return [json.loads(line) for line in lines]
        time.sleep(0.05)


@pytest.fixture
def audited(build, tmp_path):
    path = tmp_path / "audit.log"
    n = Node(build, tmp_path / "node", ["--audit.file", str(path)]).start()
    yield n, path
    if n.proc is not None:
        assert n.stop() == 0, n.stderr()


def test_every_item_is_one_json_line_without_key_material(audited):
    node, path = audited
    with node.pykmip() as c:
        uid = c.create(enums.CryptographicAlgorithm.AES, 256)
        key = c.get(uid).value
        c.activate(uid)
        with pytest.raises(Exception):
            c.get("00000000-0000-0000-0000-000000000000")
    events = read_events(path, 4)
    assert [e["operation"] for e in events] == ["Create", "Get", "Activate", "Get"]
    for e in events:
        assert e["kind"] == "kmip"
        assert e["node"] == 1
        assert e["tenant"] == "default" and e["client"] == "dev-client"
        assert len(e["cert"]) == 64 and int(e["cert"], 16) >= 0
        assert e["source"].startswith("127.0.0.1:")
        assert e["time"].endswith("Z")
    create, get, activate, missing = events
    assert create["uid"] == get["uid"] == activate["uid"] == uid
    assert [create["result"], get["result"], activate["result"]] == ["ok"] * 3
    assert "reason" not in get and "message" not in get
    assert missing["result"] == "failed"
    assert missing["reason"] == "Item Not Found"
    assert missing["uid"] == "00000000-0000-0000-0000-000000000000"
    assert "no object with Unique Identifier" in missing["message"]
    # One connection, one correlation id per message.
    assert len({e["correlation"] for e in events}) == 4
    # The key itself, in any form a line could carry it, is nowhere.
    raw = path.read_bytes()
    for form in (key, key.hex().encode(), key.hex().upper().encode()):
        assert form not in raw
    import base64
    assert base64.b64encode(key) not in raw


def test_a_batch_is_one_line_per_item_with_one_correlation(audited):
    node, path = audited
    with node.pykmip() as c:
        uid = c.create(enums.CryptographicAlgorithm.AES, 256)
    import ttlv
    from node import exchange
    # vCenter's three-item Add Attribute message
    items = [(ttlv.OP["ADD_ATTRIBUTE"], [ttlv.uid(uid), ttlv.attribute(name, ttlv.TEXT, v)],
              b"QLKC" + i.to_bytes(4, "little"))
             for i, (name, v) in enumerate([("x-Product_Version", "8.0.3"),
                                            ("x-Vendor", "VMware, Inc."),
                                            ("x-Product", "VMware vSphere")], 1)]
    with node.connect() as s:
        _, out = ttlv.results(exchange(s, ttlv.request(items)))
    assert [r["status"] for r in out] == [0, 0, 0]
    events = read_events(path, 4)
    batch = events[1:]
    assert [e["operation"] for e in batch] == ["Add Attribute"] * 3
    assert len({e["correlation"] for e in batch}) == 1
    assert all(e["uid"] == uid and e["result"] == "ok" for e in batch)


def test_sighup_reopens_the_file_after_rotation(audited):
    node, path = audited
    with node.pykmip() as c:
        c.create(enums.CryptographicAlgorithm.AES, 256)
    assert len(read_events(path, 1)) == 1
    rotated = path.with_suffix(".1")
    os.rename(path, rotated)
    node.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 5
    while "audit: reopened" not in node.stderr() and time.monotonic() < deadline:
        time.sleep(0.05)
    with node.pykmip() as c:
        c.create(enums.CryptographicAlgorithm.AES, 256)
    events = read_events(path, 1)
    assert len(events) == 1 and events[0]["operation"] == "Create"
    assert len(read_events(rotated, 1)) == 1
    assert oct(path.stat().st_mode & 0o777) == "0o600"


def test_an_unwritable_audit_file_stops_the_start_with_a_reason(build, tmp_path):
    n = Node(build, tmp_path / "node", ["--audit.file", str(tmp_path / "no" / "such" / "a")])
    with pytest.raises(RuntimeError) as e:
        n.start()
    assert "audit file" in str(e.value) and "No such file or directory" in str(e.value)
