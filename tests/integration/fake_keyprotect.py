"""A stand-in for IBM Key Protect / Hyper Protect Crypto Services and IBM Cloud IAM, served
over real HTTPS on loopback, for kmipd's root-key client.

One base URL serves both the IAM token endpoint (`/identity/token`, `/oidc/token`) and the
key-management API v2 (wrap, unwrap, rewrap, metadata). Root keys are real AES-256 keys and
ciphertexts are real AES-256-GCM envelopes with the AAD, the root key id and the key version
bound in, so a wrong AAD, a tampered ciphertext or another root key's ciphertext fails the
way it does against the service (422 UNPROCESSABLE_CIPHERTEXT_ERR).

Tests drive the key lifecycle directly (disable, enable, deactivate, delete, restore, purge,
rotate), break IAM (expire_tokens, revoke_api_key), inject faults (inject, latency,
hpcs_uninitialised, deny_access) and read back every request received (requests, count,
calls).

Run as a program, it serves one root key until SIGTERM or SIGINT:

    python3 fake_keyprotect.py --port 8443 --dir DIR [--api-key K] [--root-key-alias A]

and prints one line of JSON {"url", "instance_id", "root_key_id", "ca", ...} once ready.
"""
import argparse
import base64
import binascii
import datetime
import http
import http.server
import ipaddress
import json
import os
import pathlib
import secrets
import signal
import socket
import socketserver
import ssl
import sys
import threading
import time
import urllib.parse
import uuid

from cryptography import x509
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

ACTIVE, SUSPENDED, DEACTIVATED, DESTROYED, PRE_ACTIVATION = 1, 2, 3, 5, 0

GRANT_APIKEY = "urn:ibm:params:oauth:grant-type:apikey"
TOKEN_PATHS = ("/identity/token", "/oidc/token")
KEY_ACTIONS = ("wrap", "unwrap", "rewrap")
STAT_ACTIONS = ("token", "wrap", "unwrap", "rewrap", "metadata")
MORE_INFO = "https://cloud.ibm.com/apidocs/key-protect"
ERROR_TYPE = "application/vnd.ibm.kms.error+json"
KEY_TYPE = "application/vnd.ibm.kms.key+json"
UNAUTHORIZED_MSG = "Unauthorized: The user does not have access to the specified resource"
WK_NOT_INITIALIZED = "CKR_IBM_WK_NOT_INITIALIZED"
ENVELOPE_VERSION = "4.0.0"
MAX_AAD_LEN = 255
MAX_PLAINTEXT = 7500
MAX_BODY = 1 << 20
HANDSHAKE_TIMEOUT = 10
IDLE_TIMEOUT = 60


def make_tls(directory):
    """Writes a CA and a server certificate for DNS:localhost and IP:127.0.0.1 (EC P-256,
    valid from a day ago for 30 days) into @directory; returns (ca, cert, key) paths."""
    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)
    not_before, not_after = now - datetime.timedelta(days=1), now + datetime.timedelta(days=30)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Fake Key Protect test CA")])
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name).issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before).not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=False, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
            encipher_only=False, decipher_only=False), critical=True)
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256()))

    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before).not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
            encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
                       critical=False)
        .sign(ca_key, hashes.SHA256()))

    ca_path = directory / "ca.pem"
    cert_path = directory / "server.pem"
    key_path = directory / "server-key.pem"
    ca_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_bytes = key.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption())
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key_bytes)
    return str(ca_path), str(cert_path), str(key_path)


def _now_iso():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _b64(data):
    return base64.b64encode(data).decode("ascii")


def _unb64(text):
    """Strict base64 decoding; ValueError when @text is not a base64 string."""
    if not isinstance(text, str):
        raise ValueError("not a string")
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as e:
        raise ValueError(str(e)) from e


def _json_bytes(obj):
    return json.dumps(obj, separators=(",", ":")).encode("utf-8")


def kms_error(status, code, message, error_msg=None):
    """The key API's error body (any status but 401)."""
    phrase = _phrase(status)
    return {
        "metadata": {"collectionType": ERROR_TYPE, "collectionTotal": 1},
        "resources": [{
            "errorMsg": error_msg or f"{phrase}: {message}",
            "reasons": [{"code": code, "message": message, "status": status,
                         "moreInfo": MORE_INFO}],
        }],
    }


def kms_unauthorized():
    """The key API's 401 body: errorMsg only."""
    return {"metadata": {"collectionType": ERROR_TYPE, "collectionTotal": 1},
            "resources": [{"errorMsg": UNAUTHORIZED_MSG}]}


def iam_error(code, message, path=""):
    """IAM's error body."""
    return {"errorCode": code, "errorMessage": message,
            "context": {"requestId": uuid.uuid4().hex, "requestType": "incoming.OIDC_Token",
                        "url": path, "instanceId": "fake-iam", "host": "fake-iam",
                        "startTime": _now_iso(), "endTime": _now_iso(),
                        "elapsedTime": "0", "locale": "en_US", "clusterName": "fake"}}


def _phrase(status):
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _code_for(status):
    return {400: "BAD_REQUEST", 401: "UNAUTHORIZED", 403: "FORBIDDEN",
            404: "NOT_FOUND_ERR", 408: "REQUEST_TIMEOUT", 409: "CONFLICT",
            429: "TOO_MANY_REQUESTS", 500: "INTERNAL_SERVER_ERR",
            502: "BAD_GATEWAY", 503: "SERVICE_UNAVAILABLE",
            504: "GATEWAY_TIMEOUT"}.get(status, _phrase(status).upper().replace(" ", "_"))


def classify(method, target):
    """Which provider call a request is: token, wrap, unwrap, rewrap, metadata or None."""
    split = urllib.parse.urlsplit(target)
    path = split.path.rstrip("/") or "/"
    if path in TOKEN_PATHS:
        return "token"
    parts = path.split("/")
    if len(parts) >= 5 and parts[1:4] == ["api", "v2", "keys"]:
        rest = parts[5:]
        if len(rest) == 2 and rest[0] == "actions" and rest[1] in KEY_ACTIONS:
            return rest[1]
        if not rest:
            action = urllib.parse.parse_qs(split.query).get("action", [None])[-1]
            if action in KEY_ACTIONS:
                return action
        if rest == ["metadata"]:
            return "metadata"
    return None


class _Reply(Exception):
    """Ends handling of a request with @status and JSON @body."""

    def __init__(self, status, body, headers=None):
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = headers or {}


class _Key:
    def __init__(self, name, alias, extractable):
        self.id = str(uuid.uuid4())
        self.name = name
        self.aliases = [alias] if alias else []
        self.extractable = extractable
        self.state = ACTIVE
        self.created = _now_iso()
        self.updated = self.created
        self.rotated = None
        self.versions = []
        self.add_version()

    def add_version(self):
        version = {"id": str(uuid.uuid4()), "key": secrets.token_bytes(32),
                   "created": _now_iso()}
        self.versions.append(version)
        return version

    @property
    def current(self):
        return self.versions[-1]

    def version(self, version_id):
        for v in self.versions:
            if v["id"] == version_id:
                return v
        return None


def _gcm_aad(key_id, version_id, aad):
    return json.dumps({"aad": aad, "key": key_id, "version": version_id},
                      separators=(",", ":"), sort_keys=True,
                      ensure_ascii=False).encode("utf-8")


def _seal(key, version, plaintext, aad):
    iv = secrets.token_bytes(12)
    ct = AESGCM(version["key"]).encrypt(iv, plaintext, _gcm_aad(key.id, version["id"], aad))
    envelope = {"ciphertext": _b64(ct), "iv": _b64(iv), "version": ENVELOPE_VERSION,
                "handle": version["id"]}
    return _b64(_json_bytes(envelope))


def _open(key, ciphertext, aad):
    """(plaintext, version) or raises _Reply 422."""
    bad = _Reply(422, kms_error(422, "UNPROCESSABLE_CIPHERTEXT_ERR",
                                "The provided ciphertext is invalid or corrupted"))
    try:
        envelope = json.loads(_unb64(ciphertext).decode("utf-8"))
        version = key.version(envelope["handle"])
        iv = _unb64(envelope["iv"])
        ct = _unb64(envelope["ciphertext"])
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise bad from None
    if version is None or len(iv) != 12 or len(ct) < 16:
        raise bad
    try:
        plaintext = AESGCM(version["key"]).decrypt(iv, ct, _gcm_aad(key.id, version["id"], aad))
    except InvalidTag:
        raise bad from None
    return plaintext, version


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address, fake, context):
        self.fake = fake
        self.context = context
        self.conns = set()
        self.conns_lock = threading.Lock()
        self.closing = False
        super().__init__(address, _Handler)

    def server_bind(self):
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def process_request_thread(self, request, client_address):
        try:
            request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            request.settimeout(HANDSHAKE_TIMEOUT)
            conn = self.context.wrap_socket(request, server_side=True)
        except (OSError, ValueError):
            self.shutdown_request(request)
            return
        with self.conns_lock:
            if self.closing:
                self.shutdown_request(conn)
                return
            self.conns.add(conn)
        try:
            self.finish_request(conn, client_address)
        except Exception:
            pass
        finally:
            with self.conns_lock:
                self.conns.discard(conn)
            self.shutdown_request(conn)

    def handle_error(self, request, client_address):
        pass

    def close_clients(self):
        with self.conns_lock:
            self.closing = True
            for conn in self.conns:
                try:
                    socket.socket.shutdown(conn, socket.SHUT_RDWR)
                except OSError:
                    pass


class _BadRequestBody(Exception):
    pass


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakeKeyProtect/1.0"
    timeout = IDLE_TIMEOUT

    def log_message(self, format, *args):
        pass

    def version_string(self):
        return self.server_version

    def _read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks, total = [], 0
            while True:
                line = self.rfile.readline(1024)
                if not line:
                    raise ConnectionError("client went away")
                try:
                    size = int(line.split(b";")[0].strip(), 16)
                except ValueError:
                    raise _BadRequestBody() from None
                if size == 0:
                    while self.rfile.readline(1024).strip():
                        pass
                    return b"".join(chunks)
                total += size
                if total > MAX_BODY:
                    raise _BadRequestBody()
                chunk = self.rfile.read(size)
                if len(chunk) != size:
                    raise ConnectionError("client went away")
                chunks.append(chunk)
                self.rfile.readline(1024)
        length = self.headers.get("Content-Length")
        if not length:
            return b""
        try:
            n = int(length)
        except ValueError:
            raise _BadRequestBody() from None
        if n < 0 or n > MAX_BODY:
            raise _BadRequestBody()
        body = self.rfile.read(n)
        if len(body) != n:
            raise ConnectionError("client went away")
        return body

    def send_error(self, code, message=None, explain=None):
        self.close_connection = True
        payload = _json_bytes(kms_error(code, _code_for(code), message or _phrase(code)))
        self._send(code, {}, b"" if self.command == "HEAD" else payload)

    def _send(self, status, headers, payload):
        if not hasattr(self, "_headers_buffer"):
            self._headers_buffer = []
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in headers.items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        head_end = b"" if self.request_version == "HTTP/0.9" else b"\r\n"
        self._headers_buffer.append(head_end + payload)
        self.flush_headers()

    def _run(self):
        headers = {k.lower(): v for k, v in self.headers.items()}
        echo = {}
        if headers.get("correlation-id"):
            echo["correlation-id"] = headers["correlation-id"]
        try:
            body = self._read_body()
        except _BadRequestBody:
            self.close_connection = True
            self._send(400, echo, _json_bytes(kms_error(400, "BAD_BODY_ERR",
                                                        "Request body could not be read")))
            return
        answer = self.server.fake._serve(self.command, self.path, headers, body)
        if answer is None:
            self.close_connection = True
            try:
                socket.socket.shutdown(self.connection, socket.SHUT_RDWR)
            except OSError:
                pass
            return
        status, extra, payload = answer
        self._send(status, {**extra, **echo}, payload)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _run


class FakeKeyProtect:
    """Key Protect / HPCS key API v2 and IAM on https://127.0.0.1:PORT."""

    def __init__(self, cert, key, host="127.0.0.1", port=0, instance_id=None,
                 api_keys=("test-api-key",)):
        self.cert = str(cert)
        self.key = str(key)
        self.host = host
        self.port = port
        self.instance_id = instance_id or str(uuid.uuid4())
        self.api_keys = set(api_keys)
        self.revoked_api_keys = set()
        self.token_ttl = 3600
        self.latency = 0.0
        self.deny_access = False
        self.hpcs_uninitialised = False
        self.serve_stats = False
        self.record_requests = True
        self.requests = []
        self._lock = threading.RLock()
        self._tokens = {}
        self._keys = {}
        self._faults = []
        self._stats = dict.fromkeys(STAT_ACTIONS, 0)
        self._server = None
        self._thread = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self):
        """Binds (the same port as before after a stop) and serves in a background thread."""
        with self._lock:
            if self._server is not None:
                return self
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.minimum_version = ssl.TLSVersion.TLSv1_2
            context.load_cert_chain(self.cert, self.key)
            server = _Server((self.host, self.port), self, context)
            self.port = server.server_address[1]
            self._server = server
            self._thread = threading.Thread(target=server.serve_forever,
                                            kwargs={"poll_interval": 0.05},
                                            name=f"fake-keyprotect-{self.port}", daemon=True)
            self._thread.start()
        return self

    def stop(self):
        """Stops listening and cuts every open client connection."""
        with self._lock:
            server, thread = self._server, self._thread
            self._server = self._thread = None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        server.close_clients()
        thread.join(timeout=5)

    @property
    def running(self):
        return self._server is not None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def url(self):
        if not self.port:
            raise RuntimeError("not started: no port yet")
        host = "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host
        if ":" in host:
            host = f"[{host}]"
        return f"https://{host}:{self.port}"

    # -- IAM ---------------------------------------------------------------------------------

    def expire_tokens(self):
        """Every token issued so far is invalid from now on."""
        with self._lock:
            self._tokens.clear()

    def revoke_api_key(self, api_key):
        """@api_key fails at IAM and the tokens issued for it stop working."""
        with self._lock:
            self.revoked_api_keys.add(api_key)
            for token in [t for t, info in self._tokens.items() if info["api_key"] == api_key]:
                del self._tokens[token]

    def restore_api_key(self, api_key):
        """@api_key (revoked or new) is accepted by IAM again; old tokens stay invalid."""
        with self._lock:
            self.revoked_api_keys.discard(api_key)
            self.api_keys.add(api_key)

    def issue_token(self, api_key="test-api-key"):
        """A token as IAM would issue it for @api_key, without a request."""
        with self._lock:
            if api_key not in self.api_keys or api_key in self.revoked_api_keys:
                raise KeyError(api_key)
            token = secrets.token_urlsafe(48)
            self._tokens[token] = {"api_key": api_key, "expires": time.time() + self.token_ttl}
            return token

    # -- keys --------------------------------------------------------------------------------

    def create_root_key(self, name="kmipd-root", alias=None):
        with self._lock:
            k = _Key(name, alias, extractable=False)
            self._keys[k.id] = k
            return k.id

    def create_standard_key(self, name="kmipd-standard", alias=None):
        with self._lock:
            k = _Key(name, alias, extractable=True)
            self._keys[k.id] = k
            return k.id

    def _find(self, key_ref):
        key = self._keys.get(key_ref)
        if key is None:
            for k in self._keys.values():
                if key_ref in k.aliases:
                    return k
        return key

    def _get(self, key_ref):
        key = self._find(key_ref)
        if key is None:
            raise KeyError(key_ref)
        return key

    def set_state(self, key_ref, state):
        with self._lock:
            key = self._get(key_ref)
            key.state = state
            key.updated = _now_iso()

    def disable(self, key_ref):
        self.set_state(key_ref, SUSPENDED)

    def enable(self, key_ref):
        self.set_state(key_ref, ACTIVE)

    def deactivate(self, key_ref):
        self.set_state(key_ref, DEACTIVATED)

    def delete(self, key_ref):
        self.set_state(key_ref, DESTROYED)

    def restore(self, key_ref):
        self.set_state(key_ref, ACTIVE)

    def purge(self, key_ref):
        with self._lock:
            del self._keys[self._get(key_ref).id]

    def rotate(self, key_ref):
        """Adds a key version, which becomes current; returns its id."""
        with self._lock:
            key = self._get(key_ref)
            version = key.add_version()
            key.rotated = key.updated = version["created"]
            return version["id"]

    def key_info(self, key_ref):
        """{"id", "name", "aliases", "state", "extractable", "versions", "current_version"}."""
        with self._lock:
            key = self._get(key_ref)
            return {"id": key.id, "name": key.name, "aliases": list(key.aliases),
                    "state": key.state, "extractable": key.extractable,
                    "versions": [v["id"] for v in key.versions],
                    "current_version": key.current["id"]}

    def state(self, key_ref):
        with self._lock:
            return self._get(key_ref).state

    def current_version(self, key_ref):
        with self._lock:
            return self._get(key_ref).current["id"]

    # -- faults ------------------------------------------------------------------------------

    def inject(self, status, count=1, path_contains=None, retry_after=None, body=None,
               delay=0.0):
        """The next @count requests (None: until clear_faults) whose target contains
        @path_contains (None: any) get @status instead of being served, after @delay
        seconds; status 0 closes the connection without an answer."""
        with self._lock:
            self._faults.append({"status": status, "count": count,
                                 "path_contains": path_contains,
                                 "retry_after": retry_after, "body": body, "delay": delay})

    def hang(self, count=1, seconds=30.0, path_contains=None):
        """The next @count requests get no answer for @seconds, then lose their connection."""
        self.inject(0, count=count, path_contains=path_contains, delay=seconds)

    def clear_faults(self):
        with self._lock:
            self._faults.clear()

    def _take_fault(self, target):
        with self._lock:
            for fault in self._faults:
                if fault["path_contains"] is None or fault["path_contains"] in target:
                    if fault["count"] is not None:
                        fault["count"] -= 1
                        if fault["count"] <= 0:
                            self._faults.remove(fault)
                    return dict(fault)
        return None

    # -- recording ---------------------------------------------------------------------------

    def clear_requests(self):
        with self._lock:
            self.requests.clear()

    def count(self, path_contains=None, status=None):
        with self._lock:
            return sum(1 for r in self.requests
                       if (path_contains is None or path_contains in r["path"])
                       and (status is None or r["status"] == status))

    def calls(self, action):
        """The recorded requests that were @action: token, wrap, unwrap, rewrap or metadata."""
        with self._lock:
            return [r for r in self.requests if r["action"] == action]

    def stats(self):
        """Requests received per action since the start, whatever their answer."""
        with self._lock:
            return dict(self._stats)

    # -- serving -----------------------------------------------------------------------------

    def _serve(self, method, target, headers, body):
        """(status, headers, payload) for one request, or None to drop the connection."""
        path = urllib.parse.urlsplit(target).path
        if self.serve_stats and path == "/_fake/stats" and method == "GET":
            return 200, {}, _json_bytes(self.stats())

        action = classify(method, target)
        record = {"time": time.monotonic(), "method": method, "path": target,
                  "headers": headers, "body": body, "json": None, "form": None,
                  "status": None, "action": action}
        try:
            record["json"] = json.loads(body) if body else None
        except ValueError:
            pass
        if "x-www-form-urlencoded" in headers.get("content-type", ""):
            try:
                form = urllib.parse.parse_qs(body.decode("utf-8"), keep_blank_values=True)
                record["form"] = {k: v[-1] for k, v in form.items()}
            except UnicodeDecodeError:
                pass
        with self._lock:
            if action is not None:
                self._stats[action] += 1
            if self.record_requests:
                self.requests.append(record)

        if self.latency:
            time.sleep(self.latency)

        fault = self._take_fault(target)
        if fault is not None:
            if fault["delay"]:
                time.sleep(fault["delay"])
            status = fault["status"]
            record["status"] = status
            if not status:
                return None
            extra = {}
            if fault["retry_after"] is not None:
                extra["Retry-After"] = str(fault["retry_after"])
            payload = fault["body"]
            if payload is None:
                if action == "token":
                    payload = iam_error("BXNIM0001E", _phrase(status), path)
                elif status == 401:
                    payload = kms_unauthorized()
                else:
                    payload = kms_error(status, _code_for(status), _phrase(status))
            if isinstance(payload, str):
                payload = payload.encode("utf-8")
            elif not isinstance(payload, (bytes, bytearray)):
                payload = _json_bytes(payload)
            return status, extra, bytes(payload)

        try:
            if path.rstrip("/") in TOKEN_PATHS:
                self._iam(method, path, body)
            else:
                self._kms(method, target, headers, body)
            raise _Reply(404, kms_error(404, "NOT_FOUND_ERR", "The resource was not found"))
        except _Reply as reply:
            record["status"] = reply.status
            return reply.status, reply.headers, _json_bytes(reply.body)

    def _iam(self, method, path, body):
        if method != "POST":
            raise _Reply(405, iam_error("BXNIM0105E", "Method not allowed.", path))
        try:
            form = urllib.parse.parse_qs(body.decode("utf-8"), keep_blank_values=True)
        except UnicodeDecodeError:
            form = {}
        grant = form.get("grant_type", [""])[-1]
        api_key = form.get("apikey", [""])[-1]
        if grant != GRANT_APIKEY:
            raise _Reply(400, iam_error("BXNIM0104E", "Grant type is not supported.", path))
        if not api_key:
            raise _Reply(400, iam_error("BXNIM0109E", "Property 'apikey' missing or empty.",
                                        path))
        with self._lock:
            if api_key not in self.api_keys or api_key in self.revoked_api_keys:
                raise _Reply(400, iam_error("BXNIM0415E",
                                            "Provided API key could not be found.", path))
            ttl = int(self.token_ttl)
            token = secrets.token_urlsafe(48)
            now = time.time()
            self._tokens[token] = {"api_key": api_key, "expires": now + ttl}
        raise _Reply(200, {"access_token": token, "refresh_token": "not_supported",
                           "token_type": "Bearer", "expires_in": ttl,
                           "expiration": int(now) + ttl, "scope": "ibm openid"})

    def _check_access(self, headers):
        auth = headers.get("authorization", "")
        scheme, _, token = auth.partition(" ")
        token = token.strip()
        with self._lock:
            info = self._tokens.get(token) if scheme.lower() == "bearer" else None
            valid = (info is not None and time.time() < info["expires"]
                     and info["api_key"] not in self.revoked_api_keys)
        if not valid:
            raise _Reply(401, kms_unauthorized())
        instance = headers.get("bluemix-instance")
        if not instance:
            raise _Reply(400, kms_error(400, "BAD_REQUEST",
                                        "The bluemix-instance header is missing"))
        if instance != self.instance_id:
            raise _Reply(401, kms_unauthorized())
        if self.deny_access:
            raise _Reply(403, kms_error(403, "FORBIDDEN",
                                        "The user does not have permission for this action",
                                        error_msg="Forbidden"))

    def _kms(self, method, target, headers, body):
        split = urllib.parse.urlsplit(target)
        parts = split.path.rstrip("/").split("/")
        if parts[1:3] != ["api", "v2"]:
            return
        self._check_access(headers)
        if len(parts) < 5 or parts[3] != "keys" or not parts[4]:
            return
        key_ref = urllib.parse.unquote(parts[4])
        rest = parts[5:]
        if rest == ["metadata"]:
            if method == "GET":
                self._metadata(key_ref)
            return
        if method != "POST":
            return
        if len(rest) == 2 and rest[0] == "actions":
            action = rest[1]
        elif not rest:
            action = urllib.parse.parse_qs(split.query).get("action", [None])[-1]
        else:
            return
        if action not in KEY_ACTIONS:
            return
        self._key_action(action, key_ref, headers, body)

    def _metadata(self, key_ref):
        with self._lock:
            key = self._find(key_ref)
            if key is None:
                raise _Reply(404, kms_error(404, "KEY_NOT_FOUND_ERR", "Key does not exist"))
            resource = {
                "type": KEY_TYPE, "id": key.id, "name": key.name,
                "aliases": list(key.aliases), "state": key.state,
                "extractable": key.extractable, "imported": False,
                "algorithmType": "AES", "keyRingID": "default",
                "crn": f"crn:v1:bluemix:public:kms:us-south:a/fakeaccount:"
                       f"{self.instance_id}:key:{key.id}",
                "creationDate": key.created, "lastUpdateDate": key.updated,
                "keyVersion": {"id": key.current["id"],
                               "creationDate": key.current["created"]},
                "deleted": key.state == DESTROYED,
            }
            if key.rotated:
                resource["lastRotateDate"] = key.rotated
        raise _Reply(200, {"metadata": {"collectionType": KEY_TYPE, "collectionTotal": 1},
                           "resources": [resource]})

    def _key_action(self, action, key_ref, headers, body):
        if self.hpcs_uninitialised:
            raise _Reply(400, kms_error(
                400, "CRYPTO_UNIT_NOT_INITIALIZED",
                f"The crypto unit is not initialized: {WK_NOT_INITIALIZED}",
                error_msg=f"Bad Request: {WK_NOT_INITIALIZED}: "
                          "the master key of the crypto unit is not initialized"))
        content_type = headers.get("content-type", "")
        if content_type and "json" not in content_type.lower():
            raise _Reply(415, kms_error(415, "UNSUPPORTED_MEDIA_TYPE_ERR",
                                        f"Unsupported Content-Type {content_type}"))
        with self._lock:
            key = self._find(key_ref)
            if key is None:
                raise _Reply(404, kms_error(404, "KEY_NOT_FOUND_ERR", "Key does not exist"))
            if key.extractable:
                raise _Reply(400, kms_error(400, "KEY_ROOT_REQ_ERR",
                                            "Requested action can only be completed "
                                            "with a root key"))
            if key.state == DESTROYED:
                raise _Reply(410, kms_error(410, "KEY_DELETED_ERR",
                                            "The key has been deleted"))
            allowed = (ACTIVE,) if action == "wrap" else (ACTIVE, DEACTIVATED)
            if key.state not in allowed:
                raise _Reply(409, kms_error(409, "KEY_ACTION_INVALID_STATE_ERR",
                                            f"Key is not in a valid state for {action} "
                                            f"(state {key.state})"))
            request = self._action_body(body)
            aad = self._aad(request)
            if action == "wrap":
                self._wrap(key, request, aad)
            plaintext, version = _open(key, self._ciphertext(request), aad)
            current = key.current
            if action == "rewrap":
                raise _Reply(200, {"ciphertext": _seal(key, current, plaintext, aad),
                                   "keyVersion": {"id": current["id"]},
                                   "rewrappedKeyVersion": {"id": current["id"]}})
            answer = {"plaintext": _b64(plaintext), "keyVersion": {"id": version["id"]}}
            if version["id"] != current["id"]:
                answer["ciphertext"] = _seal(key, current, plaintext, aad)
                answer["rewrappedKeyVersion"] = {"id": current["id"]}
            raise _Reply(200, answer)

    @staticmethod
    def _action_body(body):
        if not body or not body.strip():
            raise _Reply(400, kms_error(400, "NO_BODY_ERR", "Request body is required"))
        try:
            request = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            request = None
        if not isinstance(request, dict):
            raise _Reply(400, kms_error(400, "BAD_BODY_ERR",
                                        "Request body is not a valid JSON object"))
        return request

    @staticmethod
    def _invalid(field, why):
        return _Reply(400, kms_error(400, "INVALID_FIELD_ERR",
                                     f"The field '{field}' must be: {why}"))

    def _aad(self, request):
        aad = request.get("aad")
        if aad is None:
            return []
        if not isinstance(aad, list):
            raise self._invalid("aad", "an array of strings")
        for item in aad:
            if not isinstance(item, str) or len(item) > MAX_AAD_LEN:
                raise self._invalid("aad", f"an array of strings of at most {MAX_AAD_LEN} "
                                           "characters")
        return aad

    def _ciphertext(self, request):
        ciphertext = request.get("ciphertext")
        if ciphertext is None or ciphertext == "":
            raise self._invalid("ciphertext", "present")
        try:
            _unb64(ciphertext)
        except ValueError:
            raise self._invalid("ciphertext", "a base64 string") from None
        return ciphertext

    def _wrap(self, key, request, aad):
        generated = "plaintext" not in request or request["plaintext"] is None
        if generated:
            plaintext = secrets.token_bytes(32)
        else:
            try:
                plaintext = _unb64(request["plaintext"])
            except ValueError:
                raise self._invalid("plaintext", "a base64 string") from None
            if not plaintext or len(plaintext) > MAX_PLAINTEXT:
                raise self._invalid("plaintext", f"1 to {MAX_PLAINTEXT} bytes")
        current = key.current
        answer = {"ciphertext": _seal(key, current, plaintext, aad),
                  "keyVersion": {"id": current["id"]}}
        if generated:
            answer["plaintext"] = _b64(plaintext)
        raise _Reply(200, answer)


def main(argv=None):
    parser = argparse.ArgumentParser(description="Serve a fake Key Protect / HPCS and IAM.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8443)
    parser.add_argument("--dir", required=True, help="where to write the TLS files")
    parser.add_argument("--api-key", action="append", dest="api_keys",
                        help="an API key IAM accepts (repeatable; default test-api-key)")
    parser.add_argument("--root-key-alias")
    parser.add_argument("--instance-id")
    parser.add_argument("--token-ttl", type=int, default=3600)
    args = parser.parse_args(argv)

    ca, cert, key = make_tls(args.dir)
    fake = FakeKeyProtect(cert, key, host=args.host, port=args.port,
                          instance_id=args.instance_id,
                          api_keys=tuple(args.api_keys or ("test-api-key",)))
    fake.token_ttl = args.token_ttl
    fake.serve_stats = True
    fake.record_requests = False
    root = fake.create_root_key(alias=args.root_key_alias)

    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    fake.start()
    print(json.dumps({"url": fake.url, "instance_id": fake.instance_id, "root_key_id": root,
                      "root_key_alias": args.root_key_alias, "ca": ca,
                      "api_keys": sorted(fake.api_keys)}), flush=True)
    while not done.wait(0.5):
        pass
    fake.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
