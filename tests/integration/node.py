"""Starting and stopping real kmipd processes for the integration tests."""
import os
import pathlib
import re
import signal
import socket
import ssl
import subprocess
import time

READY_TIMEOUT = 30


def free_port(pair=False):
    """A free port on 127.0.0.1; with @pair, one whose successor is free too (a Raft port:
    the peer channel listens on the next one)."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if not pair or port >= 65535:
            return port
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + 1))
                return port
            except OSError:
                continue


class Node:
    """One `kmipd --dev` process on loopback with its own data directory."""

    def __init__(self, build, data_dir, extra_args=()):
        self.build = pathlib.Path(build)
        self.data_dir = pathlib.Path(data_dir)
        self.extra_args = list(extra_args)
        self.proc = None
        self.port = None
        self.raft_port = free_port(pair=True)
        self.admin_port = free_port()
        self.log_path = self.data_dir.parent / (self.data_dir.name + ".log")
        self.pki = self.data_dir / "pki"
        self.stdout_lines = []

    host = "127.0.0.1"

    def start(self, port=0):
        return self.start_at("127.0.0.1", port)

    def start_at(self, host, port):
        """Starts the node listening on @host:@port (Raft on @host:self.raft_port) and
        returns once it says "ready"."""
        args = [str(self.build / "kmipd"), "--dev", "--data-dir", str(self.data_dir),
                "--listen", f"{host}:{port}", "--raft.address", f"{host}:{self.raft_port}",
                "--admin.listen", f"{host}:{self.admin_port}",
                "--log-level", "debug", *self.extra_args]
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=self.log)
        deadline = time.monotonic() + READY_TIMEOUT
        self.stdout_lines = []
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline().decode()
            if not line:
                raise RuntimeError(f"kmipd exited ({self.proc.wait()}): {self.stderr()}")
            self.stdout_lines.append(line)
            m = re.search(r"listening on [0-9.]+:(\d+)", line)
            if m:
                self.port = int(m.group(1))
            if line.strip() == "ready":
                self.host = host
                return self
        raise RuntimeError("kmipd did not become ready: " + self.stderr())

    def stderr(self):
        self.log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self, sig=signal.SIGTERM, timeout=20):
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
            raise AssertionError("kmipd did not stop within %ss" % timeout)
        finally:
            self.proc.stdout.close()
            self.log.close()
            self.proc = None
        return rc

    def kill(self):
        return self.stop(signal.SIGKILL)

    def tls_context(self, cert=None, key=None):
        ctx = ssl.create_default_context(cafile=str(self.pki / "ca.pem"))
        ctx.load_cert_chain(str(cert or self.pki / "client.pem"),
                            str(key or self.pki / "client-key.pem"))
        return ctx

    def connect(self, cert=None, key=None, timeout=10):
        """A TLS connection to the node as a client certificate holder."""
        sock = socket.create_connection((self.host, self.port), timeout=timeout)
        return self.tls_context(cert, key).wrap_socket(sock, server_hostname="localhost")

    @property
    def admin_url(self):
        return f"https://{self.host}:{self.admin_port}"

    def admin(self, method, path, body=None, cert="admin", timeout=10):
        """One admin API request: (HTTP status, decoded JSON or text). @cert is "admin",
        "client" (a KMIP client certificate), None (no certificate) or a (cert, key) pair."""
        import http.client
        import json as _json
        ctx = ssl.create_default_context(cafile=str(self.pki / "ca.pem"))
        if cert == "admin":
            ctx.load_cert_chain(str(self.pki / "admin.pem"), str(self.pki / "admin-key.pem"))
        elif cert == "client":
            ctx.load_cert_chain(str(self.pki / "client.pem"), str(self.pki / "client-key.pem"))
        elif cert is not None:
            ctx.load_cert_chain(str(cert[0]), str(cert[1]))
        conn = http.client.HTTPSConnection(self.host, self.admin_port, context=ctx,
                                           timeout=timeout)
        try:
            data = None if body is None else _json.dumps(body)
            headers = {} if body is None else {"Content-Type": "application/json"}
            conn.request(method, path, body=data, headers=headers)
            r = conn.getresponse()
            text = r.read().decode()
            ctype = r.getheader("Content-Type", "")
            return r.status, (_json.loads(text) if "json" in ctype else text)
        finally:
            conn.close()

    def pykmip(self, cert=None, key=None):
        from kmip.pie.client import ProxyKmipClient
        client = ProxyKmipClient(
            hostname=self.host, port=self.port,
            cert=str(cert or self.pki / "client.pem"),
            key=str(key or self.pki / "client-key.pem"),
            ca=str(self.pki / "ca.pem"),
            config_file="/dev/null")
        return client


def kmipctl(build, node, *args, timeout=60):
    """kmipctl against @node's admin API with the dev administrator's certificate."""
    return subprocess.run([str(pathlib.Path(build) / "kmipctl"), *args, "--endpoint",
                           node.admin_url, "--pki-dir", str(node.pki)],
                          capture_output=True, text=True, timeout=timeout)


def wait_closed(sock, timeout=5):
    """True if the server closes @sock within @timeout."""
    sock.settimeout(timeout)
    try:
        return sock.recv(1) == b""
    except (ssl.SSLError, ConnectionError):
        return True
    except socket.timeout:
        return False


def exchange(sock, request: bytes) -> bytes:
    """Sends one TTLV message and reads one back."""
    sock.sendall(request)
    header = recv_exact(sock, 8)
    length = int.from_bytes(header[4:8], "big")
    return header + recv_exact(sock, length)


def recv_exact(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError(f"connection closed after {len(data)} of {n} bytes")
        data += chunk
    return data


class Cluster:
    """N kmipd processes on 127.0.0.1..N, one Raft cluster, shared dev PKI and root key."""

    def __init__(self, build, base, n=3, extra_args=(), cluster_id="test", node_args=None):
        self.build = pathlib.Path(build)
        self.base = pathlib.Path(base)
        self.base.mkdir(parents=True, exist_ok=True)
        self.n = n
        self.cluster_id = cluster_id
        self.extra_args = list(extra_args)
        self.kmip_port = free_port()
        self.raft_port = free_port(pair=True)
        self.nodes = [self.make_node(i, n, (node_args or {}).get(i, ()))
                      for i in range(1, n + 1)]

    def members(self, n):
        return ",".join(f"{i}@127.0.0.{i}:{self.raft_port}" for i in range(1, n + 1))

    def make_node(self, i, n, args=()):
        """Node @i of a cluster whose cluster.members lists nodes 1..@n."""
        hosts = ",".join(f"127.0.0.{j}" for j in range(2, 10))  # nodes added later too
        node = Node(self.build, self.base / f"node{i}", [
            "--server.pki_dir", str(self.base / "pki"), "--server.hosts", hosts,
            "--root_key.file", str(self.base / "root.key"), "--raft.id", str(i),
            "--cluster.id", self.cluster_id, "--cluster.members", self.members(n),
            *self.extra_args, *args])
        node.host = f"127.0.0.{i}"
        node.id = i
        node.pki = self.base / "pki"
        node.raft_port = self.raft_port
        node.raft_address = f"127.0.0.{i}:{self.raft_port}"
        node.log_path = self.base / f"node{i}.log"
        return node

    @property
    def pki(self):
        return self.base / "pki"

    def start(self):
        import threading
        # Node 1 makes the shared PKI and root key; the others start once they exist.
        first = self.nodes[0]
        errors = []

        def run(node):
            try:
                node.start_at(node.host, self.kmip_port)
            except Exception as e:  # reported below
                errors.append(e)

        threads = [threading.Thread(target=run, args=(first,))]
        threads[0].start()
        deadline = time.monotonic() + READY_TIMEOUT
        while not (self.pki / "client-key.pem").exists() or \
                not (self.base / "root.key").exists():
            if time.monotonic() > deadline:
                raise RuntimeError("node 1 did not create the PKI: " + first.stderr())
            time.sleep(0.05)
        for node in self.nodes[1:]:
            t = threading.Thread(target=run, args=(node,))
            t.start()
            threads.append(t)
        for t in threads:
            t.join()
        if errors:
            raise errors[0]
        return self

    def leader(self, timeout=10):
        """The node whose log last says it leads (waits for one)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for node in self.nodes:
                if node.proc is None:
                    continue
                lines = [l for l in node.stderr().splitlines() if "raft: " in l and
                         ("leader" in l)]
                if lines and "this node" in lines[-1]:
                    return node
            time.sleep(0.1)
        raise RuntimeError("no leader")

    def stop(self):
        rcs = []
        for node in self.nodes:
            if node.proc is not None:
                rcs.append(node.stop())
        return rcs
