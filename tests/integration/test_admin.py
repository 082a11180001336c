"""The admin API and kmipctl on a 3-node cluster: who may use it, tenants created and deleted
through any node and seen by every node at once, deletion cutting clients off everywhere,
objects listed without key material, Prometheus metrics, the audit trail of changes."""
import json
import socket
import ssl
import subprocess
import time

import pytest
from kmip import enums

from node import Cluster, kmipctl, wait_closed


@pytest.fixture(scope="module")
def cluster(build, tmp_path_factory):
    base = tmp_path_factory.mktemp("admin")
    c = Cluster(build, base / "cluster",
                extra_args=["--audit.file", str(base / "audit.log")]).start()
    yield c
    for rc in c.stop():
        assert rc == 0


def issue_client(build, cluster, tenant, name, out):
    """A client certificate of the cluster's CA (kmipctl --data-dir D uses D/pki)."""
    done = subprocess.run([str(build / "kmipctl"), "--data-dir", str(cluster.base),
                           "issue-client", "--tenant", tenant, "--name", name,
                           "--out", str(out)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return out / f"{name}.pem", out / f"{name}-key.pem"


def test_health_and_readiness_need_no_certificate(cluster):
    for node in cluster.nodes:
        status, body = node.admin("GET", "/healthz", cert=None)
        assert status == 200 and body["status"] == "ok" and body["node"] == node.id
        status, body = node.admin("GET", "/readyz", cert=None)
        assert status == 200, body
        assert body["ready"] and body["reads"] and body["writes"]
        assert body["leader"] in (1, 2, 3)


def test_only_administrators_reach_the_rest(cluster):
    node = cluster.nodes[0]
    status, body = node.admin("GET", "/v1/tenants", cert=None)
    assert status == 401 and "administrator" in body["error"]
    status, body = node.admin("GET", "/v1/tenants", cert="client")
    assert status == 403 and "does not name an administrator" in body["error"]
    status, body = node.admin("GET", "/metrics", cert="client")
    assert status == 403
    status, body = node.admin("POST", "/v1/tenants", {"name": "sneaky"}, cert="client")
    assert status == 403
    status, body = node.admin("GET", "/v1/tenants", cert="admin")
    assert status == 200 and any(t["name"] == "default" for t in body["tenants"])


def test_a_certificate_of_another_ca_does_not_complete_the_handshake(cluster, tmp_path):
    cert, key = tmp_path / "stranger.pem", tmp_path / "stranger-key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=stranger", "-addext", "subjectAltName=URI:urn:kmipd:admin:root",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    node = cluster.nodes[0]
    with pytest.raises((ssl.SSLError, ConnectionError)):
        node.admin("GET", "/v1/tenants", cert=(cert, key))
    assert node.admin("GET", "/healthz", cert=None)[0] == 200


def test_bad_requests_are_answered_with_a_reason(cluster):
    node = cluster.nodes[1]
    status, body = node.admin("GET", "/v1/nothing")
    assert status == 404 and "no such resource" in body["error"]
    status, body = node.admin("PUT", "/v1/tenants")
    assert status == 405
    status, body = node.admin("POST", "/v1/tenants", {"name": "bad name!"})
    assert status == 400 and "not 1-64 characters" in body["error"]
    status, body = node.admin("POST", "/v1/tenants", {"name": "x", "provider": "vault"})
    assert status == 400 and "is not one of local" in body["error"]
    status, body = node.admin("POST", "/v1/tenants", {"name": "x", "provider": "keyprotect"})
    assert status == 400 and "names its root key" in body["error"]
    status, body = node.admin("POST", "/v1/tenants",
                              {"name": "x", "provider": "hpcs", "root_key_id": "crk-1"})
    assert status == 409 and "not set up for hpcs" in body["error"]
    status, body = node.admin("POST", "/v1/tenants", {"nome": "x"})
    assert status == 400
    status, body = node.admin("POST", "/v1/tenants", {"name": "x", "root_key_id": "crk-1"})
    assert status == 400 and "takes no id" in body["error"]
    status, body = node.admin("DELETE", "/v1/tenants/default")
    assert status == 400 and '"confirm"' in body["error"]
    status, body = node.admin("GET", "/v1/tenants/nobody/objects")
    assert status == 404
    status, body = node.admin("GET", "/v1/tenants/default/objects?state=sleepy")
    assert status == 400 and "State" in body["error"]
    # Malformed HTTP closes that connection only, with a 400 first.
    ctx = ssl.create_default_context(cafile=str(node.pki / "ca.pem"))
    with socket.create_connection((node.host, node.admin_port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            s.sendall(b"GARBAGE\r\n\r\n")
            assert s.recv(200).startswith(b"HTTP/1.1 400")
    assert node.admin("GET", "/healthz", cert=None)[0] == 200


def test_a_tenant_made_through_one_node_exists_on_every_node(build, cluster, tmp_path):
    done = kmipctl(build, cluster.nodes[1], "tenant", "create", "acme")
    assert done.returncode == 0, done.stderr
    assert "tenant acme created" in done.stdout
    for node in cluster.nodes:
        status, body = node.admin("GET", "/v1/tenants/acme")
        assert status == 200, (node.id, body)
        assert body["provider"] == "local" and body["kek"]["loaded"] is True
    again = kmipctl(build, cluster.nodes[2], "tenant", "create", "acme")
    assert again.returncode == 1 and "already exists" in again.stderr
    listing = kmipctl(build, cluster.nodes[0], "tenant", "list", "--json")
    assert listing.returncode == 0
    assert {t["name"] for t in json.loads(listing.stdout)["tenants"]} >= {"default", "acme"}


def test_objects_are_listed_and_filtered_without_material(build, cluster, tmp_path):
    cert, key = issue_client(build, cluster, "objects", "vc01", tmp_path)
    node = cluster.nodes[0]
    with node.pykmip(cert, key) as c:
        uids = [c.create(enums.CryptographicAlgorithm.AES, 256) for _ in range(5)]
        material = {uid: c.get(uid).value for uid in uids}
        c.activate(uids[0])
    # vCenter names its keys with x-Name (raw TTLV: PyKMIP cannot add custom attributes)
    import ttlv
    from node import exchange
    with node.connect(cert, key) as s:
        _, out = ttlv.results(exchange(s, ttlv.request([
            (ttlv.OP["ADD_ATTRIBUTE"], [ttlv.uid(uids[1]),
                                        ttlv.attribute("x-Name", ttlv.TEXT, "vm-07")], None)])))
    assert out[0]["status"] == 0
    for n in cluster.nodes:
        status, body = n.admin("GET", "/v1/tenants/objects/objects")
        assert status == 200 and len(body["objects"]) == 5 and body["next"] is None
    status, body = node.admin("GET", "/v1/tenants/objects/objects?state=Active")
    assert [o["uid"] for o in body["objects"]] == [uids[0]]
    status, body = node.admin("GET", "/v1/tenants/objects/objects?state=pre-active")
    assert len(body["objects"]) == 4
    status, body = node.admin("GET", "/v1/tenants/objects/objects?attribute=x-Name%3Dvm-07")
    assert [o["uid"] for o in body["objects"]] == [uids[1]]
    assert body["objects"][0]["custom"] == {"x-Name": "vm-07"}
    # Pages.
    status, body = node.admin("GET", "/v1/tenants/objects/objects?limit=2")
    assert len(body["objects"]) == 2 and body["next"] == body["objects"][1]["uid"]
    seen = [o["uid"] for o in body["objects"]]
    while body["next"]:
        status, body = node.admin("GET", f"/v1/tenants/objects/objects?limit=2&after={body['next']}")
        seen += [o["uid"] for o in body["objects"]]
    assert sorted(seen) == sorted(uids)
    # One object's attributes; never its material, in any form.
    status, body = node.admin("GET", f"/v1/tenants/objects/objects/{uids[1]}")
    assert status == 200
    attrs = {a["name"]: a["value"] for a in body["attributes"]}
    assert attrs["Cryptographic Algorithm"] == "AES" and attrs["x-Name"] == "vm-07"
    assert attrs["Cryptographic Length"] == 256
    text = json.dumps(body)
    for value in material.values():
        assert value.hex() not in text and value.hex().upper() not in text
    # Another tenant's object is not found through this one.
    status, body = node.admin("GET", f"/v1/tenants/default/objects/{uids[1]}")
    assert status == 404
    table = kmipctl(build, node, "object", "list", "objects", "--attribute", "x-Name=vm-07")
    assert table.returncode == 0 and uids[1] in table.stdout and "vm-07" in table.stdout
    missing = kmipctl(build, node, "object", "show", "objects", "00000000-0000-4000-8000-000000000000")
    assert missing.returncode == 4


def test_deleting_a_tenant_destroys_its_keys_and_cuts_its_clients_off_everywhere(
        build, cluster, tmp_path):
    doomed_cert, doomed_key = issue_client(build, cluster, "doomed", "vc", tmp_path / "d")
    other_cert, other_key = issue_client(build, cluster, "survivor", "vc", tmp_path / "s")
    with cluster.nodes[0].pykmip(doomed_cert, doomed_key) as c:
        doomed_uids = [c.create(enums.CryptographicAlgorithm.AES, 256) for _ in range(3)]
    with cluster.nodes[0].pykmip(other_cert, other_key) as c:
        kept = c.create(enums.CryptographicAlgorithm.AES, 256)
        kept_value = c.get(kept).value
    # Open connections of the doomed tenant on every node, idle between requests.
    open_socks = [n.connect(doomed_cert, doomed_key) for n in cluster.nodes]
    survivor = cluster.nodes[2].pykmip(other_cert, other_key)
    survivor.open()
    try:
        done = kmipctl(build, cluster.nodes[1], "tenant", "delete", "doomed",
                       "--destroy-all-keys")
        assert done.returncode == 0, done.stderr
        assert "3 object(s) destroyed" in done.stdout
        for s in open_socks:
            assert wait_closed(s), "a connection of the deleted tenant stayed open"
        # New connections are refused on every node.
        for n in cluster.nodes:
            with pytest.raises(Exception):
                with n.pykmip(doomed_cert, doomed_key) as c:
                    c.get(doomed_uids[0])
            status, body = n.admin("GET", "/v1/tenants/doomed")
            assert status == 404
        # The other tenant's client, connected all along, goes on.
        assert survivor.get(kept).value == kept_value
    finally:
        survivor.close()
        for s in open_socks:
            s.close()
    # Made again, the tenant is empty: the old keys are gone for good.
    assert kmipctl(build, cluster.nodes[0], "tenant", "create", "doomed").returncode == 0
    status, body = cluster.nodes[2].admin("GET", "/v1/tenants/doomed/objects")
    assert status == 200 and body["objects"] == []
    with cluster.nodes[0].pykmip(doomed_cert, doomed_key) as c:
        from kmip.pie import exceptions
        with pytest.raises(exceptions.KmipOperationFailure):
            c.get(doomed_uids[0])


def test_metrics_parse_as_prometheus_text(cluster):
    from prometheus_client.parser import text_string_to_metric_families
    node = cluster.nodes[0]
    with node.pykmip() as c:
        c.create(enums.CryptographicAlgorithm.AES, 256)
    status, text = node.admin("GET", "/metrics")
    assert status == 200
    families = {f.name: f for f in text_string_to_metric_families(text)}
    for name in ("kmipd_kmip_requests", "kmipd_kmip_request_duration_seconds",
                 "kmipd_tls_handshakes", "kmipd_kmip_connections", "kmipd_raft_term",
                 "kmipd_raft_applied_index", "kmipd_tenant_objects", "kmipd_admin_requests",
                 "kmipd_forwarded_writes", "kmipd_root_key_operations"):
        assert name in families, name
    creates = [s for s in families["kmipd_kmip_requests"].samples
               if s.labels.get("operation") == "Create" and s.labels.get("result") == "ok"]
    assert creates and creates[0].value >= 1
    buckets = [s for s in families["kmipd_kmip_request_duration_seconds"].samples
               if s.name.endswith("_bucket") and s.labels["operation"] == "Create"]
    assert buckets[-1].labels["le"] == "+Inf" and buckets[-1].value >= 1
    assert [s.value for s in buckets] == sorted(s.value for s in buckets)
    tenants = {s.labels["tenant"]: s.value for s in families["kmipd_tenant_objects"].samples}
    assert tenants["default"] >= 1


def test_admin_changes_are_audited(cluster):
    node = cluster.nodes[1]
    status, _ = node.admin("POST", "/v1/tenants", {"name": "audited"})
    assert status == 201
    status, _ = node.admin("POST", "/v1/tenants", {"name": "audited"})
    assert status == 409
    node.admin("POST", "/v1/tenants", {"name": "x"}, cert="client")
    time.sleep(0.3)
    path = str(cluster.base.parent / "audit.log")
    lines = [json.loads(l) for l in open(path).read().splitlines()]
    admin = [l for l in lines if l["kind"] == "admin"]
    made = [l for l in admin if l.get("tenant") == "audited"]
    assert [l["result"] for l in made][-2:] == ["ok", "failed"]
    assert made[-1]["reason"] == "409" and "already exists" in made[-1]["message"]
    assert made[-2]["client"] == "dev-admin" and made[-2]["operation"] == "create tenant"
    refused = [l for l in admin if l.get("reason") == "403"]
    assert refused and "client" not in refused[-1]  # not an administrator
    assert len(refused[-1]["cert"]) == 64
