#!/usr/bin/env python3
"""Two nodes with one CAF node id are refused, and say what to do.

CAF 0.17 derives a node's id from the host's MAC addresses and the process
id. Containers on the host's network that each run sil-server as PID 1 all
get one id. This test builds exactly that on 127.0.0.1: each process that
must clash runs as PID 1 of its own PID namespace (`unshare --pid --fork`),
on the host's network, so that the ids really are equal:

  A. gateway and worker both PID 1: the worker sees the gateway's id as its
     own, logs the clash with the remedy and exits 1 (instead of retrying
     forever, or joining a local actor of its own).
  B. a normal gateway, workers w1 and w2 both PID 1: w1 joins; w2's join is
     refused by the gateway, which logs the clash naming both nodes; w2
     exits 1 with the remedy; w1 stays up and serves. The gateway logs
     w1's join and its state changes (up, then down when it stops) with the
     node's name and the reason.

Every other process must exit 0 on SIGTERM. Without PID namespaces (no
unshare, not permitted) the test is skipped (exit 77).

usage: node_identity_test.py SIL_SERVER
"""
import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import time
import urllib.request

SKIP = 77
REMEDY = ["own network namespace", "--pid=host"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def unshare_prefix():
    """The command prefix that runs a program as PID 1 of a new PID
    namespace, or None where that is not possible."""
    base = ["unshare", "--pid", "--fork", "--kill-child"]
    candidates = [base] if os.geteuid() == 0 else []
    candidates.append(["unshare", "--user", "--map-root-user", "--pid", "--fork", "--kill-child"])
    for prefix in candidates:
        try:
            r = subprocess.run(prefix + ["sh", "-c", "test $$ -eq 1"], capture_output=True,
                               timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if r.returncode == 0:
            return prefix
    return None


class Proc:
    """A child with stdout and stderr collected in the background."""

    def __init__(self, name, argv):
        self.name = name
        self.p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.out = b""
        self.err = b""

    def pump(self, timeout=0.1):
        fds = [f for f in (self.p.stdout, self.p.stderr) if f and not f.closed]
        if not fds:
            time.sleep(timeout)
            return
        ready, _, _ = select.select(fds, [], [], timeout)
        for f in ready:
            chunk = os.read(f.fileno(), 65536)
            if not chunk:
                f.close()
            elif f is self.p.stdout:
                self.out += chunk
            else:
                self.err += chunk

    def wait_line(self, prefix, timeout):
        deadline = time.time() + timeout
        while time.time() < deadline:
            for line in self.out.decode(errors="replace").splitlines():
                if line.startswith(prefix):
                    return line
            if self.p.poll() is not None and not self.readable():
                break
            self.pump()
        raise AssertionError(f"{self.name}: no line starting with {prefix!r} within {timeout} s;"
                             f"\nstdout: {self.out!r}\nstderr: {self.err.decode(errors='replace')}")

    def readable(self):
        return any(f and not f.closed for f in (self.p.stdout, self.p.stderr))

    def wait_exit(self, timeout):
        deadline = time.time() + timeout
        while time.time() < deadline:
            self.pump()
            if self.p.poll() is not None:
                while self.readable():
                    self.pump()
                return self.p.returncode
        return None

    def server_pid(self):
        """The sil-server process: the child itself, or unshare's child."""
        path = f"/proc/{self.p.pid}/task/{self.p.pid}/children"
        if os.path.exists(path):
            with open(path) as f:
                kids = f.read().split()
            exe = ""
            try:
                exe = os.readlink(f"/proc/{self.p.pid}/exe")
            except OSError:
                pass
            if kids and os.path.basename(exe) == "unshare":
                return int(kids[0])
        return self.p.pid

    def stop(self):
        """SIGTERM to sil-server; returns its exit code (unshare passes it on)."""
        if self.p.poll() is None:
            try:
                os.kill(self.server_pid(), signal.SIGTERM)
            except ProcessLookupError:
                pass
        code = self.wait_exit(30)
        if code is None:
            self.p.kill()
            self.p.wait()
        return code


def get_json(port, path):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
        return json.loads(r.read())


def predict(port, i):
    body = json.dumps({"features": [[float(i)] * 4 + [0.0] * 28], "use_cache": False}).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}/predict", data=body, method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.status


def nodes(port):
    return {n["name"]: n for n in get_json(port, "/stats")["encoder"]["nodes"]}


def check_remedy(text, who):
    for words in REMEDY:
        assert words in text, f"{who}: the message does not name the remedy ({words!r}):\n{text}"


def main():
    server = os.path.abspath(sys.argv[1])
    ns = unshare_prefix()
    if ns is None:
        print("SKIP: cannot run a process as PID 1 of its own PID namespace (unshare)")
        return SKIP
    common = ["--model.preset=seed", "--audit.rate=0"]
    children = []
    failures = []

    def start(name, argv):
        p = Proc(name, argv)
        children.append(p)
        return p

    def gateway(prefix, name):
        reg = free_port()
        p = start(name, prefix + [server, "--role=gateway", "--port=0", "--workers=0",
                                  f"--cluster.port={reg}", "--node-name=gw"] + common)
        http = int(p.wait_line("listening on ", 20).rsplit(":", 1)[1])
        p.wait_line("registry on ", 5)
        return p, reg, http

    def worker(prefix, name, reg):
        return start(name, prefix + [server, "--role=worker", f"--gateway=127.0.0.1:{reg}",
                                     "--workers=1", "--port=0", f"--node-name={name}"] + common)

    try:
        # A: the worker has the gateway's id.
        gw, reg, http = gateway(ns, "gateway A")
        w = worker(ns, "wa", reg)
        code = w.wait_exit(20)
        text = w.err.decode(errors="replace")
        assert code == 1, f"A: worker exit code {code}, expected 1; stderr:\n{text}"
        assert "gateway's node id" in text, text
        check_remedy(text, "A: worker")
        assert "joined " not in w.out.decode(), w.out
        assert "wa" not in nodes(http), nodes(http)
        print("A: a worker with the gateway's node id exits 1:",
              [l for l in text.splitlines() if "node id" in l][0][:160], "...")
        code = gw.stop()
        if code != 0:
            failures.append(f"A: gateway exited {code} on SIGTERM")

        # B: two workers share one id; the gateway has its own.
        gw, reg, http = gateway([], "gateway B")
        w1 = worker(ns, "w1", reg)
        w1.wait_line("joined ", 20)
        w2 = worker(ns, "w2", reg)
        code = w2.wait_exit(20)
        text = w2.err.decode(errors="replace")
        assert code == 1, f"B: w2 exit code {code}, expected 1; stderr:\n{text}"
        assert "live node w1" in text, text
        check_remedy(text, "B: w2")
        assert "joined " not in w2.out.decode(), w2.out
        deadline = time.time() + 5
        while "node id clash" not in gw.err.decode(errors="replace") and time.time() < deadline:
            gw.pump()
        gw_text = gw.err.decode(errors="replace")
        clash = [l for l in gw_text.splitlines() if "node id clash" in l]
        assert clash, f"B: the gateway logged no clash:\n{gw_text}"
        assert "error" in clash[0] and "node=w2" in clash[0] and "live node w1" in clash[0], clash
        check_remedy(clash[0], "B: gateway")
        table = nodes(http)
        assert "w2" not in table, table
        assert table["w1"]["state"] == "up", table
        for i in range(5):
            assert predict(http, i) == 200
        assert nodes(http)["w1"]["encodes"] >= 5, nodes(http)
        print("B: the gateway refused w2 (the id of live node w1); w1 still serves")
        # The gateway logged w1's arrival and, once w1 stops, its departure,
        # each with the node's name and the reason.
        code = w1.stop()
        if code != 0:
            failures.append(f"B: w1 exited {code} on SIGTERM")
        down = re.compile(r'node state.*node="?w1"?.*to="?down"?.*reason=')
        deadline = time.time() + 10
        while not down.search(gw.err.decode(errors="replace")) and time.time() < deadline:
            gw.pump()
        gw_text = gw.err.decode(errors="replace")
        assert re.search(r'node joined.*node="?w1"?', gw_text), gw_text
        assert re.search(r'node state.*node="?w1"?.*to="?up"?.*reason=', gw_text), gw_text
        assert down.search(gw_text), f"B: no 'node state ... to=down' line for w1:\n{gw_text}"
        print("B: the gateway logged w1 joining, up, and down with reasons")
        code = gw.stop()
        if code != 0:
            failures.append(f"B: gateway exited {code} on SIGTERM")
    finally:
        for p in children:
            if p.p.poll() is None:
                p.stop()
    for f in failures:
        print(f"FAIL: {f}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
