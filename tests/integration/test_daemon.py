"""kmipd as a process: start-up in dev mode, mutual TLS, what bad clients get, shutdown.

Every test that hurts one connection also checks that another client is still served."""
import os
import socket
import ssl
import subprocess
import threading
import time

import pytest
from kmip.core import enums
from kmip.core.messages import payloads

import ttlv
from node import Node, exchange, free_port, recv_exact, wait_closed
from test_message_layer import request, response


def discover_versions(sock, version=(1, 1)):
    data = request(enums.Operation.DISCOVER_VERSIONS,
                   payloads.DiscoverVersionsRequestPayload(), version=version)
    return response(exchange(sock, bytes(data)))


def assert_serves(node):
    """A well-behaved client still gets answers."""
    with node.connect() as s:
        out = discover_versions(s)
        assert out.batch_items[0].result_status.value == enums.ResultStatus.SUCCESS


def test_dev_mode_makes_pki_root_key_and_prints_paths(node):
    for name in ("ca.pem", "ca-key.pem", "server.pem", "server-key.pem", "client.pem",
                 "client-key.pem"):
        assert (node.pki / name).exists(), name
    for secret in ("ca-key.pem", "server-key.pem", "client-key.pem"):
        assert oct((node.pki / secret).stat().st_mode & 0o777) == "0o600", secret
    root = node.data_dir / "root.key"
    assert root.stat().st_size == 32 and root.stat().st_mode & 0o077 == 0
    printed = "".join(node.stdout_lines)
    assert str(node.pki / "client.pem") in printed
    assert str(node.pki / "ca.pem") in printed
    assert f"127.0.0.1:{node.port}" in printed


def test_vcenter_first_exchange_discover_versions_empty_payload(shared_node):
    with shared_node.connect() as s:
        out = discover_versions(s, version=(1, 1))
        item = out.batch_items[0]
        assert item.result_status.value == enums.ResultStatus.SUCCESS
        versions = [(v.major, v.minor) for v in item.response_payload.protocol_versions]
        assert (1, 1) in versions and versions[0] == (1, 4)
        # The same connection answers again (vCenter's health check sends it twice).
        out = discover_versions(s, version=(1, 1))
        assert out.response_header.protocol_version.minor == 1


def test_pykmip_client_queries_server_information(shared_node):
    client = shared_node.pykmip()
    client.open()
    try:
        result = client.proxy.query(
            query_functions=[enums.QueryFunction.QUERY_SERVER_INFORMATION])
        assert result.vendor_identification.startswith("kmipd")
    finally:
        client.close()


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_tls_versions(shared_node, version):
    ctx = shared_node.tls_context()
    ctx.minimum_version = ctx.maximum_version = version
    with socket.create_connection(("127.0.0.1", shared_node.port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            assert discover_versions(s).batch_items[0].result_status.value == \
                enums.ResultStatus.SUCCESS


def test_kmip_profile_rsa_cbc_suite_vcenter_negotiates(shared_node):
    ctx = shared_node.tls_context()
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers("AES128-SHA256")
    with socket.create_connection(("127.0.0.1", shared_node.port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            assert s.cipher()[0] == "AES128-SHA256"
            discover_versions(s)


def test_tls_1_1_is_refused(shared_node):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ssl.TLSVersion.TLSv1
    ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    try:
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    except ssl.SSLError:
        pass
    with socket.create_connection(("127.0.0.1", shared_node.port), timeout=10) as raw:
        with pytest.raises((ssl.SSLError, ConnectionError)):
            ctx.wrap_socket(raw, server_hostname="localhost")
    assert_serves(shared_node)


def test_session_resumption_with_client_certificate(shared_node):
    ctx = shared_node.tls_context()
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    with socket.create_connection(("127.0.0.1", shared_node.port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            discover_versions(s)
            session = s.session
    assert session is not None
    with socket.create_connection(("127.0.0.1", shared_node.port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost", session=session) as s:
            assert s.session_reused
            discover_versions(s)


def test_no_client_certificate_is_refused_and_others_served(shared_node):
    ctx = ssl.create_default_context(cafile=str(shared_node.pki / "ca.pem"))
    with socket.create_connection(("127.0.0.1", shared_node.port), timeout=10) as raw:
        with pytest.raises((ssl.SSLError, ConnectionError)):
            with ctx.wrap_socket(raw, server_hostname="localhost") as s:
                # TLS 1.3: the refusal arrives with the first read.
                discover_versions(s)
    assert_serves(shared_node)


def test_certificate_from_unknown_ca_is_refused(shared_node, tmp_path):
    key, cert = tmp_path / "k.pem", tmp_path / "c.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                    str(key), "-out", str(cert), "-subj", "/CN=stranger", "-days", "1",
                    "-addext", "subjectAltName=URI:urn:kmipd:tenant:default:client:x"],
                   check=True, capture_output=True)
    with pytest.raises((ssl.SSLError, ConnectionError)):
        with shared_node.connect(cert=cert, key=key) as s:
            discover_versions(s)
    assert_serves(shared_node)


def test_tls_only_probe_then_service_continues(shared_node):
    # vCenter's health check: handshake, then close without a byte of KMIP.
    for _ in range(5):
        s = shared_node.connect()
        s.close()
    assert_serves(shared_node)


def test_plain_tcp_garbage_closes_that_connection_only(shared_node):
    with socket.create_connection(("127.0.0.1", shared_node.port), timeout=10) as raw:
        raw.sendall(os.urandom(4096))
        raw.settimeout(10)
        try:
            while raw.recv(4096):
                pass
        except ConnectionResetError:
            pass
    assert_serves(shared_node)


def test_ttlv_garbage_after_handshake_closes_connection(shared_node):
    with shared_node.connect() as s:
        s.sendall(b"\x42\x00\x78\x07" + b"\x00\x00\x00\x08" + b"garbage!")
        s.settimeout(10)
        assert s.recv(1) == b""
    assert_serves(shared_node)


def test_oversized_length_is_refused_before_buffering(shared_node):
    with shared_node.connect() as s:
        # A Request Message announcing 512 MiB.
        s.sendall(bytes.fromhex("42007801") + (512 << 20).to_bytes(4, "big"))
        s.settimeout(10)
        assert s.recv(1) == b""
    assert_serves(shared_node)
    assert "larger than the configured maximum" in shared_node.stderr()


def test_malformed_message_gets_invalid_message_response(shared_node):
    with shared_node.connect() as s:
        # Framable, but the Request Header holds an Integer where a structure belongs.
        body = bytes.fromhex("42007702000000040000000100000000")
        out = exchange(s, bytes.fromhex("42007801") + len(body).to_bytes(4, "big") + body)
        msg = response(out)
        item = msg.batch_items[0]
        assert item.result_status.value == enums.ResultStatus.OPERATION_FAILED
        assert item.result_reason.value == enums.ResultReason.INVALID_MESSAGE
        # The connection is still usable.
        assert discover_versions(s).batch_items[0].result_status.value == \
            enums.ResultStatus.SUCCESS


def test_client_disconnecting_mid_message(shared_node):
    data = bytes(request(enums.Operation.DISCOVER_VERSIONS,
                         payloads.DiscoverVersionsRequestPayload()))
    s = shared_node.connect()
    s.sendall(data[:20])
    s.close()
    assert_serves(shared_node)


def create_aes(batch_id):
    """A raw Create of an AES-256 key, which waits for Raft before it is answered."""
    return ttlv.request([(ttlv.OP["CREATE"], [
        ttlv.item(ttlv.T["OBJECT_TYPE"], ttlv.ENUM, 2),
        ttlv.item(ttlv.T["TEMPLATE_ATTRIBUTE"], ttlv.STRUCTURE, [
            ttlv.attribute("Cryptographic Algorithm", ttlv.ENUM, 3),
            ttlv.attribute("Cryptographic Length", ttlv.INTEGER, 256)])], batch_id)])


def read_message(sock):
    header = recv_exact(sock, 8)
    return header + recv_exact(sock, int.from_bytes(header[4:8], "big"))


def test_requests_sent_ahead_are_answered_once_each_in_order(shared_node):
    """A client that sends its next requests before the first is answered (the server
    goes on reading while a Create waits for Raft) gets one answer per request, in the
    order it asked."""
    ids = [b"c1", b"c2", b"c3", b"c4", b"c5"]
    with shared_node.connect() as s:
        s.sendall(b"".join(create_aes(i) for i in ids))
        answers = [ttlv.results(read_message(s))[1] for _ in ids]
        assert [a[0]["batch_id"] for a in answers] == ids
        assert all(a[0]["status"] == 0 for a in answers), answers
        uids = {ttlv.find(a[0]["payload"], "UNIQUE_IDENTIFIER")[2] for a in answers}
        assert len(uids) == len(ids)
        out = discover_versions(s)  # and the connection goes on
        assert out.batch_items[0].result_status.value == enums.ResultStatus.SUCCESS


def test_client_that_stops_sending_after_its_request_still_gets_the_answer(shared_node):
    """A client may shut down its sending side once its request is out: the Create in
    flight is answered before the server closes the connection."""
    s = shared_node.connect()
    try:
        s.sendall(create_aes(b"last"))
        socket.socket.shutdown(s, socket.SHUT_WR)  # TCP only: SSLSocket.shutdown drops TLS
        (answer,) = ttlv.results(read_message(s))[1]
        assert answer["status"] == 0 and answer["batch_id"] == b"last", answer
        assert wait_closed(s)
    finally:
        s.close()
    assert_serves(shared_node)


def test_slow_client_trickling_bytes_does_not_block_others(shared_node):
    data = bytes(request(enums.Operation.DISCOVER_VERSIONS,
                         payloads.DiscoverVersionsRequestPayload()))
    slow = shared_node.connect()
    done = threading.Event()

    def trickle():
        try:
            for b in data[:-1]:
                if done.is_set():
                    return
                slow.sendall(bytes([b]))
                time.sleep(0.2)
        except OSError:
            pass

    t = threading.Thread(target=trickle)
    t.start()
    try:
        started = time.monotonic()
        for _ in range(20):
            assert_serves(shared_node)
        assert time.monotonic() - started < 10
    finally:
        done.set()
        t.join()
        slow.close()


def test_idle_connection_is_closed_after_timeout(build, tmp_path):
    n = Node(build, tmp_path / "idle", ["--server.idle_timeout_ms", "500"]).start()
    try:
        with n.connect() as s:
            discover_versions(s)
            s.settimeout(10)
            started = time.monotonic()
            assert s.recv(1) == b""
            assert time.monotonic() - started < 5
    finally:
        assert n.stop() == 0


def test_sigterm_finishes_and_exits_zero(node):
    s = node.connect()
    discover_versions(s)
    assert node.stop() == 0
    assert "stopped" in node.log_path.read_text()
    s.close()


def test_restart_reuses_data_dir_and_pki(build, tmp_path):
    n = Node(build, tmp_path / "n").start()
    ca = (n.pki / "ca.pem").read_bytes()
    client = (n.pki / "client.pem").read_bytes()
    root = (n.data_dir / "root.key").read_bytes()
    assert n.stop() == 0
    n.start()
    try:
        assert (n.pki / "ca.pem").read_bytes() == ca
        assert (n.pki / "client.pem").read_bytes() == client
        assert (n.data_dir / "root.key").read_bytes() == root
        assert_serves(n)
    finally:
        assert n.stop() == 0


def test_port_in_use_is_a_clear_error(build, tmp_path, shared_node):
    done = subprocess.run([str(build / "kmipd"), "--dev", "--data-dir", str(tmp_path / "x"),
                           "--listen", f"127.0.0.1:{shared_node.port}"],
                          capture_output=True, timeout=30)
    # The workers share the port with SO_REUSEPORT, which must not let a second kmipd
    # quietly take half of the first one's connections.
    assert done.returncode == 1
    assert f"listening on 127.0.0.1:{shared_node.port}: Address already in use".encode() \
        in done.stderr, done.stderr


def test_bad_flag_exits_2_with_usage(build):
    done = subprocess.run([str(build / "kmipd"), "--no-such-thing", "1"], capture_output=True)
    assert done.returncode == 2
    assert b"unknown setting 'no-such-thing'" in done.stderr


def test_issue_client_for_new_tenant_while_node_runs(build, kmipctl, node, tmp_path):
    out = tmp_path / "certs"
    out.mkdir()
    done = kmipctl("--data-dir", str(node.data_dir), "issue-client", "--tenant", "acme",
                   "--name", "vc01", "--out", str(out))
    assert done.returncode == 0, done.stderr.decode()
    cert, key = out / "vc01.pem", out / "vc01-key.pem"
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    # No restart: the node trusts its CA's word for the tenant and creates it.
    with node.connect(cert=cert, key=key) as s:
        assert discover_versions(s).batch_items[0].result_status.value == \
            enums.ResultStatus.SUCCESS
    assert "tenant acme created for client vc01" in node.stderr()
    # Issuing the same client again refuses to overwrite the files.
    again = kmipctl("--data-dir", str(node.data_dir), "issue-client", "--tenant", "acme",
                    "--name", "vc01", "--out", str(out))
    assert again.returncode == 1
    # The tenant survives a restart and is not created twice.
    assert node.stop() == 0
    node.start()
    with node.connect(cert=cert, key=key) as s:
        discover_versions(s)
    assert node.stderr().count("tenant acme created") == 1


def test_issue_client_usage_errors(kmipctl, tmp_path):
    assert kmipctl("issue-client", "--tenant", "a").returncode == 2
    bad = kmipctl("--data-dir", str(tmp_path), "issue-client", "--tenant", "a:b", "--name",
                  "x", "--out", str(tmp_path))
    assert bad.returncode == 2 and b"not a valid name" in bad.stderr


def test_raft_port_in_use_is_a_clear_error(build, tmp_path, shared_node):
    done = subprocess.run([str(build / "kmipd"), "--dev", "--data-dir", str(tmp_path / "y"),
                           "--listen", "127.0.0.1:0", "--raft.address",
                           f"127.0.0.1:{shared_node.raft_port}"],
                          capture_output=True, timeout=30)
    assert done.returncode == 1
    assert f"Raft peer address 127.0.0.1:{shared_node.raft_port}: Address already in use" \
        .encode() in done.stderr, done.stderr


def test_username_password_required_per_client(build, kmipctl, tmp_path):
    hashed = kmipctl("hash-password", input=b"correct horse battery staple\n")
    assert hashed.returncode == 0 and hashed.stdout.startswith(b"sha256:")
    creds = tmp_path / "credentials"
    creds.write_text("# tenant client username hash\n"
                     f"default dev-client vcenter {hashed.stdout.decode().strip()}\n")
    n = Node(build, tmp_path / "n", ["--server.credentials", str(creds)]).start()
    try:
        def query(**kw):
            c = n.pykmip()
            c.proxy.username = kw.get("username")
            c.proxy.password = kw.get("password")
            c.open()
            try:
                # The proxy puts a Username and Password credential in the header when
                # both are set.
                return c.proxy.query(
                    query_functions=[enums.QueryFunction.QUERY_SERVER_INFORMATION])
            finally:
                c.close()

        ok = query(username="vcenter", password="correct horse battery staple")
        assert ok.result_status.value == enums.ResultStatus.SUCCESS
        for kw in ({}, {"username": "vcenter", "password": "wrong"},
                   {"username": "someone", "password": "correct horse battery staple"}):
            out = query(**kw)
            assert out.result_status.value == enums.ResultStatus.OPERATION_FAILED, kw
            assert out.result_reason.value == \
                enums.ResultReason.AUTHENTICATION_NOT_SUCCESSFUL, kw
            assert "dev-client" in out.result_message.value
        # A client without an entry is not asked for credentials.
        out_dir = tmp_path / "c"
        out_dir.mkdir()
        assert kmipctl("--data-dir", str(n.data_dir), "issue-client", "--tenant", "default",
                       "--name", "other", "--out", str(out_dir)).returncode == 0
        with n.connect(cert=out_dir / "other.pem", key=out_dir / "other-key.pem") as s:
            assert discover_versions(s).batch_items[0].result_status.value == \
                enums.ResultStatus.SUCCESS
    finally:
        assert n.stop() == 0


def test_bad_credentials_file_is_a_clear_error(build, tmp_path):
    creds = tmp_path / "credentials"
    creds.write_text("default dev-client vcenter md5:abc\n")
    done = subprocess.run([str(build / "kmipd"), "--dev", "--data-dir", str(tmp_path / "d"),
                           "--listen", "127.0.0.1:0", "--raft.address",
                           f"127.0.0.1:{free_port()}", "--server.credentials", str(creds)],
                          capture_output=True, timeout=30)
    assert done.returncode == 1
    assert f"credentials file {creds}, line 1".encode() in done.stderr, done.stderr


@pytest.mark.parametrize("members,message", [
    ("garbage", b"is not a list of ID@HOST:PORT"),
    ("2@127.0.0.2:7000,3@127.0.0.3:7000", b"does not list this node (raft.id 1)"),
    ("1@127.0.0.9:7000", b"gives node 1 the address 127.0.0.9:7000, but raft.address is"),
    ("2@127.0.0.2:1,2@127.0.0.3:2", b"is listed twice"),
])
def test_bad_cluster_members_are_clear_errors(build, tmp_path, members, message):
    port = free_port(pair=True)
    done = subprocess.run([str(build / "kmipd"), "--dev", "--data-dir", str(tmp_path / "m"),
                           "--listen", "127.0.0.1:0", "--raft.address", f"127.0.0.1:{port}",
                           "--cluster.members", members],
                          capture_output=True, timeout=30)
    assert done.returncode == 1
    assert message in done.stderr, done.stderr


def checkpoints_taken(node):
    status, text = node.admin("GET", "/metrics")
    assert status == 200
    found = [line for line in text.splitlines()
             if line.startswith("kmipd_raft_checkpoints_total ")]
    assert len(found) == 1, text
    return int(found[0].split()[1])


@pytest.mark.parametrize("level", ["info", "debug"])
def test_checkpoints_are_counted_and_logged_at_info_once_a_minute(build, tmp_path, level):
    # Under load a node takes a few checkpoints a second: at info the first is logged,
    # the rest only at debug (until a minute has passed), and /metrics counts them all.
    n = Node(build, tmp_path / "n", ["--cluster.snapshot_threshold", "16",
                                     "--server.log_level", level]).start()
    try:
        with n.pykmip() as c:
            for _ in range(120):
                c.create(enums.CryptographicAlgorithm.AES, 256)
        # The last checkpoints may still be flushing: wait until the count settles.
        deadline, taken, last = time.monotonic() + 10, -1, checkpoints_taken(n)
        while taken != last and time.monotonic() < deadline:
            time.sleep(0.5)
            taken, last = last, checkpoints_taken(n)
        assert taken == last and taken >= 5, (taken, last)
        lines = [line for line in n.stderr().splitlines()
                 if "raft: checkpoint of the key store at index" in line]
        if level == "info":
            assert len(lines) == 1, lines
            assert " info " in lines[0], lines
        else:
            assert len(lines) == taken, (taken, lines)
            assert sum(" info " in line for line in lines) == 1, lines
    finally:
        n.stop()


def test_store_torn_by_a_machine_crash_is_refilled_from_raft(build, tmp_path):
    # kmipd leaves LMDB's pages to the kernel (MDB_NOSYNC): a killed process loses none
    # of them, a machine that stops can. The store's "unflushed" mark carries the boot
    # id; found with another boot's, the store is set aside, rolled back to Raft's last
    # checkpoint (whose pages were flushed and kept) and Raft's log refills the rest. A
    # low threshold puts the keys in both. The meta pages, which every commit rewrites,
    # are torn here: the roll-back writes the checkpoint's own back.
    n = Node(build, tmp_path / "n", ["--cluster.snapshot_threshold", "64"]).start()
    store = n.data_dir / "store"
    c = n.pykmip()
    c.open()
    keys = {}
    for i in range(200):
        uid = c.create(enums.CryptographicAlgorithm.AES, 256)
        if i % 2 == 0:
            c.activate(uid)
        keys[uid] = c.get(uid).value
    c.close()
    assert "checkpoint of the key store" in n.stderr()
    mark = (store / "unflushed").read_text()
    assert mark == open("/proc/sys/kernel/random/boot_id").read().strip()

    n.kill()  # a process crash: the store is kept as it is
    n.start()
    assert "not flushed" not in n.stderr()
    n.kill()
    (store / "unflushed").write_text("00000000-0000-0000-0000-000000000000")  # a reboot
    with open(store / "data.mdb", "r+b") as f:
        f.write(b"\xa5" * 8192)  # both meta pages torn
    n.start()
    try:
        assert "was not flushed before the machine stopped" in n.stderr()
        assert "key store rolled back to its checkpoint at index" in n.stderr()
        assert not (store / "data.mdb.unflushed").exists()
        c = n.pykmip()
        c.open()
        try:
            for i, (uid, value) in enumerate(keys.items()):
                assert c.get(uid).value == value
                state = c.get_attributes(uid, ["State"])[1][0].attribute_value.value
                expected = enums.State.ACTIVE if i % 2 == 0 else enums.State.PRE_ACTIVE
                assert state == expected, uid
        finally:
            c.close()
        assert n.stop() == 0
        assert not (store / "unflushed").exists()  # a clean stop flushed and unmarked
    finally:
        if n.proc is not None:
            n.kill()


def test_below_level_4_snapshots_are_copies_the_previous_version_reads(build, tmp_path):
    # cluster.format_level 3 keeps the option of going back to the previous binary, which
    # reads only copies of the store at start-up: so copies are what such a node keeps,
    # and a store torn by a machine crash is refilled from the copy and the log.
    n = Node(build, tmp_path / "n", ["--cluster.snapshot_threshold", "64",
                                     "--cluster.format_level", "3"]).start()
    store = n.data_dir / "store"
    try:
        with n.pykmip() as c:
            keys = {}
            for _ in range(150):
                uid = c.create(enums.CryptographicAlgorithm.AES, 256)
                keys[uid] = c.get(uid).value
        assert "snapshot of the key store at index" in n.stderr()
        assert "checkpoint" not in n.stderr()
        n.kill()
        (store / "unflushed").write_text("00000000-0000-0000-0000-000000000000")
        n.start()
        assert "key store restored from a snapshot at index" in n.stderr()
        with n.pykmip() as c:
            for uid, value in keys.items():
                assert c.get(uid).value == value
        assert n.stop() == 0
    finally:
        if n.proc is not None:
            n.kill()
