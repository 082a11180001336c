"""kmip-bench against a real kmipd: what its options promise about the load it offers.

Only counts are checked here, never speed: a run at a fixed rate sends what the schedule
says, and the figures it prints are those of the requests it sent."""
import re
import subprocess


def bench(build, node, *args, timeout=60):
    pki = node.pki
    cmd = [str(build / "bench" / "kmip-bench"), "--ca", str(pki / "ca.pem"),
           "--cert", str(pki / "client.pem"), "--key", str(pki / "client-key.pem"),
           "--host", node.host, "--port", str(node.port), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def result(stdout):
    line = next(line for line in stdout.splitlines() if line.startswith("RESULT "))
    return dict(re.findall(r"(\w+)=(\S+)", line))


def test_a_fixed_rate_sends_what_the_schedule_says_whatever_the_connections(build, shared_node):
    # 8 connections could send thousands of Discover Versions a second; at 200/s for 2 s
    # the schedule has 400 requests, the first due once the connections are up.
    run = bench(build, shared_node, "--connections", "8", "--rate", "200", "--duration", "2",
                "--warmup", "0")
    assert run.returncode == 0, run.stderr
    r = result(run.stdout)
    assert r["rate"] == "200.0"
    assert r["errors"] == "0"
    # The connections' handshakes take up the start of the window, so a few fewer.
    assert 330 <= int(r["ok"]) <= 401, run.stdout
    # How late the client itself sent them: never negative, never more than the latency.
    assert 0 <= float(r["send_delay_p99_ms"]) <= float(r["p99_ms"])
    assert 0 <= float(r["late_pct"]) <= 100
    assert "offered 200.0 requests/s on a fixed schedule" in run.stdout
    assert "from due to sent: p50" in run.stdout


def test_without_a_rate_the_connections_go_back_to_back(build, shared_node):
    run = bench(build, shared_node, "--connections", "8", "--duration", "1", "--warmup", "0")
    assert run.returncode == 0, run.stderr
    r = result(run.stdout)
    assert "rate" not in r and "late_pct" not in r and "send_delay_p99_ms" not in r
    assert "fixed schedule" not in run.stdout


def test_a_rate_the_server_cannot_answer_is_reported(build, shared_node):
    # One connection, one request in flight: a million a second cannot be answered.
    run = bench(build, shared_node, "--connections", "1", "--rate", "1000000", "--duration",
                "1", "--warmup", "0")
    assert run.returncode == 0, run.stderr
    assert "could not keep up" in run.stderr
    r = result(run.stdout)
    assert float(r["late_pct"]) > 50


def test_a_rate_is_refused_with_a_connection_per_request_or_without_a_number(build, shared_node):
    run = bench(build, shared_node, "--rate", "100", "--new-connection")
    assert run.returncode == 2
    assert "--rate" in run.stderr
    run = bench(build, shared_node, "--rate", "fast")
    assert run.returncode == 2
    assert "--rate wants requests per second" in run.stderr
