"""Every operation through PyKMIP's client against a real node: the lifecycle, errors a
user sees, tenants, restarts, and key material at rest."""
import pathlib
import subprocess
import time

import pytest
from kmip.core import enums
from kmip.pie import exceptions, objects

import ttlv
from node import exchange
from ttlv import ENUM, TEXT, OP, T, item


@pytest.fixture
def client(shared_node):
    c = shared_node.pykmip()
    c.open()
    yield c
    c.close()


def second_tenant_client(node, kmipctl, tmp_path, tenant="globex", name="app"):
    out = tmp_path / f"{tenant}-{name}"
    out.mkdir(exist_ok=True)
    done = kmipctl("--data-dir", str(node.data_dir), "issue-client", "--tenant", tenant,
                   "--name", name, "--out", str(out))
    assert done.returncode == 0, done.stderr
    c = node.pykmip(cert=out / f"{name}.pem", key=out / f"{name}-key.pem")
    c.open()
    return c, out


def failure(fn, *args, **kwargs):
    with pytest.raises(exceptions.KmipOperationFailure) as e:
        fn(*args, **kwargs)
    return e.value


def test_create_get_lifecycle(client):
    uid = client.create(enums.CryptographicAlgorithm.AES, 256)
    key = client.get(uid)
    assert isinstance(key, objects.SymmetricKey)
    assert len(key.value) == 32 and key.cryptographic_length == 256
    assert client.get(uid).value == key.value

    attrs = {a.attribute_name.value: a.attribute_value
             for a in client.get_attributes(uid, ["State", "Initial Date"])[1]}
    assert attrs["State"].value == enums.State.PRE_ACTIVE
    client.activate(uid)
    state = client.get_attributes(uid, ["State"])[1][0].attribute_value.value
    assert state == enums.State.ACTIVE

    # An Active key cannot be destroyed.
    err = failure(client.destroy, uid)
    assert err.reason == enums.ResultReason.PERMISSION_DENIED

    client.revoke(enums.RevocationReasonCode.CESSATION_OF_OPERATION, uid)
    state = client.get_attributes(uid, ["State"])[1][0].attribute_value.value
    assert state == enums.State.DEACTIVATED
    client.destroy(uid)
    attrs = {a.attribute_name.value: a.attribute_value
             for a in client.get_attributes(uid)[1]}
    assert attrs["State"].value == enums.State.DESTROYED
    assert "Destroy Date" in attrs
    # Material is gone; metadata stays.
    err = failure(client.get, uid)
    assert err.reason != enums.ResultReason.ITEM_NOT_FOUND


@pytest.mark.parametrize("length", [128, 192, 256])
def test_create_aes_lengths(client, length):
    uid = client.create(enums.CryptographicAlgorithm.AES, length)
    assert len(client.get(uid).value) * 8 == length


def test_create_refuses_what_it_cannot_make(client):
    err = failure(client.create, enums.CryptographicAlgorithm.AES, 100)
    assert err.reason == enums.ResultReason.INVALID_FIELD and "100" in err.message
    err = failure(client.create, enums.CryptographicAlgorithm.HMAC_SHA256, 256)
    assert "AES" in err.message


def test_compromise_revoke_and_destroy(client):
    uid = client.create(enums.CryptographicAlgorithm.AES, 256)
    client.activate(uid)
    client.revoke(enums.RevocationReasonCode.KEY_COMPROMISE, uid,
                  revocation_message="laptop stolen",
                  compromise_occurrence_date=int(time.time()) - 3600)
    state = client.get_attributes(uid, ["State"])[1][0].attribute_value.value
    assert state == enums.State.COMPROMISED
    client.destroy(uid)
    state = client.get_attributes(uid, ["State"])[1][0].attribute_value.value
    assert state == enums.State.DESTROYED_COMPROMISED


def test_register_and_get_each_object_type(client):
    sym = objects.SymmetricKey(enums.CryptographicAlgorithm.AES, 128, bytes(range(16)))
    uid = client.register(sym)
    assert client.get(uid).value == bytes(range(16))

    secret = objects.SecretData(b"hunter2-but-longer", enums.SecretDataType.PASSWORD)
    uid = client.register(secret)
    assert client.get(uid).value == b"hunter2-but-longer"

    opaque = objects.OpaqueObject(b"\x00\x01opaque", enums.OpaqueDataType.NONE)
    uid = client.register(opaque)
    assert client.get(uid).value == b"\x00\x01opaque"


def test_get_attribute_list_and_names(client):
    uid = client.create(enums.CryptographicAlgorithm.AES, 256, name="disk-key-1")
    names = client.get_attribute_list(uid)
    for expected in ("Unique Identifier", "Object Type", "State", "Name",
                     "Cryptographic Algorithm", "Cryptographic Length"):
        assert expected in names
    assert len(names) == len(set(names))


def test_locate_by_name_and_paging(client):
    tag = f"locate-{time.time_ns()}"
    uids = [client.create(enums.CryptographicAlgorithm.AES, 256, name=tag) for _ in range(5)]
    from kmip.core.factories import attributes
    f = attributes.AttributeFactory()
    name = f.create_attribute(enums.AttributeType.NAME, tag)
    found = client.locate(attributes=[name])
    assert sorted(found) == sorted(uids)
    # Stable order: pages of two cover everything exactly once.
    pages = [client.locate(attributes=[name], maximum_items=2, offset_items=o)
             for o in (0, 2, 4)]
    assert [len(p) for p in pages] == [2, 2, 1]
    assert sorted(sum(pages, [])) == sorted(uids)


def test_locate_by_state(client):
    uid = client.create(enums.CryptographicAlgorithm.AES, 128)
    client.activate(uid)
    from kmip.core.factories import attributes
    f = attributes.AttributeFactory()
    found = client.locate(attributes=[f.create_attribute(enums.AttributeType.STATE,
                                                         enums.State.ACTIVE)])
    assert uid in found
    found = client.locate(attributes=[f.create_attribute(enums.AttributeType.STATE,
                                                         enums.State.PRE_ACTIVE)])
    assert uid not in found


def test_modify_and_delete_custom_attribute_raw(shared_node):
    with shared_node.connect() as s:
        _, (out,) = ttlv.results(exchange(s, ttlv.request([(OP["CREATE"], [
            item(T["OBJECT_TYPE"], ENUM, 2),
            item(T["TEMPLATE_ATTRIBUTE"], ttlv.STRUCTURE, [
                ttlv.attribute("Cryptographic Algorithm", ENUM, 3),
                ttlv.attribute("Cryptographic Length", ttlv.INTEGER, 256)])], None)])))
        uid = ttlv.find(out["payload"], "UNIQUE_IDENTIFIER")[2]

        def one(op, payload):
            return ttlv.results(exchange(s, ttlv.request([(op, payload, None)])))[1][0]

        # Custom attributes of any type.
        assert one(OP["ADD_ATTRIBUTE"], [ttlv.uid(uid), ttlv.attribute("x-count", ttlv.INTEGER,
                                                                       7)])["status"] == 0
        out = one(OP["MODIFY_ATTRIBUTE"],
                  [ttlv.uid(uid), ttlv.attribute("x-count", ttlv.INTEGER, 8)])
        assert out["status"] == 0, out
        assert ttlv.find(out["payload"], "ATTRIBUTE", "ATTRIBUTE_VALUE")[2] == 8
        out = one(OP["DELETE_ATTRIBUTE"],
                  [ttlv.uid(uid), item(T["ATTRIBUTE_NAME"], TEXT, "x-count")])
        assert out["status"] == 0, out
        out = one(OP["DELETE_ATTRIBUTE"],
                  [ttlv.uid(uid), item(T["ATTRIBUTE_NAME"], TEXT, "x-count")])
        assert out["status"] == 1 and "x-count" in out["message"]
        # y- attributes belong to the server.
        out = one(OP["ADD_ATTRIBUTE"], [ttlv.uid(uid), ttlv.attribute("y-mine", TEXT, "no")])
        assert out["status"] == 1 and out["message"]


def test_tenants_cannot_see_each_other(shared_node, client, kmipctl, tmp_path):
    uid = client.create(enums.CryptographicAlgorithm.AES, 256, name="acme-secret")
    other, _ = second_tenant_client(shared_node, kmipctl, tmp_path)
    try:
        for op in (other.get, other.activate, other.destroy, other.get_attribute_list):
            err = failure(op, uid)
            assert err.reason == enums.ResultReason.ITEM_NOT_FOUND, op
        err = failure(other.get_attributes, uid, ["State"])
        assert err.reason == enums.ResultReason.ITEM_NOT_FOUND
        err = failure(other.revoke, enums.RevocationReasonCode.KEY_COMPROMISE, uid)
        assert err.reason == enums.ResultReason.ITEM_NOT_FOUND
        from kmip.core.factories import attributes
        f = attributes.AttributeFactory()
        assert other.locate(attributes=[f.create_attribute(enums.AttributeType.NAME,
                                                           "acme-secret")]) == []
        assert uid not in other.locate()
        # Its own keys work.
        own = other.create(enums.CryptographicAlgorithm.AES, 128)
        assert len(other.get(own).value) == 16
        assert failure(client.get, own).reason == enums.ResultReason.ITEM_NOT_FOUND
    finally:
        other.close()
    # The first tenant is untouched.
    assert client.get_attributes(uid, ["State"])[1][0].attribute_value.value == \
        enums.State.PRE_ACTIVE


def test_restart_keeps_everything(node):
    c = node.pykmip()
    c.open()
    uids = [c.create(enums.CryptographicAlgorithm.AES, 256) for _ in range(20)]
    keys = {u: c.get(u).value for u in uids}
    c.activate(uids[0])
    c.close()
    assert node.stop() == 0
    node.start()
    c = node.pykmip()
    c.open()
    try:
        for u in uids:
            assert c.get(u).value == keys[u]
        assert c.get_attributes(uids[0], ["State"])[1][0].attribute_value.value == \
            enums.State.ACTIVE
    finally:
        c.close()


def test_kill_minus_9_loses_nothing_acknowledged(node):
    c = node.pykmip()
    c.open()
    uids = [c.create(enums.CryptographicAlgorithm.AES, 256) for _ in range(50)]
    keys = {u: c.get(u).value for u in uids}
    c.close()
    node.kill()
    node.start()
    c = node.pykmip()
    c.open()
    try:
        for u in uids:
            assert c.get(u).value == keys[u]
    finally:
        c.close()


def test_no_key_material_in_data_directory_files(node):
    c = node.pykmip()
    c.open()
    keys = [c.get(c.create(enums.CryptographicAlgorithm.AES, 256)).value for _ in range(30)]
    sym = objects.SymmetricKey(enums.CryptographicAlgorithm.AES, 256, b"K" * 32)
    c.register(sym)
    c.close()
    assert node.stop() == 0
    blobs = [p.read_bytes() for p in pathlib.Path(node.data_dir).rglob("*") if p.is_file()]
    assert blobs
    for key in keys + [b"K" * 32]:
        for half in (key[:16], key[16:]):
            assert not any(half in b for b in blobs)
    log = node.log_path.read_bytes()
    for key in keys:
        assert key.hex().encode() not in log and key[:16] not in log
