"""vCenter's sequences, exactly as reference/VCENTER.md records them: raw TTLV over a new
short TLS connection per task, KMIP 1.1, Discover Versions with an empty payload first."""
import struct

import pytest

import ttlv
from node import exchange
from ttlv import BYTES, ENUM, INTEGER, STRUCTURE, TEXT, OP, T, item

SUCCESS, FAILED = 0, 1
ITEM_NOT_FOUND = 0x01
PRE_ACTIVE, ACTIVE = 1, 2
AES, SYMMETRIC_KEY, RAW = 3, 2, 1


def qlkc(n):
    return b"QLKC" + struct.pack("<I", n)


class Vcenter:
    """One vCenter task: a connection that starts with Discover Versions."""

    def __init__(self, node, cert=None, key=None):
        self.sock = node.connect(cert, key)
        _, out = self.send([(OP["DISCOVER_VERSIONS"], [], None)])
        assert out[0]["status"] == SUCCESS
        versions = ttlv.find_all(out[0]["payload"], "PROTOCOL_VERSION")
        assert [(ttlv.find(v, "PROTOCOL_VERSION_MAJOR")[2],
                 ttlv.find(v, "PROTOCOL_VERSION_MINOR")[2]) for v in versions][3] == (1, 1)

    def send(self, items):
        return ttlv.results(exchange(self.sock, ttlv.request(items)))

    def one(self, operation, payload):
        msg, out = self.send([(operation, payload, qlkc(1))])
        assert len(out) == 1 and out[0]["batch_id"] == qlkc(1)
        return out[0]

    def close(self):
        self.sock.close()


def create_as_vcenter(v):
    template = item(T["TEMPLATE_ATTRIBUTE"], STRUCTURE, [
        ttlv.attribute("Cryptographic Algorithm", ENUM, AES),
        ttlv.attribute("Cryptographic Usage Mask", INTEGER, 12),
        ttlv.attribute("Cryptographic Length", INTEGER, 256)])
    out = v.one(OP["CREATE"], [item(T["OBJECT_TYPE"], ENUM, SYMMETRIC_KEY), template])
    assert out["status"] == SUCCESS, out
    assert ttlv.find(out["payload"], "OBJECT_TYPE")[2] == SYMMETRIC_KEY
    return ttlv.find(out["payload"], "UNIQUE_IDENTIFIER")[2]


def get_attribute(v, uid, name):
    out = v.one(OP["GET_ATTRIBUTES"], [ttlv.uid(uid), item(T["ATTRIBUTE_NAME"], TEXT, name)])
    assert out["status"] == SUCCESS, out
    assert ttlv.find(out["payload"], "UNIQUE_IDENTIFIER")[2] == uid
    return ttlv.find_all(out["payload"], "ATTRIBUTE")


def test_add_and_test_kms(shared_node):
    v = Vcenter(shared_node)
    out = v.one(OP["QUERY"], [item(0x420074, ENUM, 3)])
    assert out["status"] == SUCCESS
    assert ttlv.find(out["payload"], "RESULT_MESSAGE") is None
    vendor = next(c for c in out["payload"][2] if c[0] == 0x42009D)
    assert vendor[2].startswith("kmipd")
    v.close()


def test_new_key_tag_key_use_key(shared_node):
    # New key.
    v = Vcenter(shared_node)
    uid = create_as_vcenter(v)
    v.close()

    # Tag key: absent x- attributes are a success without the attribute.
    v = Vcenter(shared_node)
    for name in ("x-Product_Version", "x-Vendor", "x-Product"):
        assert get_attribute(v, uid, name) == []
    values = [("x-Product_Version", "8.0.3"), ("x-Vendor", "VMware, Inc."),
              ("x-Product", "VMware vSphere")]
    _, out = v.send([(OP["ADD_ATTRIBUTE"], [ttlv.uid(uid), ttlv.attribute(n, TEXT, val)],
                      qlkc(i + 1)) for i, (n, val) in enumerate(values)])
    assert [o["batch_id"] for o in out] == [qlkc(1), qlkc(2), qlkc(3)]
    for o, (name, value) in zip(out, values):
        assert o["status"] == SUCCESS, o
        attr = ttlv.find(o["payload"], "ATTRIBUTE")
        assert ttlv.find(attr, "ATTRIBUTE_NAME")[2] == name
        assert ttlv.find(attr, "ATTRIBUTE_VALUE")[2] == value
        index = ttlv.find(attr, "ATTRIBUTE_INDEX")
        assert index is None or index[2] == 0
    v.close()

    # Use key: Get before Activate.
    v = Vcenter(shared_node)
    out = v.one(OP["GET"], [ttlv.uid(uid)])
    assert out["status"] == SUCCESS, out
    block = ttlv.find(out["payload"], "SYMMETRIC_KEY", "KEY_BLOCK")
    assert ttlv.find(block, "KEY_FORMAT_TYPE")[2] == RAW
    material = ttlv.find(block, "KEY_VALUE", "KEY_MATERIAL")
    assert material[1] == BYTES and len(material[2]) == 32
    assert ttlv.find(block, "CRYPTOGRAPHIC_ALGORITHM")[2] == AES
    assert ttlv.find(block, "CRYPTOGRAPHIC_LENGTH")[2] == 256
    (state,) = get_attribute(v, uid, "State")
    assert ttlv.find(state, "ATTRIBUTE_VALUE")[2] == PRE_ACTIVE
    out = v.one(OP["ACTIVATE"], [ttlv.uid(uid)])
    assert out["status"] == SUCCESS, out
    assert ttlv.find(out["payload"], "UNIQUE_IDENTIFIER")[2] == uid
    v.close()

    # Consumer tag and a second use: the same key bytes, now Active, attributes kept.
    v = Vcenter(shared_node)
    again = v.one(OP["GET"], [ttlv.uid(uid)])
    assert ttlv.find(again["payload"], "SYMMETRIC_KEY", "KEY_BLOCK", "KEY_VALUE",
                     "KEY_MATERIAL")[2] == material[2]
    (state,) = get_attribute(v, uid, "State")
    assert ttlv.find(state, "ATTRIBUTE_VALUE")[2] == ACTIVE
    (vendor,) = get_attribute(v, uid, "x-Vendor")
    assert ttlv.find(vendor, "ATTRIBUTE_VALUE")[2] == "VMware, Inc."
    v.close()


def test_unknown_uid_is_item_not_found(shared_node):
    v = Vcenter(shared_node)
    out = v.one(OP["GET"], [ttlv.uid("00000000-0000-4000-8000-000000000000")])
    assert out["status"] == FAILED and out["reason"] == ITEM_NOT_FOUND
    assert "00000000-0000-4000-8000-000000000000" in out["message"]
    v.close()


def test_same_custom_attribute_twice_gets_next_index(shared_node):
    v = Vcenter(shared_node)
    uid = create_as_vcenter(v)
    _, out = v.send([(OP["ADD_ATTRIBUTE"], [ttlv.uid(uid), ttlv.attribute("x-Name", TEXT, n)],
                      qlkc(i + 1)) for i, n in enumerate(["vm-a", "vm-b"])])
    assert [ttlv.find(ttlv.find(o["payload"], "ATTRIBUTE"), "ATTRIBUTE_INDEX")[2]
            for o in out] == [0, 1]
    attrs = get_attribute(v, uid, "x-Name")
    assert sorted(ttlv.find(a, "ATTRIBUTE_VALUE")[2] for a in attrs) == ["vm-a", "vm-b"]
    v.close()


def test_response_never_carries_attributes_newer_than_1_1(shared_node):
    v = Vcenter(shared_node)
    uid = create_as_vcenter(v)
    out = v.one(OP["GET_ATTRIBUTES"], [ttlv.uid(uid)])
    names = {ttlv.find(a, "ATTRIBUTE_NAME")[2] for a in ttlv.find_all(out["payload"],
                                                                      "ATTRIBUTE")}
    assert {"Unique Identifier", "Object Type", "State", "Cryptographic Algorithm",
            "Cryptographic Length", "Cryptographic Usage Mask", "Initial Date"} <= names
    for newer in ("Original Creation Date", "Sensitive", "Extractable", "Always Sensitive",
                  "Never Extractable", "Key Value Present", "Description", "Comment"):
        assert newer not in names
    v.close()
