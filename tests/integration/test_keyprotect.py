"""Tenants whose root key is in Key Protect (or HPCS), on a 3-node cluster, against a fake
Key Protect that speaks the real API over real HTTPS: keys served while the root key is
usable, refused on every node within the check interval once it is disabled, deleted or the
access is taken away, served again once it is enabled; cached KEKs serving through an
outage, a 429 storm and an expired token; the rewrapped KEK after a root-key rotation stored
and used after a restart; the API key nowhere it should not be."""
import os
import pathlib
import subprocess
import time

import pytest
from kmip import enums
from kmip.pie.exceptions import KmipOperationFailure

from fake_keyprotect import FakeKeyProtect, make_tls
from node import Cluster, free_port, kmipctl

API_KEY = "kp-test-api-key-4f1c2b7e9a"
CHECK_MS = 1500  # root_key.check_interval_ms on the test nodes


def provider_args(fake, tls_ca, api_key_file, interval_ms=CHECK_MS):
    args = ["--root_key.check_interval_ms", str(interval_ms)]
    for kind in ("keyprotect", "hpcs"):
        args += [f"--{kind}.url", fake.url,
                 f"--{kind}.iam_url", fake.url + "/identity/token",
                 f"--{kind}.instance_id", fake.instance_id,
                 f"--{kind}.api_key_file", str(api_key_file),
                 f"--{kind}.ca_file", str(tls_ca),
                 f"--{kind}.timeout_ms", "2000",
                 f"--{kind}.retries", "2",
                 f"--{kind}.backoff_ms", "200",
                 f"--{kind}.backoff_max_ms", "1000"]
    return args


@pytest.fixture(scope="module")
def kp(tmp_path_factory):
    base = tmp_path_factory.mktemp("kp")
    ca, cert, key = make_tls(base / "tls")
    fake = FakeKeyProtect(cert, key, api_keys=(API_KEY,)).start()
    key_file = base / "api-key"
    key_file.write_text(API_KEY + "\n")
    key_file.chmod(0o600)
    fake.ca = ca
    fake.key_file = key_file
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def cluster(build, kp, tmp_path_factory):
    base = tmp_path_factory.mktemp("kpcluster")
    c = Cluster(build, base / "cluster", extra_args=provider_args(kp, kp.ca, kp.key_file))
    c.start()
    yield c
    for rc in c.stop():
        assert rc == 0


def wait_for(what, check, timeout=15, step=0.1):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(step)


def kek_state(node, tenant):
    status, body = node.admin("GET", f"/v1/tenants/{tenant}")
    assert status == 200, body
    return body["kek"]


def make_tenant(build, cluster, kp, tmp_path, name, provider="keyprotect"):
    """A cloud tenant with its own root key, ready on every node, and a client for it."""
    root = kp.create_root_key(name=f"crk-{name}")
    status, body = cluster.nodes[0].admin(
        "POST", "/v1/tenants", {"name": name, "provider": provider, "root_key_id": root})
    assert status == 201, body
    assert body["provider"] == provider and body["root_key_id"] == root
    for n in cluster.nodes:
        wait_for(f"{name} ready on node {n.id}",
                 lambda n=n: kek_state(n, name)["state"] == "ready")
    out = tmp_path / f"{name}-client"
    done = kmipctl(build, cluster.nodes[0], "client", "issue", name, "vc", "--out", str(out))
    assert done.returncode == 0, done.stderr
    return root, out / "vc.pem", out / "vc-key.pem"


def root_key_metric(node, provider, operation, result):
    status, text = node.admin("GET", "/metrics")
    assert status == 200
    line = (f'kmipd_root_key_operations_total{{provider="{provider}",'
            f'operation="{operation}",result="{result}"}} ')
    values = [int(l[len(line):]) for l in text.splitlines() if l.startswith(line)]
    return values[0] if values else 0


def create_key(node, cert, key):
    with node.pykmip(cert, key) as c:
        uid = c.create(enums.CryptographicAlgorithm.AES, 256)
        return uid, c.get(uid).value


def get_key(node, cert, key, uid):
    with node.pykmip(cert, key) as c:
        return c.get(uid).value


def refusal(node, cert, key, uid):
    """The KMIP failure a Get of @uid meets on @node, or None if it succeeds."""
    try:
        get_key(node, cert, key, uid)
        return None
    except KmipOperationFailure as e:
        return e


def test_keys_are_served_under_a_key_protect_tenant_with_only_the_wrapped_kek_replicated(
        build, cluster, kp, tmp_path):
    kp.clear_requests()
    root, cert, key = make_tenant(build, cluster, kp, tmp_path, "kp-basic")
    uid, material = create_key(cluster.nodes[1], cert, key)
    for n in cluster.nodes:
        assert get_key(n, cert, key, uid) == material

    wraps = kp.calls("wrap")
    assert len(wraps) == 1 and wraps[0]["status"] == 200
    unwraps = [r for r in kp.calls("unwrap") if root in r["path"]]
    assert len(unwraps) >= 3  # every node unwrapped it for itself
    for r in wraps + unwraps:
        h = r["headers"]
        assert h["authorization"].startswith("Bearer ")
        assert h["bluemix-instance"] == kp.instance_id
        assert len(h["correlation-id"]) == 36
        assert r["json"]["aad"] == ["kmipd-kek", "tenant:kp-basic", "kek-version:1"]
    ids = [r["headers"]["correlation-id"] for r in wraps + unwraps]
    assert len(set(ids)) == len(ids)
    # Each node logged the correlation id of its own unwrap.
    logs = "".join(n.stderr() for n in cluster.nodes)
    assert sum(i in logs for i in ids) == len(ids)
    # What every node stores is the provider's opaque ciphertext, the only form replicated.
    ciphertext = unwraps[0]["json"]["ciphertext"]
    for n in cluster.nodes:
        assert ciphertext.encode() in (n.data_dir / "store" / "data.mdb").read_bytes()


def test_disabling_the_root_key_refuses_the_tenant_everywhere_and_enabling_serves_it(
        build, cluster, kp, tmp_path):
    root, cert, key = make_tenant(build, cluster, kp, tmp_path, "kp-toggle")
    uid, material = create_key(cluster.nodes[0], cert, key)
    other_uid, other = create_key(cluster.nodes[0], None, None)  # the local dev tenant

    kp.disable(root)
    disabled_at = time.monotonic()
    for n in cluster.nodes:
        e = wait_for(f"node {n.id} refusing", lambda n=n: refusal(n, cert, key, uid),
                     timeout=CHECK_MS / 1000 * 3 + 5)
        assert e.reason == enums.ResultReason.PERMISSION_DENIED
        assert "KEY_ACTION_INVALID_STATE_ERR" in e.message and root in e.message
        assert get_key(n, None, None, other_uid) == other  # other tenants unaffected
        kek = kek_state(n, "kp-toggle")
        assert kek["state"] == "refused" and not kek["loaded"] and "409" in kek["reason"]
    assert time.monotonic() - disabled_at < CHECK_MS / 1000 * 2 + 3
    with pytest.raises(KmipOperationFailure):
        create_key(cluster.nodes[2], cert, key)

    kp.enable(root)
    for n in cluster.nodes:
        assert wait_for(f"node {n.id} serving again",
                        lambda n=n: refusal(n, cert, key, uid) is None,
                        timeout=CHECK_MS / 1000 * 3 + 5)
        assert get_key(n, cert, key, uid) == material
    # Each node counted its provider calls, the refused ones apart.
    for n in cluster.nodes:
        assert root_key_metric(n, "keyprotect", "unwrap", "ok") >= 2
        assert root_key_metric(n, "keyprotect", "unwrap", "failed") >= 1
        assert root_key_metric(n, "local", "unwrap", "ok") >= 1  # the dev tenant
    assert root_key_metric(cluster.nodes[0], "keyprotect", "wrap", "ok") >= 1


def test_a_deleted_root_key_or_revoked_access_refuses_the_tenant(build, cluster, kp, tmp_path):
    root, cert, key = make_tenant(build, cluster, kp, tmp_path, "kp-gone")
    uid, _ = create_key(cluster.nodes[0], cert, key)
    kp.delete(root)
    for n in cluster.nodes:
        e = wait_for(f"node {n.id} refusing", lambda n=n: refusal(n, cert, key, uid))
        assert e.reason == enums.ResultReason.PERMISSION_DENIED and "410" in e.message
    kp.restore(root)
    for n in cluster.nodes:
        wait_for(f"node {n.id} serving", lambda n=n: refusal(n, cert, key, uid) is None)

    kp.deny_access = True  # the service ID lost its policy: 403 on every key call
    try:
        for n in cluster.nodes:
            e = wait_for(f"node {n.id} refusing", lambda n=n: refusal(n, cert, key, uid))
            assert e.reason == enums.ResultReason.PERMISSION_DENIED and "403" in e.message
    finally:
        kp.deny_access = False
    for n in cluster.nodes:
        wait_for(f"node {n.id} serving", lambda n=n: refusal(n, cert, key, uid) is None)


def test_an_unreachable_provider_leaves_cached_keys_serving(build, cluster, kp, tmp_path):
    root, cert, key = make_tenant(build, cluster, kp, tmp_path, "kp-outage")
    uid, material = create_key(cluster.nodes[0], cert, key)
    kp.stop()
    try:
        for n in cluster.nodes:
            wait_for(f"node {n.id} noticing", lambda n=n: not kek_state(
                n, "kp-outage").get("provider_reachable", True), timeout=20)
        # Several intervals of outage: reads and writes keep working on every node.
        end = time.monotonic() + CHECK_MS / 1000 * 2
        while time.monotonic() < end:
            for n in cluster.nodes:
                assert get_key(n, cert, key, uid) == material
            create_key(cluster.nodes[1], cert, key)
        kek = kek_state(cluster.nodes[2], "kp-outage")
        assert kek["state"] == "ready" and "cannot be reached" in kek["reason"]
        status, health = cluster.nodes[2].admin("GET", "/healthz")
        assert status == 200 and health["status"] == "degraded"
        assert any(w["tenant"] == "kp-outage" and "cannot be reached" in w["reason"]
                   for w in health["root_keys"])
        # Without an administrator's certificate: counted, not named.
        status, health = cluster.nodes[2].admin("GET", "/healthz", cert=None)
        assert status == 200 and health["root_key_problems"]["provider_unreachable"] >= 1
        assert "root_keys" not in health
    finally:
        kp.start()
    for n in cluster.nodes:
        wait_for(f"node {n.id} reaching it again",
                 lambda n=n: kek_state(n, "kp-outage")["provider_reachable"], timeout=20)


def test_server_errors_and_hung_requests_count_as_unreachable_not_revoked(
        build, cluster, kp, tmp_path):
    root, cert, key = make_tenant(build, cluster, kp, tmp_path, "kp-5xx")
    uid, material = create_key(cluster.nodes[0], cert, key)

    def served_while_unreachable(fault):
        for n in cluster.nodes:
            wait_for(f"node {n.id} noticing {fault}", lambda n=n: not kek_state(
                n, "kp-5xx").get("provider_reachable", True), timeout=20)
            assert kek_state(n, "kp-5xx")["state"] == "ready"
            assert get_key(n, cert, key, uid) == material

    for fault in ({"status": 503}, {"status": 500}, {"status": 0}):  # 0: dropped unanswered
        kp.inject(count=None, path_contains=f"{root}/actions/unwrap", **fault)
        try:
            served_while_unreachable(fault)
        finally:
            kp.clear_faults()
        for n in cluster.nodes:
            wait_for(f"node {n.id} recovering from {fault}",
                     lambda n=n: kek_state(n, "kp-5xx")["provider_reachable"], timeout=20)
    # 501 is a server error too, but IBM's rule is not to retry it: one request per check.
    kp.clear_requests()
    kp.inject(501, count=None, path_contains=f"{root}/actions/unwrap")
    try:
        served_while_unreachable(501)
        time.sleep(CHECK_MS / 1000 * 2)
    finally:
        kp.clear_faults()
    assert len([r for r in kp.requests if root in r["path"] and r["status"] == 501]) >= 3
    retried = [line for n in cluster.nodes for line in n.stderr().splitlines()
               if "retrying unwrap" in line and "HTTP 501" in line]
    assert retried == [], retried[:3]
    for n in cluster.nodes:
        wait_for(f"node {n.id} recovering from 501",
                 lambda n=n: kek_state(n, "kp-5xx")["provider_reachable"], timeout=20)
    # A request that hangs past keyprotect.timeout_ms (2 s) is a timeout, retried.
    kp.hang(count=3, seconds=5, path_contains=f"{root}/actions/unwrap")
    wait_for("a timed-out unwrap", lambda: any(
        "Operation timed out" in n.stderr() for n in cluster.nodes), timeout=20)
    for n in cluster.nodes:
        assert get_key(n, cert, key, uid) == material
        assert kek_state(n, "kp-5xx")["state"] == "ready"
    logs = "".join(n.stderr() for n in cluster.nodes)
    assert "HTTP 503" in logs and "retrying unwrap" in logs


def test_a_429_storm_is_backed_off_and_an_expired_token_renewed(build, cluster, kp, tmp_path):
    root, cert, key = make_tenant(build, cluster, kp, tmp_path, "kp-storm")
    uid, material = create_key(cluster.nodes[0], cert, key)
    kp.clear_requests()
    kp.inject(429, count=None, path_contains=f"{root}/actions/unwrap", retry_after=2)
    try:
        time.sleep(8)
        for n in cluster.nodes:
            assert get_key(n, cert, key, uid) == material
    finally:
        kp.clear_faults()
    storm = [r for r in kp.requests if root in r["path"]]
    # Three nodes, each at most one request per Retry-After (2 s) over 8 s, plus the first.
    assert 3 <= len(storm) <= 3 * (8 // 2 + 1), len(storm)
    assert all(r["status"] == 429 for r in storm)

    kp.clear_requests()
    kp.expire_tokens()
    for n in cluster.nodes:
        wait_for(f"node {n.id} renewing", lambda: len(kp.calls("token")) >= 3, timeout=20)
    wait_for("200s after renewal", lambda: sum(
        r["status"] == 200 for r in kp.calls("unwrap") if root in r["path"]) >= 3)
    unauthorized = [r for r in kp.requests if r["status"] == 401]
    assert unauthorized, "the expired token was never used"
    for n in cluster.nodes:
        assert get_key(n, cert, key, uid) == material
        assert kek_state(n, "kp-storm")["state"] == "ready"


def test_tokens_are_renewed_before_they_expire(build, cluster, kp, tmp_path):
    make_tenant(build, cluster, kp, tmp_path, "kp-ttl")
    kp.token_ttl = 4  # renewed after 80%: 3.2 s
    try:
        kp.clear_requests()
        kp.expire_tokens()
        # Each node's next check meets a 401 and takes a short-lived token.
        wait_for("short tokens on every node", lambda: len(
            [r for r in kp.requests if r["status"] == 401]) >= 3 and len(
            kp.calls("token")) >= 3, timeout=20)
        time.sleep(0.5)
        kp.clear_requests()
        time.sleep(9)
        tokens = kp.calls("token")
        assert len(tokens) >= 3, len(tokens)  # each node renewed at least once
        assert [r for r in kp.requests if r["status"] == 401] == []
        assert kp.calls("unwrap")
    finally:
        kp.token_ttl = 3600


def test_an_hpcs_tenant_works_and_an_uninitialised_crypto_unit_keeps_it_cached(
        build, cluster, kp, tmp_path):
    root, cert, key = make_tenant(build, cluster, kp, tmp_path, "hpcs-one", provider="hpcs")
    uid, material = create_key(cluster.nodes[2], cert, key)
    kp.hpcs_uninitialised = True
    try:
        for n in cluster.nodes:
            kek = wait_for(f"node {n.id} noticing", lambda n=n: (
                lambda k: k if not k.get("provider_reachable", True) else None)(
                    kek_state(n, "hpcs-one")))
            assert "CKR_IBM_WK_NOT_INITIALIZED" in kek["reason"]
            assert get_key(n, cert, key, uid) == material
        status, body = cluster.nodes[0].admin(
            "POST", "/v1/tenants", {"name": "hpcs-two", "provider": "hpcs",
                                    "root_key_id": root})
        assert status == 503 and "CKR_IBM_WK_NOT_INITIALIZED" in body["error"]
    finally:
        kp.hpcs_uninitialised = False


def test_deleting_a_cloud_tenant_shreds_its_kek_and_stops_checking_it(
        build, cluster, kp, tmp_path):
    root, cert, key = make_tenant(build, cluster, kp, tmp_path, "kp-shred")
    create_key(cluster.nodes[0], cert, key)
    status, body = cluster.nodes[1].admin("DELETE", "/v1/tenants/kp-shred",
                                          {"confirm": "kp-shred"})
    assert status == 200, body
    time.sleep(0.5)
    kp.clear_requests()
    time.sleep(CHECK_MS / 1000 * 2)
    assert not [r for r in kp.requests if root in r["path"]]
    for n in cluster.nodes:
        assert n.admin("GET", "/v1/tenants/kp-shred")[0] == 404


def test_bad_cloud_tenants_are_refused_with_the_providers_reason(cluster, kp):
    node = cluster.nodes[0]
    status, body = node.admin("POST", "/v1/tenants", {
        "name": "kp-missing", "provider": "keyprotect", "root_key_id": "no-such-key"})
    assert status == 409 and "404" in body["error"] and "KEY_NOT_FOUND_ERR" in body["error"]
    standard = kp.create_standard_key()
    status, body = node.admin("POST", "/v1/tenants", {
        "name": "kp-standard", "provider": "keyprotect", "root_key_id": standard})
    assert status == 400 and "KEY_ROOT_REQ_ERR" in body["error"]
    status, body = node.admin("POST", "/v1/tenants", {
        "name": "kp-odd", "provider": "keyprotect", "root_key_id": "../../etc"})
    assert status == 400 and "not a key id" in body["error"]
    for name in ("kp-missing", "kp-standard", "kp-odd"):
        assert node.admin("GET", f"/v1/tenants/{name}")[0] == 404


def test_rotating_a_key_protect_tenants_kek_wraps_the_new_one_with_its_root_key(
        build, cluster, kp, tmp_path):
    root, cert, key = make_tenant(build, cluster, kp, tmp_path, "kp-rotkek")
    made = dict(create_key(cluster.nodes[i % 3], cert, key) for i in range(40))
    kp.clear_requests()
    status, body = cluster.nodes[1].admin("POST", "/v1/tenants/kp-rotkek/rotate-kek", {})
    assert status == 200 and body["kek_version"] == 2, body
    wraps = kp.calls("wrap")
    assert len(wraps) == 1
    assert wraps[0]["json"]["aad"] == ["kmipd-kek", "tenant:kp-rotkek", "kek-version:2"]
    for n in cluster.nodes:
        wait_for(f"version 1 retired on node {n.id}", lambda n=n: (
            lambda k: k["version"] == 2 and k["loaded"] and "retiring_version" not in k)(
                kek_state(n, "kp-rotkek")), timeout=30)
    uid, material = create_key(cluster.nodes[2], cert, key)
    made[uid] = material
    for n in cluster.nodes:
        for uid, material in made.items():
            assert get_key(n, cert, key, uid) == material
    # Once version 1 is retired, each node's checks unwrap version 2 only.
    time.sleep(0.5)
    kp.clear_requests()
    time.sleep(CHECK_MS / 1000 * 2)
    checks = [r["json"]["aad"][2] for r in kp.calls("unwrap") if root in r["path"]]
    assert len(checks) >= 3 and set(checks) == {"kek-version:2"}


def test_the_root_key_is_read_and_the_kek_rewrapped_on_request(build, cluster, kp, tmp_path):
    root, cert, key = make_tenant(build, cluster, kp, tmp_path, "kp-ask")
    uid, material = create_key(cluster.nodes[0], cert, key)
    status, body = cluster.nodes[1].admin("GET", "/v1/tenants/kp-ask/root-key")
    assert status == 200, body
    assert body["state"] == 1 and body["state_name"] == "active"
    assert body["key_version"] == kp.current_version(root)
    shown = kmipctl(build, cluster.nodes[1], "tenant", "root-key", "kp-ask").stdout
    assert f"keyprotect root key {root} is active" in shown
    kp.disable(root)
    try:
        status, body = cluster.nodes[1].admin("GET", "/v1/tenants/kp-ask/root-key")
        assert status == 200 and body["state_name"] == "suspended"
    finally:
        kp.enable(root)
    assert cluster.nodes[0].admin("GET", "/v1/tenants/default/root-key")[0] == 409

    # After a root-key rotation, rewrap now instead of at the next check.
    stored = [r for r in kp.calls("unwrap") if root in r["path"]][-1]["json"]["ciphertext"]
    new_version = kp.rotate(root)
    kp.clear_requests()
    done = kmipctl(build, cluster.nodes[2], "tenant", "rewrap", "kp-ask")
    assert done.returncode == 0, done.stderr
    rewraps = kp.calls("rewrap")
    assert len(rewraps) == 1 and rewraps[0]["json"]["ciphertext"] == stored
    assert rewraps[0]["json"]["aad"] == ["kmipd-kek", "tenant:kp-ask", "kek-version:1"]
    time.sleep(0.3)
    kp.clear_requests()
    time.sleep(CHECK_MS / 1000 * 2)
    checks = [r["json"]["ciphertext"] for r in kp.calls("unwrap") if root in r["path"]]
    assert len(checks) >= 3 and stored not in checks
    assert kp.current_version(root) == new_version
    for n in cluster.nodes:
        assert get_key(n, cert, key, uid) == material


def test_kmipctl_creates_and_shows_a_key_protect_tenant(build, cluster, kp):
    root = kp.create_root_key(name="crk-ctl", alias="kmipd-ctl")
    done = kmipctl(build, cluster.nodes[2], "tenant", "create", "kp-ctl", "--provider",
                   "keyprotect", "--root-key", "kmipd-ctl")
    assert done.returncode == 0, done.stderr
    assert "tenant kp-ctl created (provider keyprotect)" in done.stdout
    wait_for("ready", lambda: kek_state(cluster.nodes[2], "kp-ctl")["state"] == "ready")
    shown = kmipctl(build, cluster.nodes[2], "tenant", "show", "kp-ctl").stdout
    assert "keyprotect kmipd-ctl" in shown and "version 1, ready" in shown
    # The alias was sent as given: Key Protect resolves it.
    assert any("/keys/kmipd-ctl/actions/wrap" in r["path"] for r in kp.calls("wrap"))
    kp.disable(root)
    try:
        wait_for("refused", lambda: kek_state(cluster.nodes[2], "kp-ctl")["state"] == "refused")
        shown = kmipctl(build, cluster.nodes[2], "tenant", "show", "kp-ctl").stdout
        assert "version 1, refused" in shown and "KEY_ACTION_INVALID_STATE_ERR" in shown
    finally:
        kp.enable(root)


def test_the_api_key_is_nowhere_but_its_file(cluster, kp):
    for n in cluster.nodes:
        assert "IAM token obtained" in n.stderr()  # the key was used
        assert API_KEY not in n.stderr()
        for path in pathlib.Path(n.data_dir).rglob("*"):
            if path.is_file():
                assert API_KEY.encode() not in path.read_bytes(), path
        proc = pathlib.Path(f"/proc/{n.proc.pid}")
        assert API_KEY.encode() not in (proc / "cmdline").read_bytes()
        assert API_KEY.encode() not in (proc / "environ").read_bytes()


def test_an_api_key_is_refused_on_the_command_line_and_in_a_readable_file(build, tmp_path):
    def start(*args):
        return subprocess.run([str(build / "kmipd"), "--dev", "--data-dir", str(tmp_path / "d"),
                               "--listen", "127.0.0.1:0", "--admin.listen", "off",
                               "--raft.address", f"127.0.0.1:{free_port(pair=True)}",
                               "--keyprotect.url", "https://127.0.0.1:1",
                               "--keyprotect.instance_id", "x", *args],
                              capture_output=True, text=True, timeout=30)

    done = start("--keyprotect.api_key", "s3cr3t-key")
    assert done.returncode != 0
    assert "never taken from the configuration or the command line" in done.stderr
    assert "s3cr3t-key" not in done.stderr

    key_file = tmp_path / "api-key"
    key_file.write_text("s3cr3t-key\n")
    key_file.chmod(0o644)
    done = start("--keyprotect.api_key_file", str(key_file))
    assert done.returncode != 0
    assert f"{key_file}: readable by others (mode 644); make it 0600" in done.stderr
    assert "s3cr3t-key" not in done.stderr

    done = start("--keyprotect.api_key_file", str(tmp_path / "missing"))
    assert done.returncode != 0 and f"{tmp_path / 'missing'}: No such file" in done.stderr
    done = start("--keyprotect.api_key_env", "KMIPD_TEST_NO_SUCH_VARIABLE")
    assert done.returncode != 0
    assert "the environment has no KMIPD_TEST_NO_SUCH_VARIABLE" in done.stderr


# ---- Restarts: a cluster of its own ----

@pytest.fixture
def fresh(build, kp, tmp_path):
    c = Cluster(build, tmp_path / "cluster", extra_args=provider_args(kp, kp.ca, kp.key_file))
    c.start()
    yield c
    for rc in c.stop():
        assert rc == 0


def test_a_node_started_during_an_outage_serves_once_the_provider_returns(
        build, fresh, kp, tmp_path):
    root, cert, key = make_tenant(build, fresh, kp, tmp_path, "kp-restart")
    uid, material = create_key(fresh.nodes[0], cert, key)
    node = fresh.nodes[1]
    assert node.stop() == 0
    kp.stop()
    try:
        node.start_at(node.host, fresh.kmip_port)
        # First "being unwrapped", then, once the provider's retries are spent, why not.
        e = wait_for("the restarted node's answer", lambda: (
            lambda e: e if e is not None and "cannot be reached" in e.message else None)(
                refusal(node, cert, key, uid)))
        assert e.reason == enums.ResultReason.CRYPTOGRAPHIC_FAILURE
        assert "Couldn't connect to server" in e.message
        assert kek_state(node, "kp-restart")["state"] == "pending"
        # The nodes that unwrapped it before the outage keep serving.
        assert get_key(fresh.nodes[2], cert, key, uid) == material
    finally:
        kp.start()
    wait_for("service after the provider returns",
             lambda: refusal(node, cert, key, uid) is None, timeout=20)
    assert get_key(node, cert, key, uid) == material


def test_a_rotated_root_key_gets_the_rewrapped_kek_stored_and_used_after_restart(
        build, fresh, kp, tmp_path):
    root, cert, key = make_tenant(build, fresh, kp, tmp_path, "kp-rotate")
    uid, material = create_key(fresh.nodes[0], cert, key)
    first = [r for r in kp.calls("unwrap") if root in r["path"]][0]["json"]["ciphertext"]
    kp.rotate(root)

    wait_for("the rewrapped KEK stored", lambda: any(
        "rewrapped key-encryption key is stored" in n.stderr() for n in fresh.nodes))
    # Every node's next check sends the new form, which needs no rewrapping.
    time.sleep(0.5)
    kp.clear_requests()
    time.sleep(CHECK_MS / 1000 * 2)
    checks = [r["json"]["ciphertext"] for r in kp.calls("unwrap") if root in r["path"]]
    assert len(checks) >= 3 and first not in checks and len(set(checks)) == 1
    assert "was rotated" in "".join(n.stderr() for n in fresh.nodes)

    for n in fresh.nodes:
        assert n.stop() == 0
    kp.clear_requests()
    fresh.start()
    for n in fresh.nodes:
        wait_for(f"node {n.id} ready", lambda n=n: kek_state(n, "kp-rotate")["state"] == "ready")
        assert get_key(n, cert, key, uid) == material
    after = [r["json"]["ciphertext"] for r in kp.calls("unwrap") if root in r["path"]]
    assert after and first not in after
