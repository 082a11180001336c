"""The fake Key Protect / HPCS server itself: IAM, wrap/unwrap/rewrap with real AES-GCM and
AAD, key states, rotation, metadata, fault injection, recording, restarts and the
standalone program. Plain urllib/http.client clients trusting the generated CA."""
import base64
import http.client
import json
import os
import pathlib
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from fake_keyprotect import FakeKeyProtect, make_tls

HERE = pathlib.Path(__file__).resolve().parent
API_KEY = "test-api-key"
GRANT = "urn:ibm:params:oauth:grant-type:apikey"


class Answer:
    def __init__(self, status, headers, raw):
        self.status = status
        self.headers = headers
        self.raw = raw
        try:
            self.json = json.loads(raw) if raw else None
        except ValueError:
            self.json = None

    @property
    def code(self):
        """The first reason code of a KMS error body."""
        return self.json["resources"][0]["reasons"][0]["code"]


def exchange(conn, method, path, body=None, headers=None):
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode()
    conn.request(method, path, body=body, headers=headers or {})
    resp = conn.getresponse()
    raw = resp.read()
    return Answer(resp.status, {k.lower(): v for k, v in resp.getheaders()}, raw)


class Client:
    """Talks to one fake over fresh HTTPS connections."""

    def __init__(self, fake, context):
        self.fake = fake
        self.context = context
        self._token = None

    def connection(self, host="127.0.0.1"):
        return http.client.HTTPSConnection(host, self.fake.port, context=self.context,
                                           timeout=5)

    def send(self, method, path, body=None, headers=None):
        conn = self.connection()
        try:
            return exchange(conn, method, path, body, headers)
        finally:
            conn.close()

    def iam(self, api_key=API_KEY, grant=GRANT, path="/identity/token"):
        form = urllib.parse.urlencode({"grant_type": grant, "apikey": api_key}).encode()
        return self.send("POST", path, form,
                         {"Content-Type": "application/x-www-form-urlencoded",
                          "Accept": "application/json"})

    def token(self):
        if self._token is None:
            answer = self.iam()
            assert answer.status == 200, answer.raw
            self._token = answer.json["access_token"]
        return self._token

    def headers(self, token=None, instance=None, extra=None):
        h = {"Authorization": f"Bearer {token or self.token()}",
             "bluemix-instance": instance or self.fake.instance_id,
             "Content-Type": "application/json", "Accept": "application/json"}
        h.update(extra or {})
        return h

    def action(self, key, action, body, **kw):
        return self.send("POST", f"/api/v2/keys/{key}/actions/{action}", body,
                         self.headers(**kw))

    def wrap(self, key, plaintext=None, aad=None, **kw):
        body = {}
        if plaintext is not None:
            body["plaintext"] = base64.b64encode(plaintext).decode()
        if aad is not None:
            body["aad"] = aad
        return self.action(key, "wrap", body, **kw)

    def unwrap(self, key, ciphertext, aad=None, action="unwrap", **kw):
        body = {"ciphertext": ciphertext}
        if aad is not None:
            body["aad"] = aad
        return self.action(key, action, body, **kw)

    def metadata(self, key, **kw):
        return self.send("GET", f"/api/v2/keys/{key}/metadata", None, self.headers(**kw))


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    return make_tls(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def context(tls):
    return ssl.create_default_context(cafile=tls[0])


@pytest.fixture
def fake(tls):
    f = FakeKeyProtect(tls[1], tls[2]).start()
    f.root = f.create_root_key(alias="kmipd-crk")
    yield f
    f.stop()


@pytest.fixture
def kp(fake, context):
    return Client(fake, context)


DEK = bytes(range(32))


def wrapped(kp, aad=("tenant-1", "kek-v1"), plaintext=DEK):
    answer = kp.wrap(kp.fake.root, plaintext, list(aad) if aad is not None else None)
    assert answer.status == 200, answer.raw
    return answer.json["ciphertext"]


# -- IAM -------------------------------------------------------------------------------------

def test_iam_issues_bearer_tokens_on_both_paths(kp):
    for path in ("/identity/token", "/oidc/token"):
        before = time.time()
        answer = kp.iam(path=path)
        assert answer.status == 200, answer.raw
        body = answer.json
        assert body["token_type"] == "Bearer"
        assert body["refresh_token"] == "not_supported"
        assert body["expires_in"] == 3600
        assert before + 3600 - 2 <= body["expiration"] <= time.time() + 3600 + 1
        assert body["scope"] == "ibm openid"
        assert len(body["access_token"]) >= 32
        assert answer.headers["content-length"] == str(len(answer.raw))
    first, second = (r["json"] for r in kp.fake.calls("token"))
    assert [r["form"]["apikey"] for r in kp.fake.calls("token")] == [API_KEY, API_KEY]
    assert first is None and second is None  # form bodies are not JSON


def test_iam_rejects_unknown_key_and_wrong_grant(kp):
    answer = kp.iam(api_key="nope")
    assert answer.status == 400
    assert answer.json["errorCode"] == "BXNIM0415E"
    assert answer.json["errorMessage"] == "Provided API key could not be found."
    assert isinstance(answer.json["context"], dict)
    answer = kp.iam(grant="password")
    assert answer.status == 400 and answer.json["errorCode"].startswith("BXNIM")
    assert answer.json["errorCode"] != "BXNIM0415E"


def test_kms_needs_a_valid_token(kp):
    no_auth = {"bluemix-instance": kp.fake.instance_id}
    answer = kp.send("GET", f"/api/v2/keys/{kp.fake.root}/metadata", None, no_auth)
    assert answer.status == 401
    assert answer.json["resources"] == [
        {"errorMsg": "Unauthorized: The user does not have access to the specified resource"}]
    assert kp.metadata(kp.fake.root, token="made-up").status == 401
    assert kp.metadata(kp.fake.root).status == 200


def test_expired_tokens_get_401(kp):
    token = kp.token()
    assert kp.metadata(kp.fake.root, token=token).status == 200
    kp.fake.expire_tokens()
    assert kp.metadata(kp.fake.root, token=token).status == 401
    kp.fake.token_ttl = 0
    short = kp.iam()
    assert short.json["expires_in"] == 0
    assert kp.metadata(kp.fake.root, token=short.json["access_token"]).status == 401
    kp.fake.token_ttl = 3600
    fresh = kp.iam().json["access_token"]
    assert kp.metadata(kp.fake.root, token=fresh).status == 200


def test_revoked_api_key_fails_at_iam_and_its_tokens_die(kp):
    token = kp.token()
    kp.fake.revoke_api_key(API_KEY)
    answer = kp.iam()
    assert answer.status == 400 and answer.json["errorCode"] == "BXNIM0415E"
    assert kp.metadata(kp.fake.root, token=token).status == 401
    kp.fake.restore_api_key(API_KEY)
    assert kp.metadata(kp.fake.root, token=token).status == 401
    fresh = kp.iam()
    assert fresh.status == 200
    assert kp.metadata(kp.fake.root, token=fresh.json["access_token"]).status == 200


def test_bluemix_instance_header(kp):
    headers = kp.headers()
    del headers["bluemix-instance"]
    answer = kp.send("GET", f"/api/v2/keys/{kp.fake.root}/metadata", None, headers)
    assert answer.status == 400 and answer.code == "BAD_REQUEST"
    assert kp.metadata(kp.fake.root, instance="00000000-0000-4000-8000-000000000000"
                       ).status == 401


def test_deny_access_is_403(kp):
    kp.fake.deny_access = True
    answer = kp.wrap(kp.fake.root, DEK)
    assert answer.status == 403 and answer.json["resources"][0]["errorMsg"] == "Forbidden"
    assert answer.code == "FORBIDDEN"
    kp.fake.deny_access = False
    assert kp.wrap(kp.fake.root, DEK).status == 200


# -- wrap / unwrap / rewrap ------------------------------------------------------------------

def test_wrap_unwrap_round_trip_with_aad(kp):
    aad = ["tenant-1", "kek-v1"]
    answer = kp.wrap(kp.fake.root, DEK, aad)
    assert answer.status == 200, answer.raw
    version = kp.fake.current_version(kp.fake.root)
    assert answer.json["keyVersion"] == {"id": version}
    assert "plaintext" not in answer.json
    ciphertext = answer.json["ciphertext"]
    envelope = json.loads(base64.b64decode(ciphertext))
    assert envelope["handle"] == version and envelope["version"] == "4.0.0"
    assert len(base64.b64decode(envelope["iv"])) == 12
    assert len(base64.b64decode(envelope["ciphertext"])) == len(DEK) + 16
    assert DEK not in base64.b64decode(envelope["ciphertext"])

    back = kp.unwrap(kp.fake.root, ciphertext, aad)
    assert back.status == 200, back.raw
    assert base64.b64decode(back.json["plaintext"]) == DEK
    assert back.json["keyVersion"] == {"id": version}
    assert "rewrappedKeyVersion" not in back.json and "ciphertext" not in back.json

    again = kp.wrap(kp.fake.root, DEK, aad).json["ciphertext"]
    assert again != ciphertext  # fresh IV each time


def test_legacy_query_action_form_and_alias(kp):
    headers = kp.headers(extra={"Content-Type": "application/vnd.ibm.kms.key_action_wrap+json"})
    body = {"plaintext": base64.b64encode(DEK).decode(), "aad": ["a"]}
    answer = kp.send("POST", "/api/v2/keys/kmipd-crk?action=wrap", body, headers)
    assert answer.status == 200, answer.raw
    body = {"ciphertext": answer.json["ciphertext"], "aad": ["a"]}
    back = kp.send("POST", f"/api/v2/keys/{kp.fake.root}?action=unwrap", body, kp.headers())
    assert back.status == 200 and base64.b64decode(back.json["plaintext"]) == DEK
    assert [r["json"]["aad"] for r in kp.fake.calls("wrap")] == [["a"]]
    assert len(kp.fake.calls("unwrap")) == 1


def test_wrap_without_plaintext_generates_a_dek(kp):
    answer = kp.wrap(kp.fake.root, aad=["x"])
    assert answer.status == 200
    dek = base64.b64decode(answer.json["plaintext"])
    assert len(dek) == 32
    back = kp.unwrap(kp.fake.root, answer.json["ciphertext"], ["x"])
    assert base64.b64decode(back.json["plaintext"]) == dek


def test_wrong_aad_tampering_and_other_keys_are_422(kp):
    ciphertext = wrapped(kp)
    for aad in (["tenant-2", "kek-v1"], ["tenant-1"], None, ["kek-v1", "tenant-1"]):
        answer = kp.unwrap(kp.fake.root, ciphertext, aad)
        assert answer.status == 422, aad
        assert answer.code == "UNPROCESSABLE_CIPHERTEXT_ERR"

    envelope = json.loads(base64.b64decode(ciphertext))
    ct = bytearray(base64.b64decode(envelope["ciphertext"]))
    ct[0] ^= 1
    envelope["ciphertext"] = base64.b64encode(bytes(ct)).decode()
    tampered = base64.b64encode(json.dumps(envelope).encode()).decode()
    assert kp.unwrap(kp.fake.root, tampered, ["tenant-1", "kek-v1"]).status == 422
    garbage = base64.b64encode(b"not an envelope at all").decode()
    assert kp.unwrap(kp.fake.root, garbage, ["tenant-1", "kek-v1"]).code == \
        "UNPROCESSABLE_CIPHERTEXT_ERR"

    other = kp.fake.create_root_key(name="other")
    answer = kp.unwrap(other, ciphertext, ["tenant-1", "kek-v1"])
    assert answer.status == 422 and answer.code == "UNPROCESSABLE_CIPHERTEXT_ERR"


def test_body_validation(kp):
    root = kp.fake.root
    answer = kp.send("POST", f"/api/v2/keys/{root}/actions/unwrap", None, kp.headers())
    assert answer.status == 400 and answer.code == "NO_BODY_ERR"
    answer = kp.send("POST", f"/api/v2/keys/{root}/actions/wrap", b"{not json", kp.headers())
    assert answer.status == 400 and answer.code == "BAD_BODY_ERR"
    answer = kp.action(root, "wrap", {"plaintext": "***not base64***"})
    assert answer.status == 400 and answer.code == "INVALID_FIELD_ERR"
    answer = kp.unwrap(root, "%%%")
    assert answer.status == 400 and answer.code == "INVALID_FIELD_ERR"
    assert kp.wrap(root, DEK, ["x" * 256]).code == "INVALID_FIELD_ERR"
    assert kp.wrap(root, DEK, [1, 2]).code == "INVALID_FIELD_ERR"
    assert kp.wrap(root, DEK, "not-a-list").code == "INVALID_FIELD_ERR"
    assert kp.wrap(root, DEK, ["x" * 255]).status == 200
    form = kp.headers(extra={"Content-Type": "application/x-www-form-urlencoded"})
    answer = kp.send("POST", f"/api/v2/keys/{root}/actions/wrap", b"{}", form)
    assert answer.status == 415
    error = kp.wrap(root, DEK, [1]).json
    assert error["metadata"] == {"collectionType": "application/vnd.ibm.kms.error+json",
                                 "collectionTotal": 1}
    reason = error["resources"][0]["reasons"][0]
    assert reason["status"] == 400 and reason["moreInfo"].startswith("https://")


# -- key states ------------------------------------------------------------------------------

def test_disable_enable(kp):
    ciphertext = wrapped(kp)
    kp.fake.disable(kp.fake.root)
    for answer in (kp.wrap(kp.fake.root, DEK),
                   kp.unwrap(kp.fake.root, ciphertext, ["tenant-1", "kek-v1"])):
        assert answer.status == 409 and answer.code == "KEY_ACTION_INVALID_STATE_ERR"
    assert kp.metadata(kp.fake.root).json["resources"][0]["state"] == 2
    kp.fake.enable(kp.fake.root)
    assert kp.wrap(kp.fake.root, DEK).status == 200
    assert kp.unwrap(kp.fake.root, ciphertext, ["tenant-1", "kek-v1"]).status == 200


def test_deactivated_key_unwraps_but_does_not_wrap(kp):
    ciphertext = wrapped(kp)
    kp.fake.deactivate(kp.fake.root)
    assert kp.wrap(kp.fake.root, DEK).code == "KEY_ACTION_INVALID_STATE_ERR"
    assert kp.unwrap(kp.fake.root, ciphertext, ["tenant-1", "kek-v1"]).status == 200
    answer = kp.unwrap(kp.fake.root, ciphertext, ["tenant-1", "kek-v1"], action="rewrap")
    assert answer.status == 200
    kp.fake.set_state(kp.fake.root, 0)
    assert kp.unwrap(kp.fake.root, ciphertext, ["tenant-1", "kek-v1"]).status == 409


def test_delete_restore_purge(kp):
    ciphertext = wrapped(kp)
    kp.fake.delete(kp.fake.root)
    answer = kp.unwrap(kp.fake.root, ciphertext, ["tenant-1", "kek-v1"])
    assert answer.status == 410 and answer.code == "KEY_DELETED_ERR"
    assert kp.wrap(kp.fake.root, DEK).status == 410
    meta = kp.metadata(kp.fake.root)
    assert meta.status == 200 and meta.json["resources"][0]["state"] == 5
    kp.fake.restore(kp.fake.root)
    assert kp.unwrap(kp.fake.root, ciphertext, ["tenant-1", "kek-v1"]).status == 200
    kp.fake.delete(kp.fake.root)
    kp.fake.purge(kp.fake.root)
    answer = kp.unwrap(kp.fake.root, ciphertext, ["tenant-1", "kek-v1"])
    assert answer.status == 404 and answer.code == "KEY_NOT_FOUND_ERR"
    assert kp.metadata(kp.fake.root).code == "KEY_NOT_FOUND_ERR"
    with pytest.raises(KeyError):
        kp.fake.state(kp.fake.root)


def test_standard_key_is_refused(kp):
    std = kp.fake.create_standard_key()
    answer = kp.wrap(std, DEK)
    assert answer.status == 400 and answer.code == "KEY_ROOT_REQ_ERR"
    assert kp.unwrap(std, wrapped(kp)).code == "KEY_ROOT_REQ_ERR"
    assert kp.metadata(std).json["resources"][0]["extractable"] is True


# -- rotation, rewrap, metadata --------------------------------------------------------------

def test_rotation_unwrap_returns_a_rewrapped_ciphertext(kp):
    aad = ["tenant-1", "kek-v1"]
    old_version = kp.fake.current_version(kp.fake.root)
    ciphertext = wrapped(kp, aad)
    new_version = kp.fake.rotate(kp.fake.root)
    assert new_version != old_version
    assert kp.fake.key_info(kp.fake.root)["versions"] == [old_version, new_version]

    answer = kp.unwrap(kp.fake.root, ciphertext, aad)
    assert answer.status == 200
    assert base64.b64decode(answer.json["plaintext"]) == DEK
    assert answer.json["keyVersion"] == {"id": old_version}
    assert answer.json["rewrappedKeyVersion"] == {"id": new_version}
    rewrapped = answer.json["ciphertext"]
    assert rewrapped != ciphertext

    again = kp.unwrap(kp.fake.root, rewrapped, aad)
    assert again.status == 200
    assert base64.b64decode(again.json["plaintext"]) == DEK
    assert again.json["keyVersion"] == {"id": new_version}
    assert "rewrappedKeyVersion" not in again.json and "ciphertext" not in again.json
    assert kp.unwrap(kp.fake.root, rewrapped, ["tenant-1"]).status == 422
    # the old ciphertext still works after rotation
    assert kp.unwrap(kp.fake.root, ciphertext, aad).status == 200
    assert kp.wrap(kp.fake.root, DEK).json["keyVersion"] == {"id": new_version}


def test_rewrap(kp):
    aad = ["t"]
    ciphertext = wrapped(kp, aad)
    new_version = kp.fake.rotate(kp.fake.root)
    answer = kp.unwrap(kp.fake.root, ciphertext, aad, action="rewrap")
    assert answer.status == 200
    assert answer.json["keyVersion"] == {"id": new_version}
    assert answer.json["rewrappedKeyVersion"] == {"id": new_version}
    assert "plaintext" not in answer.json
    back = kp.unwrap(kp.fake.root, answer.json["ciphertext"], aad)
    assert base64.b64decode(back.json["plaintext"]) == DEK
    assert back.json["keyVersion"] == {"id": new_version}
    assert kp.unwrap(kp.fake.root, ciphertext, ["u"], action="rewrap").status == 422


def test_metadata(kp):
    answer = kp.metadata("kmipd-crk")
    assert answer.status == 200
    assert answer.json["metadata"] == {"collectionType": "application/vnd.ibm.kms.key+json",
                                       "collectionTotal": 1}
    (key,) = answer.json["resources"]
    assert key["id"] == kp.fake.root and key["name"] == "kmipd-root"
    assert key["state"] == 1 and key["extractable"] is False
    assert key["aliases"] == ["kmipd-crk"]
    assert kp.fake.instance_id in key["crn"]
    assert key["keyVersion"]["id"] == kp.fake.current_version(kp.fake.root)
    new_version = kp.fake.rotate(kp.fake.root)
    assert kp.metadata(kp.fake.root).json["resources"][0]["keyVersion"]["id"] == new_version
    kp.fake.disable(kp.fake.root)
    assert kp.metadata(kp.fake.root).json["resources"][0]["state"] == 2
    answer = kp.metadata("no-such-key")
    assert answer.status == 404 and answer.code == "KEY_NOT_FOUND_ERR"


def test_unknown_paths_are_404(kp):
    for method, path in (("GET", "/"), ("GET", "/api/v2/keys"), ("POST", "/nowhere"),
                         ("POST", f"/api/v2/keys/{kp.fake.root}/actions/explode")):
        answer = kp.send(method, path, b"{}", kp.headers())
        assert answer.status == 404, path
        assert answer.json["resources"][0]["reasons"][0]["status"] == 404


# -- faults ----------------------------------------------------------------------------------

def test_inject_429_with_retry_after_then_success(kp):
    kp.token()
    kp.fake.inject(429, retry_after=2, path_contains="/actions/wrap")
    answer = kp.wrap(kp.fake.root, DEK)
    assert answer.status == 429
    assert answer.headers["retry-after"] == "2"
    assert answer.json["resources"][0]["reasons"][0]["status"] == 429
    assert kp.wrap(kp.fake.root, DEK).status == 200
    assert kp.fake.count("/actions/wrap", status=429) == 1
    assert kp.fake.count("/actions/wrap", status=200) == 1


def test_injections_queue_match_paths_and_can_persist(kp):
    kp.token()
    kp.fake.inject(503, path_contains="unwrap")
    kp.fake.inject(500, count=2)
    assert kp.wrap(kp.fake.root, DEK).status == 500
    assert kp.unwrap(kp.fake.root, "AAAA").status == 503
    assert kp.metadata(kp.fake.root).status == 500
    assert kp.metadata(kp.fake.root).status == 200
    kp.fake.inject(502, count=None, path_contains="metadata", body={"custom": True})
    for _ in range(3):
        answer = kp.metadata(kp.fake.root)
        assert answer.status == 502 and answer.json == {"custom": True}
    assert kp.wrap(kp.fake.root, DEK).status == 200
    kp.fake.clear_faults()
    assert kp.metadata(kp.fake.root).status == 200


def test_inject_applies_to_iam_and_status_0_drops(kp):
    kp.fake.inject(500, path_contains="/identity/token")
    answer = kp.iam()
    assert answer.status == 500 and answer.json["errorCode"].startswith("BXNIM")
    kp.fake.inject(0)
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
        kp.iam()
    assert kp.fake.count("/identity/token", status=0) == 1
    assert kp.iam().status == 200


def test_latency_and_injected_delay(kp):
    kp.token()
    kp.fake.latency = 0.15
    start = time.monotonic()
    assert kp.metadata(kp.fake.root).status == 200
    assert time.monotonic() - start >= 0.15
    kp.fake.latency = 0
    kp.fake.inject(503, delay=0.15)
    start = time.monotonic()
    assert kp.metadata(kp.fake.root).status == 503
    assert time.monotonic() - start >= 0.15


def test_hpcs_uninitialised(kp):
    kp.fake.hpcs_uninitialised = True
    answer = kp.wrap(kp.fake.root, DEK)
    assert answer.status == 400
    assert answer.code == "CRYPTO_UNIT_NOT_INITIALIZED"
    assert "CKR_IBM_WK_NOT_INITIALIZED" in answer.json["resources"][0]["errorMsg"]
    assert "CKR_IBM_WK_NOT_INITIALIZED" in answer.json["resources"][0]["reasons"][0]["message"]
    assert kp.metadata(kp.fake.root).status == 200
    kp.fake.hpcs_uninitialised = False
    assert kp.wrap(kp.fake.root, DEK).status == 200


# -- transport, recording --------------------------------------------------------------------

def test_correlation_id_is_echoed_and_requests_recorded(kp):
    answer = kp.wrap(kp.fake.root, DEK, ["a"], extra={"correlation-id": "c0ffee-1"})
    assert answer.headers["correlation-id"] == "c0ffee-1"
    assert "correlation-id" not in kp.metadata(kp.fake.root).headers
    (call,) = kp.fake.calls("wrap")
    assert call["headers"]["correlation-id"] == "c0ffee-1"
    assert call["headers"]["bluemix-instance"] == kp.fake.instance_id
    assert call["json"]["aad"] == ["a"] and call["status"] == 200
    assert json.loads(call["body"]) == call["json"] and call["method"] == "POST"
    assert len(kp.fake.calls("metadata")) == 1 and len(kp.fake.calls("token")) == 1
    assert kp.fake.stats() == {"token": 1, "wrap": 1, "unwrap": 0, "rewrap": 0,
                               "metadata": 1}
    kp.fake.clear_requests()
    assert kp.fake.requests == [] and kp.fake.count() == 0


def test_keep_alive_and_localhost_name(kp):
    conn = kp.connection("localhost")
    try:
        kp.token()
        conn.connect()
        local = conn.sock.getsockname()
        for _ in range(3):
            answer = exchange(conn, "GET", f"/api/v2/keys/{kp.fake.root}/metadata",
                              headers=kp.headers())
            assert answer.status == 200
            assert answer.headers["content-length"] == str(len(answer.raw))
            assert conn.sock is not None and conn.sock.getsockname() == local
    finally:
        conn.close()


def test_untrusted_client_is_refused(kp):
    answer = None
    with pytest.raises(ssl.SSLError):
        ctx = ssl.create_default_context()
        conn = http.client.HTTPSConnection("127.0.0.1", kp.fake.port, context=ctx, timeout=5)
        answer = exchange(conn, "GET", "/")
    assert answer is None
    assert kp.iam().status == 200


def test_stop_refuses_and_start_rebinds_the_same_port(kp, capfd):
    fake = kp.fake
    port = fake.port
    assert fake.url == f"https://127.0.0.1:{port}"
    kp.token()
    idle = kp.connection()
    assert exchange(idle, "GET", f"/api/v2/keys/{fake.root}/metadata",
                    headers=kp.headers()).status == 200
    with socket.create_connection(("127.0.0.1", port)) as raw:
        raw.sendall(b"\x16\x03\x01\x00")          # a handshake cut short
    fake.stop()
    fake.stop()
    assert not fake.running
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError, ssl.SSLError)):
        exchange(idle, "GET", f"/api/v2/keys/{fake.root}/metadata", headers=kp.headers())
    idle.close()

    fake.start()
    assert fake.port == port
    answer = kp.metadata(fake.root)
    assert answer.status == 200  # tokens and keys survive a restart
    assert capfd.readouterr().err == ""


def test_context_manager(tls, context):
    with FakeKeyProtect(tls[1], tls[2], instance_id="inst-1", api_keys=("k1", "k2")) as f:
        assert f.instance_id == "inst-1"
        client = Client(f, context)
        assert client.iam(api_key="k2").status == 200
        assert client.iam(api_key=API_KEY).status == 400
        port = f.port
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


def test_standalone_program(tmp_path, context):
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "fake_keyprotect.py"), "--port", "0",
         "--dir", str(tmp_path), "--api-key", "svc-key", "--root-key-alias", "crk"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        info = json.loads(proc.stdout.readline())
        assert set(info) >= {"url", "instance_id", "root_key_id", "ca"}
        ctx = ssl.create_default_context(cafile=info["ca"])

        def call(path, data=None, headers=None):
            req = urllib.request.Request(info["url"] + path, data=data, headers=headers or {})
            with urllib.request.urlopen(req, context=ctx, timeout=5) as resp:
                return json.load(resp)

        form = urllib.parse.urlencode({"grant_type": GRANT, "apikey": "svc-key"}).encode()
        token = call("/identity/token", form)["access_token"]
        headers = {"Authorization": f"Bearer {token}",
                   "bluemix-instance": info["instance_id"],
                   "Content-Type": "application/json"}
        body = json.dumps({"plaintext": base64.b64encode(DEK).decode()}).encode()
        wrapped_ = call("/api/v2/keys/crk/actions/wrap", body, headers)
        body = json.dumps({"ciphertext": wrapped_["ciphertext"]}).encode()
        plain = call(f"/api/v2/keys/{info['root_key_id']}/actions/unwrap", body, headers)
        assert base64.b64decode(plain["plaintext"]) == DEK
        with pytest.raises(urllib.error.HTTPError) as err:
            call("/api/v2/keys/crk/metadata", headers={"bluemix-instance": "x"})
        assert err.value.code == 401
        assert call("/_fake/stats") == {"token": 1, "wrap": 1, "unwrap": 1, "rewrap": 0,
                                        "metadata": 1}
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        assert proc.stderr.read() == b""
        proc.stdout.close()
        proc.stderr.close()
    assert os.stat(tmp_path / "server-key.pem").st_mode & 0o077 == 0
