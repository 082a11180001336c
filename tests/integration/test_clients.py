"""Client certificates through the admin API and kmipctl on a 3-node cluster: vCenter's
trust flows (a pinned self-signed certificate, an issued certificate and key, a signed CSR,
a tenant's own CA), deletion cutting connections on every node and refusing new ones (a
resumed TLS session included), rotation without losing keys, and refusals with reasons."""
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
    base = tmp_path_factory.mktemp("clients")
    c = Cluster(build, base / "cluster").start()
    for tenant in ("vsphere", "other"):
        status, body = c.nodes[0].admin("POST", "/v1/tenants", {"name": tenant})
        assert status == 201, body
    yield c
    for rc in c.stop():
        assert rc == 0


def openssl(*args):
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def self_signed(dir, name, days=30, ca=False):
    """A self-signed certificate and key, as vCenter makes for itself (no kmipd URI)."""
    cert, key = dir / f"{name}.pem", dir / f"{name}-key.pem"
    ext = ["-addext", "basicConstraints=critical,CA:TRUE",
           "-addext", "keyUsage=critical,keyCertSign,cRLSign"] if ca else \
        ["-addext", "extendedKeyUsage=clientAuth"]
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", str(days),
            "-subj", f"/CN={name}", *ext, "-keyout", str(key), "-out", str(cert))
    return cert, key


def issued_by(dir, name, ca_cert, ca_key, san=None):
    """A leaf issued by the CA (@ca_cert, @ca_key) for clientAuth."""
    key, csr, cert = dir / f"{name}-key.pem", dir / f"{name}.csr", dir / f"{name}.pem"
    openssl("req", "-new", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}",
            "-keyout", str(key), "-out", str(csr))
    ext = dir / f"{name}.ext"
    ext.write_text("extendedKeyUsage=clientAuth\n" + (f"subjectAltName={san}\n" if san else ""))
    openssl("x509", "-req", "-in", str(csr), "-CA", str(ca_cert), "-CAkey", str(ca_key),
            "-CAcreateserial", "-days", "30", "-extfile", str(ext), "-out", str(cert))
    return cert, key


def expired_certificate():
    """A self-signed certificate that expired in 2020, as PEM (openssl req cannot date one)."""
    import datetime
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "old")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(7)
            .not_valid_before(datetime.datetime(2020, 1, 1))
            .not_valid_after(datetime.datetime(2020, 1, 2))
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def fingerprint(cert_path):
    der = subprocess.run(["openssl", "x509", "-in", str(cert_path), "-outform", "DER"],
                         check=True, capture_output=True).stdout
    import hashlib
    return hashlib.sha256(der).hexdigest()


def refused(node, cert, key):
    """True if the node will not serve KMIP to this certificate."""
    try:
        with node.pykmip(cert, key) as c:
            c.create(enums.CryptographicAlgorithm.AES, 128)
    except Exception:
        return True
    return False


def objects_of(node, tenant):
    status, body = node.admin("GET", f"/v1/tenants/{tenant}/objects?limit=1000")
    assert status == 200, body
    return {o["uid"] for o in body["objects"]}


def test_a_pinned_self_signed_certificate_is_its_client_on_every_node(build, cluster, tmp_path):
    cert, key = self_signed(tmp_path, "vcenter-pinned")
    node = cluster.nodes[0]
    assert refused(node, cert, key), "an unknown self-signed certificate was served"
    done = kmipctl(build, cluster.nodes[1], "client", "add", "vsphere", "vcenter", str(cert))
    assert done.returncode == 0, done.stderr
    assert f"pinned certificate {fingerprint(cert)} added" in done.stdout
    uids = []
    for n in cluster.nodes:
        with n.pykmip(cert, key) as c:
            uids.append(c.create(enums.CryptographicAlgorithm.AES, 256))
    for n in cluster.nodes:
        assert set(uids) <= objects_of(n, "vsphere")
        assert not set(uids) & objects_of(n, "other")
    listing = kmipctl(build, node, "client", "list", "vsphere", "--json")
    assert listing.returncode == 0
    clients = {c["client"]: c["certificates"] for c in json.loads(listing.stdout)["clients"]}
    pinned = [c for c in clients["vcenter"] if c["fingerprint"] == fingerprint(cert)]
    assert pinned and pinned[0]["kind"] == "pinned" and "CN = vcenter-pinned" in \
        pinned[0]["subject"].replace("/CN=", "CN = ")
    table = kmipctl(build, node, "client", "show", "vsphere", "vcenter")
    assert table.returncode == 0 and fingerprint(cert) in table.stdout


def test_an_issued_certificate_and_key_work_and_the_key_is_not_kept(build, cluster, tmp_path):
    out = tmp_path / "issued"
    done = kmipctl(build, cluster.nodes[2], "client", "issue", "vsphere", "esxi", "--out",
                   str(out))
    assert done.returncode == 0, done.stderr
    cert, key = out / "esxi.pem", out / "esxi-key.pem"
    assert (key.stat().st_mode & 0o777) == 0o600
    assert (out / "ca.pem").read_text() == (cluster.nodes[0].pki / "ca.pem").read_text()
    for n in cluster.nodes:
        with n.pykmip(cert, key) as c:
            uid = c.create(enums.CryptographicAlgorithm.AES, 256)
        assert uid in objects_of(n, "vsphere")
    status, body = cluster.nodes[0].admin(
        "GET", f"/v1/tenants/vsphere/certificates/{fingerprint(cert)}")
    assert status == 200 and body["kind"] == "issued" and body["client"] == "esxi"
    assert body["pem"].strip() == cert.read_text().strip()
    # The private key was handed out once and is not in the store or any log.
    key_body = "".join(key.read_text().splitlines()[1:-1])[:64]
    for n in cluster.nodes:
        store = (n.data_dir / "store" / "data.mdb").read_bytes()
        assert key_body.encode() not in store
        assert key_body not in n.stderr()


def test_a_csr_made_by_openssl_is_signed_and_connects(build, cluster, tmp_path):
    key, csr = tmp_path / "vc-key.pem", tmp_path / "vc.csr"
    openssl("req", "-new", "-newkey", "rsa:2048", "-nodes", "-subj", "/O=VMware/CN=vcenter",
            "-keyout", str(key), "-out", str(csr))
    cert = tmp_path / "vc.pem"
    done = kmipctl(build, cluster.nodes[1], "client", "sign-csr", "vsphere", "vcenter-csr",
                   str(csr), "--out", str(cert))
    assert done.returncode == 0, done.stderr
    with cluster.nodes[2].pykmip(cert, key) as c:
        uid = c.create(enums.CryptographicAlgorithm.AES, 256)
    assert uid in objects_of(cluster.nodes[0], "vsphere")
    # A request whose signature does not match its key is refused.
    text = csr.read_text().splitlines()
    body = "".join(text[1:-1])
    import base64
    raw = bytearray(base64.b64decode(body))
    raw[-10] ^= 0xff
    bad = text[0] + "\n" + base64.encodebytes(bytes(raw)).decode() + text[-1] + "\n"
    status, answer = cluster.nodes[0].admin(
        "POST", "/v1/tenants/vsphere/clients/x/sign", {"csr": bad})
    assert status == 400 and ("signature" in answer["error"] or "holds no" in answer["error"])


def test_a_tenant_ca_admits_what_it_issues_as_its_client_whatever_names_they_carry(
        build, cluster, tmp_path):
    ca_cert, ca_key = self_signed(tmp_path, "vmca", days=60, ca=True)
    done = kmipctl(build, cluster.nodes[0], "client", "add", "vsphere", "vmca-hosts",
                   str(ca_cert))
    assert done.returncode == 0, done.stderr
    assert "ca certificate" in done.stdout
    # The leaf claims tenant "other" in a kmipd URI: a tenant's CA cannot speak for it.
    leaf, leaf_key = issued_by(tmp_path, "host7", ca_cert, ca_key,
                               san="URI:urn:kmipd:tenant:other:client:evil")
    with cluster.nodes[1].pykmip(leaf, leaf_key) as c:
        uid = c.create(enums.CryptographicAlgorithm.AES, 256)
    assert uid in objects_of(cluster.nodes[1], "vsphere")
    assert uid not in objects_of(cluster.nodes[1], "other")
    # A certificate of another CA with the same subject name is not admitted.
    twin_dir = tmp_path / "twin"
    twin_dir.mkdir()
    twin_ca, twin_ca_key = self_signed(twin_dir, "vmca", days=60, ca=True)
    twin_leaf, twin_leaf_key = issued_by(twin_dir, "host8", twin_ca, twin_ca_key)
    assert refused(cluster.nodes[0], twin_leaf, twin_leaf_key)
    # Deleting the CA refuses its leaves.
    done = kmipctl(build, cluster.nodes[2], "client", "delete", "vsphere", fingerprint(ca_cert))
    assert done.returncode == 0, done.stderr
    for n in cluster.nodes:
        assert refused(n, leaf, leaf_key)


def test_deleting_a_certificate_closes_its_connections_everywhere_and_rotation_keeps_keys(
        build, cluster, tmp_path):
    old_cert, old_key = self_signed(tmp_path, "vc-2025")
    new_cert, new_key = self_signed(tmp_path, "vc-2026")
    peer_cert, peer_key = self_signed(tmp_path, "vc-peer")
    for cert, client in ((old_cert, "rotating"), (new_cert, "rotating"), (peer_cert, "peer")):
        done = kmipctl(build, cluster.nodes[0], "client", "add", "vsphere", client, str(cert))
        assert done.returncode == 0, done.stderr
    with cluster.nodes[0].pykmip(old_cert, old_key) as c:
        uid = c.create(enums.CryptographicAlgorithm.AES, 256)
        value = c.get(uid).value
    # Open, idle connections with the old certificate on every node, and a client of
    # the same tenant with a certificate of its own.
    socks = [n.connect(old_cert, old_key) for n in cluster.nodes]
    peer = cluster.nodes[1].pykmip(peer_cert, peer_key)
    peer.open()
    try:
        done = kmipctl(build, cluster.nodes[2], "client", "delete", "vsphere",
                       fingerprint(old_cert))
        assert done.returncode == 0, done.stderr
        for s in socks:
            assert wait_closed(s), "a connection of the deleted certificate stayed open"
        for n in cluster.nodes:
            assert refused(n, old_cert, old_key)
        # The rotated-to certificate reads the key made with the old one, on every node.
        for n in cluster.nodes:
            with n.pykmip(new_cert, new_key) as c:
                assert c.get(uid).value == value
        assert peer.get(uid).value == value  # connected all along
    finally:
        peer.close()
        for s in socks:
            s.close()


def test_a_deleted_issued_certificate_is_refused_even_on_a_resumed_session(
        build, cluster, tmp_path):
    done = kmipctl(build, cluster.nodes[0], "client", "issue", "vsphere", "resumer", "--out",
                   str(tmp_path))
    assert done.returncode == 0, done.stderr
    cert, key = tmp_path / "resumer.pem", tmp_path / "resumer-key.pem"
    node = cluster.nodes[0]
    ctx = node.tls_context(cert, key)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2  # a session id the server caches
    from node import exchange
    import ttlv
    query = ttlv.request([(ttlv.OP["DISCOVER_VERSIONS"], [], None)])
    with ctx.wrap_socket(socket.create_connection((node.host, node.port), timeout=5),
                         server_hostname="localhost") as s:
        assert ttlv.results(exchange(s, query))[1][0]["status"] == 0
        session = s.session
    with ctx.wrap_socket(socket.create_connection((node.host, node.port), timeout=5),
                         server_hostname="localhost", session=session) as s:
        assert s.session_reused
        assert ttlv.results(exchange(s, query))[1][0]["status"] == 0
    status, _ = node.admin("DELETE", f"/v1/tenants/vsphere/certificates/{fingerprint(cert)}")
    assert status == 200
    with ctx.wrap_socket(socket.create_connection((node.host, node.port), timeout=5),
                         server_hostname="localhost", session=session) as s:
        assert wait_closed(s), "a resumed session outlived its certificate"
    # The cluster CA's signature alone does not bring it back, on any node.
    for n in cluster.nodes:
        assert refused(n, cert, key)
    assert "was deleted" in node.stderr()


def test_bad_uploads_are_refused_with_a_reason(build, cluster, tmp_path):
    node = cluster.nodes[1]
    cert, key = self_signed(tmp_path, "dup")
    pem = cert.read_text()
    status, body = node.admin("POST", "/v1/tenants/vsphere/clients",
                              {"client": "a", "certificate": pem + key.read_text()})
    assert status == 400 and "private key" in body["error"]
    status, body = node.admin("POST", "/v1/tenants/vsphere/clients",
                              {"client": "a", "certificate": "hello"})
    assert status == 400 and "no PEM certificate" in body["error"]
    status, body = node.admin("POST", "/v1/tenants/vsphere/clients",
                              {"client": "bad name", "certificate": pem})
    assert status == 400 and "client name" in body["error"]
    status, body = node.admin("POST", "/v1/tenants/nobody/clients",
                              {"client": "a", "certificate": pem})
    assert status == 404 and "no tenant nobody" in body["error"]
    status, body = node.admin("POST", "/v1/tenants/vsphere/clients",
                              {"client": "a", "certificate": pem})
    assert status == 201 and body["kind"] == "pinned"
    status, body = node.admin("POST", "/v1/tenants/other/clients",
                              {"client": "b", "certificate": pem})
    assert status == 409 and "already belongs to client a of tenant vsphere" in body["error"]
    status, body = node.admin("POST", "/v1/tenants/vsphere/clients",
                              {"client": "a", "certificate": expired_certificate()})
    assert status == 400 and "expired" in body["error"]
    status, body = node.admin("DELETE", "/v1/tenants/other/certificates/" + fingerprint(cert))
    assert status == 404  # another tenant's certificate
    status, body = node.admin("DELETE", "/v1/tenants/vsphere/certificates/" + "0" * 64)
    assert status == 404
    status, body = node.admin("POST", "/v1/tenants/vsphere/clients",
                              {"client": "a", "certificate": pem}, cert="client")
    assert status == 403
    missing = kmipctl(build, node, "client", "show", "vsphere", "nobody")
    assert missing.returncode == 4


def test_the_ca_and_server_chain_are_exported(build, cluster, tmp_path):
    node = cluster.nodes[2]
    done = kmipctl(build, node, "pki", "ca", "--out", str(tmp_path / "ca.pem"))
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "ca.pem").read_text() == (node.pki / "ca.pem").read_text()
    done = kmipctl(build, node, "pki", "server")
    assert done.returncode == 0
    assert done.stdout.strip() == (node.pki / "server.pem").read_text().strip()


def test_certificates_about_to_expire_are_warned_of(build, cluster, tmp_path):
    cert, _ = self_signed(tmp_path, "short-lived", days=5)
    assert kmipctl(build, cluster.nodes[0], "client", "add", "vsphere", "brief",
                   str(cert)).returncode == 0
    for n in cluster.nodes:
        status, body = n.admin("GET", "/healthz", cert=None)
        assert status == 200 and body["client_certificates_expiring"] >= 1
        assert "brief" not in json.dumps(body)  # names only for administrators
        status, body = n.admin("GET", "/v1/cluster")
        warned = [w for w in body["certificate_warnings"] if "brief" in w["certificate"]]
        assert warned and warned[0]["days_left"] in (4, 5) and warned[0]["kind"] == "client"
