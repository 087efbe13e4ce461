#!/usr/bin/env python3
"""Attacks a real sil-server as a hostile client would, and checks that it holds.

Every case starts its own sil-server on a free loopback port (127.0.0.1 only)
with the settings it needs, attacks it, checks the hardened behaviour, and
stops it with SIGTERM: the server must still be alive and exit with the
expected status (0 when nothing was dropped). Every case is bounded in time
and in requests.

usage:
  attack_suite.py SIL_SERVER [-k SUBSTRING ...] [--list] [--report OUT.json] [-v]

  -k          run only the cases whose name contains one of the substrings
  --list      print the case names and what each one tries, then exit
  --report    also write one JSON record per case (attack, requests sent,
              outcome, 5xx count, whether the server died, its RSS before
              and after)

Exit status: 0 when every selected case held, 1 otherwise.
Only the Python 3 standard library is used.
"""
import argparse
import json
import multiprocessing
import os
import random
import re
import resource
import selectors
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback

HOST = "127.0.0.1"
DIM = 32
ADMIN_TOKEN = "att4ck-t0ken"
CLK_TCK = os.sysconf("SC_CLK_TCK")


class CaseFailed(AssertionError):
    pass


def check(cond, message):
    if not cond:
        raise CaseFailed(message)


# -- HTTP on raw sockets --------------------------------------------------------


class Response:
    def __init__(self, status, reason, headers, body, head):
        self.status = status
        self.reason = reason
        self.headers = headers  # list of (lower-case name, value)
        self.body = body
        self.head = head

    def header(self, name):
        name = name.lower()
        for k, v in self.headers:
            if k == name:
                return v
        return None

    def json(self):
        return json.loads(self.body)

    def closes(self):
        v = self.header("connection") or ""
        return "close" in [t.strip().lower() for t in v.split(",")]

    def __repr__(self):
        return f"<{self.status} {self.reason} body={self.body[:80]!r}>"


class Malformed(Exception):
    pass


def parse_response(buf, head_only=False):
    """Parses one response at the start of `buf`.

    Returns (Response, bytes consumed), or None when `buf` holds only part of
    one; raises Malformed when the bytes are not a response."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        if len(buf) >= 12 and not buf.startswith(b"HTTP/1."):
            raise Malformed(f"not a status line: {buf[:60]!r}")
        return None
    head = buf[:end].decode("latin-1")
    lines = head.split("\r\n")
    m = re.match(r"HTTP/1\.[01] (\d{3})(?: (.*))?$", lines[0])
    if not m:
        raise Malformed(f"not a status line: {lines[0][:60]!r}")
    status = int(m.group(1))
    headers = []
    for line in lines[1:]:
        if ":" not in line:
            raise Malformed(f"bad header line {line[:60]!r}")
        k, v = line.split(":", 1)
        headers.append((k.strip().lower(), v.strip()))
    r = Response(status, m.group(2) or "", headers, b"", head)
    pos = end + 4
    if head_only or 100 <= status < 200 or status in (204, 304):
        return r, pos
    te = r.header("transfer-encoding")
    if te and "chunked" in te.lower():
        body = b""
        while True:
            nl = buf.find(b"\r\n", pos)
            if nl < 0:
                return None
            try:
                size = int(buf[pos:nl].split(b";")[0], 16)
            except ValueError:
                raise Malformed(f"bad chunk size {buf[pos:nl][:20]!r}")
            pos = nl + 2
            if size == 0:
                trailer_end = buf.find(b"\r\n", pos)
                if trailer_end < 0:
                    return None
                # trailers are not used by sil-server; an empty line ends the body
                r.body = body
                return r, trailer_end + 2
            if len(buf) < pos + size + 2:
                return None
            body += buf[pos:pos + size]
            pos += size + 2
    cl = r.header("content-length")
    if cl is None:
        raise Malformed("response without Content-Length or chunked body")
    n = int(cl)
    if len(buf) < pos + n:
        return None
    r.body = buf[pos:pos + n]
    return r, pos + n


class Conn:
    """One raw loopback connection with a response reader."""

    def __init__(self, port, timeout=5.0):
        self.sock = socket.create_connection((HOST, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.eof = False
        self.error = None  # an OSError seen while reading (e.g. a reset)

    def send(self, data):
        self.sock.sendall(data)

    def fill(self, deadline):
        """Reads once; False on end of stream, error or deadline."""
        if self.eof or self.error:
            return False
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        self.sock.settimeout(left)
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            return False
        except OSError as e:
            self.error = e
            return False
        if not chunk:
            self.eof = True
            return False
        self.buf += chunk
        return True

    def read_response(self, timeout=5.0, head_only=False):
        """The next response, or None when the connection ends (or the
        deadline passes) first; `self.eof`, `self.error` say which."""
        deadline = time.monotonic() + timeout
        while True:
            got = parse_response(self.buf, head_only)
            if got:
                r, used = got
                self.buf = self.buf[used:]
                return r
            if not self.fill(deadline):
                return None

    def read_until_close(self, timeout):
        """Every response until the server closes; (responses, closed, leftover)."""
        deadline = time.monotonic() + timeout
        out = []
        while True:
            try:
                got = parse_response(self.buf)
            except Malformed:
                got = None
                while self.fill(deadline):
                    pass
                return out, bool(self.eof or self.error), self.buf
            if got:
                r, used = got
                self.buf = self.buf[used:]
                out.append(r)
                continue
            if not self.fill(deadline):
                return out, bool(self.eof or self.error), self.buf

    def wait_closed(self, timeout):
        """True when the server closed the connection within `timeout`."""
        deadline = time.monotonic() + timeout
        while self.fill(deadline):
            pass
        return bool(self.eof or self.error)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def read_many(socks, timeout):
    """One response from each socket, read concurrently: {sock: status, or
    'reset', 'EOF without response', 'malformed', 'no answer'}."""
    sel = selectors.DefaultSelector()
    bufs = {}
    for s in socks:
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
        bufs[s] = b""
    outcome = {}
    deadline = time.monotonic() + timeout
    while len(outcome) < len(socks) and time.monotonic() < deadline:
        for key, _ in sel.select(min(0.1, max(0.0, deadline - time.monotonic()))):
            s = key.fileobj
            try:
                chunk = s.recv(65536)
            except BlockingIOError:
                continue
            except OSError as e:
                outcome[s] = "reset" if isinstance(e, ConnectionResetError) else type(e).__name__
                sel.unregister(s)
                continue
            if not chunk:
                outcome[s] = "EOF without response"
                sel.unregister(s)
                continue
            bufs[s] += chunk
            try:
                got = parse_response(bufs[s])
            except Malformed:
                outcome[s] = "malformed"
                sel.unregister(s)
                continue
            if got:
                outcome[s] = got[0].status
                sel.unregister(s)
    sel.close()
    for s in socks:
        outcome.setdefault(s, "no answer")
    return outcome


def tally(outcome):
    counts = {}
    for v in outcome.values():
        counts[v] = counts.get(v, 0) + 1
    return counts


def request_bytes(method, path, body=None, headers=None, version="HTTP/1.1"):
    h = {"Host": f"{HOST}"}
    if body is not None:
        h["Content-Type"] = "application/json"
        h["Content-Length"] = str(len(body))
    if headers:
        h.update(headers)
    head = f"{method} {path} {version}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in h.items())
    data = head.encode("latin-1") + b"\r\n"
    if body is not None:
        data += body if isinstance(body, bytes) else body.encode()
    return data


def rst_close(sock):
    """Closes with a reset (SO_LINGER on, timeout 0)."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


# -- bodies ---------------------------------------------------------------------

_REST = ",".join(["0.25"] * (DIM - 4))
_ROW = "[" + ",".join(["0.5"] * DIM) + "]"


def features_json(i, rows=1, salt=0):
    """A features array whose prefix (the first 4 values) is unique per (i, salt)."""
    first = f"[{i % 4096},{i // 4096},{salt},0.125,{_REST}]"
    return "[" + ",".join([first] + [_ROW] * (rows - 1)) + "]"


def predict_body(i, rows=1, salt=0, extra=""):
    return f'{{"features":{features_json(i, rows, salt)}{extra}}}'


# -- the server under attack -------------------------------------------------------


class Server:
    def __init__(self, binary, args, nofile=None):
        self.binary = binary
        self.args = list(args)
        self.nofile = nofile
        self.dir = tempfile.mkdtemp(prefix="sil-attack-")
        self.proc = None
        self.port = None
        self.rc = None

    def start(self, timeout=20):
        out = open(os.path.join(self.dir, "stdout"), "wb")
        err = open(os.path.join(self.dir, "stderr"), "wb")
        pre = None
        if self.nofile:
            n = self.nofile

            def pre():
                resource.setrlimit(resource.RLIMIT_NOFILE, (n, n))

        argv = [self.binary, "--port=0"] + self.args
        self.proc = subprocess.Popen(argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                     preexec_fn=pre, close_fds=True)
        out.close()
        err.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with open(os.path.join(self.dir, "stdout"), "rb") as f:
                m = re.search(rb"listening on [0-9.]+:(\d+)", f.read())
            if m:
                self.port = int(m.group(1))
                return self
            if self.proc.poll() is not None:
                raise CaseFailed(f"sil-server {' '.join(self.args)} exited with "
                                 f"{self.proc.returncode} at startup: {self.stderr().strip()[:300]}")
            time.sleep(0.02)
        raise CaseFailed("sil-server did not print 'listening on' within 20 s")

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stderr(self):
        with open(os.path.join(self.dir, "stderr"), "rb") as f:
            return f.read().decode(errors="replace")

    def rss_kb(self):
        try:
            with open(f"/proc/{self.pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1])
        except OSError:
            return None
        return None

    def cpu_ticks(self):
        with open(f"/proc/{self.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime + stime

    def socket_fds(self):
        n = 0
        for fd in os.listdir(f"/proc/{self.pid}/fd"):
            try:
                if os.readlink(f"/proc/{self.pid}/fd/{fd}").startswith("socket:"):
                    n += 1
            except OSError:
                pass
        return n

    def signal(self, sig):
        self.proc.send_signal(sig)

    def wait(self, timeout):
        try:
            self.rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            self.rc = None
        return self.rc

    def stop(self, timeout=20):
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.wait(timeout)

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


# -- cases --------------------------------------------------------------------------


class Ctx:
    """What a case gets: its server, and counters for the report."""

    def __init__(self, server, verbose):
        self.server = server
        self.port = server.port
        self.requests = 0
        self.n5xx = 0
        self.notes = []
        self.verbose = verbose
        self.stopped = False  # the case stopped the server and checked its exit itself
        self.expect_exit = 0

    def log(self, msg):
        self.notes.append(msg)
        if self.verbose:
            print(f"    {msg}", flush=True)

    def count(self, r):
        """Counts one request and its response (None: no response)."""
        self.requests += 1
        if r is not None and r.status >= 500:
            self.n5xx += 1
        return r

    def conn(self, timeout=5.0):
        return Conn(self.port, timeout)

    def call(self, method, path, body=None, headers=None, timeout=10.0):
        c = self.conn(timeout)
        try:
            c.send(request_bytes(method, path, body, headers))
            return self.count(c.read_response(timeout))
        finally:
            c.close()

    def stats(self):
        r = self.call("GET", "/stats")
        check(r is not None and r.status == 200, f"GET /stats failed: {r}")
        return r.json()

    def wait_idle(self, timeout=20.0):
        """Polls /stats until nothing is queued or in flight and the encoder's
        item count stands still for three polls."""
        deadline = time.monotonic() + timeout
        last, same = None, 0
        while time.monotonic() < deadline:
            s = self.stats()
            enc = s["encoder"]
            busy = enc.get("queued", 0) + enc.get("outstanding", 0) + s["cache"].get("in_flight", 0)
            if busy == 0 and enc["items"] == last:
                same += 1
                if same >= 3:
                    return s
            else:
                same = 0
            last = enc["items"]
            time.sleep(0.2)
        raise CaseFailed(f"server not idle within {timeout} s")


CASES = []


def case(name, attack, args=(), nofile=None):
    def register(fn):
        CASES.append({"name": name, "attack": attack, "args": list(args), "nofile": nofile,
                      "fn": fn})
        return fn
    return register


# Request smuggling (RFC 9112 6.1, 6.3): the body of a POST /predict is a
# complete GET /stats; a server that frames the body differently from us
# answers the GET as a second response.
SMUGGLED = f"GET /stats HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode()
_POST_HEAD = (f"POST /predict HTTP/1.1\r\nHost: {HOST}\r\n"
              "Content-Type: application/json\r\n")


def _chunked(payload):
    return f"{len(payload):x}\r\n".encode() + payload + b"\r\n0\r\n\r\n"


SMUGGLING = [
    # name, header lines, body, accepted statuses
    ("te_xchunked", ["Transfer-Encoding: xchunked"], SMUGGLED, {400, 501}),
    ("te_gzip", ["Transfer-Encoding: gzip"], SMUGGLED, {400, 501}),
    ("te_chunked_gzip", ["Transfer-Encoding: chunked, gzip"], SMUGGLED, {400, 501}),
    ("te_gzip_chunked", ["Transfer-Encoding: gzip, chunked"], _chunked(SMUGGLED), {400, 501}),
    ("te_chunked_chunked", ["Transfer-Encoding: chunked, chunked"], b"0\r\n\r\n" + SMUGGLED, {400}),
    ("te_identity", ["Transfer-Encoding: identity"], SMUGGLED, {400, 501}),
    # Found by the fuzzer: an element that is not a bare token. Beast stops
    # reading the list at the ';' (so no chunked body), and the framing
    # check once dropped the empty coding and saw one "chunked".
    ("te_param_first", ["Transfer-Encoding: ;chunked, chunked"], _chunked(SMUGGLED), {400}),
    ("te_chunked_param", ["Transfer-Encoding: chunked;x=1"], _chunked(SMUGGLED), {400}),
    ("te_and_cl", [f"Content-Length: {5 + len(SMUGGLED)}", "Transfer-Encoding: chunked"],
     b"0\r\n\r\n" + SMUGGLED, {400}),
    ("cl_differing", ["Content-Length: 0", f"Content-Length: {len(SMUGGLED)}"], SMUGGLED, {400}),
    ("cl_negative", ["Content-Length: -1"], SMUGGLED, {400}),
    ("cl_not_a_number", ["Content-Length: abc"], SMUGGLED, {400}),
    ("cl_list", ["Content-Length: 1,2"], SMUGGLED, {400}),
]


def _make_smuggling_case(variant, lines, body, allowed):
    def run(ctx):
        raw = (_POST_HEAD + "".join(l + "\r\n" for l in lines) + "\r\n").encode() + body
        c = ctx.conn()
        try:
            c.send(raw)
            responses, closed, leftover = c.read_until_close(2.0)
        finally:
            c.close()
        ctx.requests += 2  # the POST and the smuggled GET
        for r in responses:
            ctx.count(r)
            ctx.requests -= 1
        got = [r.status for r in responses]
        ctx.log(f"{variant}: responses {got}, closed {closed}, leftover {leftover[:40]!r}")
        check(len(responses) >= 1, f"no response before close ({'closed' if closed else 'still open'})")
        check(len(responses) == 1,
              f"{len(responses)} responses {got}: the smuggled GET /stats was answered")
        r = responses[0]
        check(r.status in allowed, f"status {r.status}, expected {sorted(allowed)}: {r.body[:100]!r}")
        check(r.closes(), f"{r.status} without 'Connection: close'")
        check(closed, "connection still open 2 s after the rejected request")
        check(not leftover, f"bytes after the response: {leftover[:60]!r}")

    return run


for _v, _l, _b, _a in SMUGGLING:
    case(f"smuggling_{_v}", f"POST /predict with {' + '.join(_l)} hiding a GET /stats")(
        _make_smuggling_case(_v, _l, _b, _a))


@case("smuggling_valid_chunked_ok", "a well-formed chunked POST /predict (must still work)")
def _(ctx):
    body = predict_body(1).encode()
    half = len(body) // 2
    raw = (_POST_HEAD + "Transfer-Encoding: chunked\r\n\r\n").encode()
    raw += f"{half:x}\r\n".encode() + body[:half] + b"\r\n"
    raw += f"{len(body) - half:x}\r\n".encode() + body[half:] + b"\r\n0\r\n\r\n"
    c = ctx.conn()
    try:
        c.send(raw)
        r = ctx.count(c.read_response(5))
    finally:
        c.close()
    check(r is not None, "no response to a valid chunked request")
    check(r.status == 200, f"status {r.status}: {r.body[:120]!r}")
    check(0.0 <= r.json()["prediction"] <= 1.0, f"bad answer {r.body[:120]!r}")


@case("head_framing", "HEAD /health, then GET /health on the same keep-alive connection")
def _(ctx):
    c = ctx.conn()
    try:
        c.send(request_bytes("HEAD", "/health"))
        r = ctx.count(c.read_response(5, head_only=True))
        check(r is not None, "no response to HEAD /health")
        check(r.status == 200, f"HEAD /health: status {r.status}")
        cl = int(r.header("content-length") or 0)
        check(cl > 0, f"HEAD /health: Content-Length {r.header('content-length')!r}, expected > 0")
        # Let any body bytes the server wrongly sends arrive before the next request.
        c.fill(time.monotonic() + 0.3)
        stray = c.buf
        c.send(request_bytes("GET", "/health"))
        try:
            r2 = ctx.count(c.read_response(5))
        except Malformed as e:
            raise CaseFailed(f"HEAD answer carried {len(stray)} body bytes ({stray[:40]!r}); "
                             f"the next response does not parse: {e}")
        check(not stray, f"HEAD answer carried {len(stray)} body bytes: {stray[:40]!r}")
        check(r2 is not None and r2.status == 200, f"GET /health after HEAD: {r2}")
        check(r2.json().get("status") in ("ok", "degraded"), f"GET /health body {r2.body[:80]!r}")
    finally:
        c.close()


@case("lingering_close_413", "10 uploads of 16/32/64 MB to /predict, body sent at full speed")
def _(ctx):
    sizes = [16, 32, 64, 16, 32, 64, 16, 32, 64, 64]
    failures = []
    for i, mb in enumerate(sizes):
        size = mb << 20
        s = socket.create_connection((HOST, ctx.port), timeout=10)
        head = request_bytes("POST", "/predict", None,
                             {"Content-Type": "application/json", "Content-Length": str(size)})
        sent = {"n": 0, "err": None}

        def sender():
            chunk = b"[" * 262144
            try:
                s.sendall(head)
                while sent["n"] < size:
                    n = s.send(chunk[:min(len(chunk), size - sent["n"])])
                    sent["n"] += n
            except OSError as e:
                sent["err"] = e

        t = threading.Thread(target=sender, daemon=True)
        t.start()
        c = Conn.__new__(Conn)
        c.sock, c.buf, c.eof, c.error = s, b"", False, None
        r = c.read_response(10)
        ctx.count(r)
        # Unblock the sender if the server keeps reading: we are done.
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        t.join(10)
        s.close()
        if r is None or r.status != 413:
            what = f"status {r.status}" if r else (
                f"no status line ({c.error or 'EOF'}; {len(c.buf)} bytes read)")
            failures.append(f"#{i + 1} {mb} MB: {what}")
        ctx.log(f"{mb} MB: {r.status if r else None}, sent {sent['n'] >> 20} MB, "
                f"sender error {type(sent['err']).__name__ if sent['err'] else None}")
    check(not failures, f"{len(failures)}/{len(sizes)} uploads did not read the 413: "
          + "; ".join(failures[:4]))


@case("oversized_header_431", "a request with a 20 KiB header value")
def _(ctx):
    r = ctx.call("GET", "/health", headers={"X-Filler": "a" * 20480})
    check(r is not None, "no response (connection closed)")
    check(r.status == 431, f"status {r.status}, expected 431: {r.body[:100]!r}")


@case("oversized_target_414", "a request with a 20 KiB request target")
def _(ctx):
    r = ctx.call("GET", "/health?q=" + "a" * 20480)
    check(r is not None, "no response (connection closed)")
    check(r.status == 414, f"status {r.status}, expected 414: {r.body[:100]!r}")


@case("slow_header_408", "half a request header, then a stall past http.read-timeout (1 s)",
      args=["--http.read-timeout=1"])
def _(ctx):
    c = ctx.conn()
    try:
        t0 = time.monotonic()
        c.send(f"POST /predict HTTP/1.1\r\nHost: {HOST}\r\nContent-Ty".encode())
        r = ctx.count(c.read_response(5))
        took = time.monotonic() - t0
        closed = c.wait_closed(2)
    finally:
        c.close()
    ctx.log(f"after {took:.2f} s: {r}, closed {closed}")
    check(r is not None, f"closed after {took:.2f} s without a 408")
    check(r.status == 408, f"status {r.status} after {took:.2f} s, expected 408")
    check(0.8 <= took <= 3.0, f"408 after {took:.2f} s, read-timeout is 1 s")
    check(closed, "connection still open after the 408")


@case("idle_keepalive_closed", "an idle keep-alive connection and a silent new one past "
      "http.read-timeout (1 s)", args=["--http.read-timeout=1"])
def _(ctx):
    a = ctx.conn()
    b = ctx.conn()
    try:
        a.send(request_bytes("GET", "/health"))
        r = ctx.count(a.read_response(5))
        check(r is not None and r.status == 200, f"GET /health: {r}")
        t0 = time.monotonic()
        closed_a = a.wait_closed(4)
        took = time.monotonic() - t0
        closed_b = b.wait_closed(1)
    finally:
        a.close()
        b.close()
    ctx.log(f"idle keep-alive closed {closed_a} after {took:.2f} s, bytes {a.buf[:40]!r}; "
            f"silent closed {closed_b}, bytes {b.buf[:40]!r}")
    check(closed_a, "idle keep-alive connection still open 4 s after its last answer")
    check(not a.buf, f"idle keep-alive connection got bytes before close: {a.buf[:60]!r}")
    check(closed_b, "silent connection still open")
    check(not b.buf, f"silent connection got bytes before close: {b.buf[:60]!r}")


@case("expect_100_continue", "POST /predict with Expect: 100-continue, waiting for the 100")
def _(ctx):
    body = predict_body(7).encode()
    c = ctx.conn()
    try:
        c.send(request_bytes("POST", "/predict", None,
                             {"Content-Type": "application/json", "Content-Length": str(len(body)),
                              "Expect": "100-continue"}))
        interim = c.read_response(1.5)
        c.send(body)
        final = interim if interim is not None and interim.status != 100 else c.read_response(5)
        ctx.count(final)
    finally:
        c.close()
    ctx.log(f"interim {interim}, final {final}")
    check(interim is not None, "no '100 Continue' within 1.5 s (the client would stall)")
    check(interim.status == 100, f"first response {interim.status}, expected 100 Continue")
    check(final is not None and final.status == 200, f"final response after 100: {final}")


@case("expect_100_over_limit", "Expect: 100-continue with a Content-Length over http.body-limit")
def _(ctx):
    c = ctx.conn()
    try:
        c.send(request_bytes("POST", "/predict", None,
                             {"Content-Type": "application/json", "Content-Length": str(2 << 20),
                              "Expect": "100-continue"}))
        r = ctx.count(c.read_response(3))
    finally:
        c.close()
    check(r is not None, "no response within 3 s")
    check(r.status == 413, f"first response {r.status}, expected 413 without 100 Continue")


@case("bearer_case_insensitive", "GET /agent with bearer / BEARER / wrong / no token",
      args=[f"--admin.token={ADMIN_TOKEN}"])
def _(ctx):
    problems = []
    for auth, want in [(f"Bearer {ADMIN_TOKEN}", 200), (f"bearer {ADMIN_TOKEN}", 200),
                       (f"BEARER {ADMIN_TOKEN}", 200), ("Bearer wrong-token", 401), (None, 401)]:
        r = ctx.call("GET", "/agent", headers={"Authorization": auth} if auth else None)
        label = auth.replace(ADMIN_TOKEN, "TOKEN") if auth else "no Authorization"
        if r is None:
            problems.append(f"{label}: no response")
            continue
        if r.status != want:
            problems.append(f"{label}: {r.status}, expected {want}")
        if want == 401 and "bearer" not in (r.header("www-authenticate") or "").lower():
            problems.append(f"{label}: no 'WWW-Authenticate: Bearer'")
        ctx.log(f"{label}: {r.status}")
    check(not problems, "; ".join(problems))


def _field_values_case(ctx, field, values, warm_first, miss):
    """POST /predict with `field` set to each raw JSON value: 200 with a sane
    answer, or 400 whose JSON error names the field; never 5xx."""
    problems = []
    warm = predict_body(5)
    if warm_first:
        for _ in range(2):
            r = ctx.call("POST", "/predict", warm)
            check(r is not None and r.status == 200, f"warm-up: {r}")
    for k, raw in enumerate(values):
        body = predict_body(1000 + k if miss else 5, extra=f',"{field}":{raw}')
        r = ctx.call("POST", "/predict", body)
        if r is None:
            problems.append(f"{raw}: no response")
            continue
        ctx.log(f"{field}={raw}: {r.status} {r.body[:100]!r}")
        if r.status == 200:
            j = r.json()
            if not 0.0 <= j.get("prediction", -1) <= 1.0:
                problems.append(f"{raw}: 200 with prediction {j.get('prediction')}")
            elif field == "max_age_ms" and warm_first and not raw.startswith("-") and not j["cache_hit"]:
                problems.append(f"{raw}: 200 but a fresh entry was refused as too old")
        elif r.status == 400:
            try:
                msg = json.dumps(r.json()["error"])
            except (ValueError, KeyError, TypeError):
                msg = ""
            if field not in msg:
                problems.append(f"{raw}: 400 whose JSON error does not name {field}: {r.body[:80]!r}")
        else:
            problems.append(f"{raw}: status {r.status} {r.body[:80]!r}")
    r = ctx.call("GET", "/health")
    check(r is not None and r.status == 200, f"/health afterwards: {r}")
    check(not problems, "; ".join(problems))


@case("max_age_overflow", "max_age_ms of 18446744073710, 9.2e15, 1e300, -5 on a cached input")
def _(ctx):
    _field_values_case(ctx, "max_age_ms", ["18446744073710", "9223372036854775807", "9.2e15",
                                           "1e300", "-5"], warm_first=True, miss=False)


@case("timeout_ms_overflow", "timeout_ms of 18446744073710, 9.2e15, 1e300, -5 on misses")
def _(ctx):
    _field_values_case(ctx, "timeout_ms", ["18446744073710", "9223372036854775807", "9.2e15",
                                           "1e300", "-5"], warm_first=False, miss=True)


@case("ttl_overflow", "PUT /admin/cache/ttl with huge, tiny and negative ttl_seconds",
      args=[f"--admin.token={ADMIN_TOKEN}"])
def _(ctx):
    auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    problems = []
    for raw in ["1e300", "18446744073710", "9.2e15", "31536000", "1e-320", "-5"]:
        r = ctx.call("PUT", "/admin/cache/ttl", f'{{"ttl_seconds":{raw}}}', auth)
        if r is None:
            problems.append(f"{raw}: no response")
            continue
        ctx.log(f"ttl_seconds={raw}: {r.status} {r.body[:80]!r}")
        if r.status == 400:
            if "ttl_seconds" not in r.body.decode(errors="replace"):
                problems.append(f"{raw}: 400 without naming ttl_seconds")
        elif r.status == 200:
            ttl = r.json().get("ttl_seconds")
            if not isinstance(ttl, (int, float)) or ttl < 0 or ttl != ttl:
                problems.append(f"{raw}: 200 with ttl_seconds {ttl!r}")
            p = ctx.call("POST", "/predict", predict_body(3))
            if p is None or p.status != 200:
                problems.append(f"{raw}: POST /predict afterwards: {p}")
        else:
            problems.append(f"{raw}: status {r.status}")
    s = ctx.stats()
    check(s["cache"]["ttl_seconds"] >= 0, f"/stats ttl_seconds {s['cache']['ttl_seconds']}")
    check(not problems, "; ".join(problems))


@case("fd_exhaustion", "200 held connections against RLIMIT_NOFILE=64", nofile=64)
def _(ctx):
    srv = ctx.server
    base_sockets = srv.socket_fds()
    held = []
    try:
        for _ in range(200):
            s = socket.create_connection((HOST, ctx.port), timeout=5)
            held.append(s)
        time.sleep(0.5)
        accepted = srv.socket_fds() - base_sockets
        t0, c0 = time.monotonic(), srv.cpu_ticks()
        time.sleep(2.0)
        cpu = (srv.cpu_ticks() - c0) / CLK_TCK / (time.monotonic() - t0)
        ctx.log(f"{accepted} of 200 accepted (socket fds), server CPU {cpu:.0%} of a core over 2 s")
        # Every held connection asks; the accepted ones must be answered.
        for s in held:
            s.sendall(request_bytes("GET", "/health"))
        ctx.requests += len(held)
        counts = tally(read_many(held, 1.5))
        answered = counts.get(200, 0)
        ctx.n5xx += sum(v for k, v in counts.items() if isinstance(k, int) and k >= 500)
        ctx.log(f"{answered} held connections answered 200")
    finally:
        for s in held:
            s.close()
    check(srv.alive(), "server died")
    check(cpu < 0.30, f"server used {cpu:.0%} of a core while out of fds (acceptor spinning)")
    check(answered >= max(1, accepted), f"only {answered} of {accepted} accepted connections "
          "got an answer")
    deadline = time.monotonic() + 2.0
    ok = False
    while time.monotonic() < deadline and not ok:
        try:
            h = ctx.call("GET", "/health", timeout=1)
            p = ctx.call("POST", "/predict", predict_body(9), timeout=1)
            ok = h is not None and h.status == 200 and p is not None and p.status == 200
        except OSError:
            time.sleep(0.05)
    check(ok, "/health and /predict not both 200 within 2 s after the held connections closed")


@case("max_connections", "9 concurrent connections with --http.max-connections=8",
      args=["--http.max-connections=8"])
def _(ctx):
    conns = [ctx.conn() for _ in range(8)]
    try:
        for c in conns:
            c.send(request_bytes("GET", "/health"))
            r = ctx.count(c.read_response(5))
            check(r is not None and r.status == 200, f"one of the first 8 connections: {r}")
        ninth = ctx.conn()
        t0 = time.monotonic()
        try:
            ninth.send(request_bytes("GET", "/health"))
        except OSError:
            pass
        r = ctx.count(ninth.read_response(2))
        took = time.monotonic() - t0
        closed = r is None and (ninth.eof or ninth.error is not None)
        ninth.close()
        ctx.log(f"9th: {r} closed {closed} after {took:.2f} s")
        if r is not None:
            check(r.status == 503, f"9th connection got {r.status}, expected 503 or a close")
            check(r.header("content-type") and "json" in r.header("content-type"),
                  "503 without a JSON body")
            r.json()
        else:
            check(closed, "9th connection neither answered nor closed within 2 s")
        check(took < 1.0, f"9th connection took {took:.2f} s to be refused")
        for c in conns:
            c.send(request_bytes("GET", "/health"))
            r = ctx.count(c.read_response(5))
            check(r is not None and r.status == 200, f"first 8 after the 9th: {r}")
    finally:
        for c in conns:
            c.close()


def _rows64_request(i, salt, extra=""):
    return request_bytes("POST", "/predict", predict_body(i, rows=64, salt=salt, extra=extra))


@case("reset_flood", "300 64-row misses, each connection reset right after sending")
def _(ctx):
    n = 300
    before = ctx.stats()["encoder"]
    for i in range(n):
        s = socket.create_connection((HOST, ctx.port), timeout=5)
        s.sendall(_rows64_request(i, salt=11))
        rst_close(s)
        ctx.requests += 1
    after = ctx.wait_idle(30)["encoder"]
    wasted = after["items"] - before["items"]
    ctx.log(f"encoder items {before['items']} -> {after['items']}: {wasted} wasted encodes, "
            f"cancelled {after.get('cancelled', 'n/a')}")
    print(f"    reset flood: {wasted} of {n} reset requests were encoded anyway "
          f"(encoder.cancelled: {after.get('cancelled', 'not reported')})", flush=True)
    bad = []
    for i in range(12):
        r = ctx.call("POST", "/predict", predict_body(5000 + i, rows=64, salt=12))
        if r is None or r.status != 200:
            bad.append(r)
    check(not bad, f"{len(bad)} of 12 legitimate requests failed afterwards: {bad[:3]}")
    check(wasted < 0.05 * n, f"{wasted} of {n} reset requests were encoded (limit {0.05 * n:.0f})")


def _closed_loop_throughput(port, seconds, concurrency, salt):
    """Misses per second at `concurrency` keep-alive connections."""
    sel = selectors.DefaultSelector()
    conns = []
    seq = [0]

    def fire(c):
        seq[0] += 1
        c.buf = b""
        c.sock.setblocking(True)
        c.sock.sendall(_rows64_request(seq[0], salt))
        c.sock.setblocking(False)

    def fresh():
        c = Conn(port)
        conns.append(c)
        sel.register(c.sock, selectors.EVENT_READ, c)
        fire(c)

    for _ in range(concurrency):
        fresh()
    done = 0
    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds:
        for key, _ in sel.select(0.1):
            c = key.data
            try:
                chunk = c.sock.recv(65536)
            except BlockingIOError:
                continue
            except OSError:
                chunk = b""
            if chunk:
                c.buf += chunk
                got = parse_response(c.buf)
                if not got:
                    continue
                done += got[0].status == 200
                if not got[0].closes():
                    fire(c)
                    continue
            # The server closed this connection (or will): go on with a new one.
            sel.unregister(c.sock)
            c.close()
            fresh()
    took = time.monotonic() - t0
    for c in conns:
        c.close()
    sel.close()
    return done / took, done


def _flood(port, rate, seconds, salt, deadline_ms, out):
    """Open-loop misses: a new connection per request at `rate` per second,
    each given up after 3 s. Runs in a child process (its own interpreter
    lock), so that the hit timings in the parent are not the flooder's.
    It also runs at a lower CPU priority: it stands for clients on other
    machines, and on this shared box it must not take the server's cores."""
    os.nice(10)
    sel = selectors.DefaultSelector()
    stats = {"sent": 0, "ok_in_deadline": 0, "ok_late": 0, "503": 0, "other": 0,
             "closed": 0, "client_timeout": 0, "connect_error": 0, "503_ms": []}
    t0 = time.monotonic()
    i = 0
    pending = {}
    while True:
        now = time.monotonic()
        if now - t0 >= seconds and not pending:
            break
        while now - t0 < seconds and i < rate * (now - t0):
            i += 1
            s = socket.socket()
            s.setblocking(False)
            try:
                s.connect_ex((HOST, port))
            except OSError:
                stats["connect_error"] += 1
                s.close()
                continue
            data = request_bytes("POST", "/predict",
                                 predict_body(i, rows=64, salt=salt,
                                              extra=f',"timeout_ms":{deadline_ms}'),
                                 {"Connection": "close"})
            pending[s] = [now, data, b""]
            sel.register(s, selectors.EVENT_WRITE)
            stats["sent"] += 1
        for key, ev in sel.select(0.002):
            s = key.fileobj
            st = pending.get(s)
            if st is None:
                continue
            try:
                if ev & selectors.EVENT_WRITE and st[1]:
                    n = s.send(st[1])
                    st[1] = st[1][n:]
                    if not st[1]:
                        sel.modify(s, selectors.EVENT_READ)
                    continue
                chunk = s.recv(65536)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                chunk = b""
            done = None
            if chunk:
                st[2] += chunk
                try:
                    got = parse_response(st[2])
                except Malformed:
                    got = None
                    done = "other"
                if got:
                    r = got[0]
                    ms = (time.monotonic() - st[0]) * 1000
                    if r.status == 200:
                        done = "ok_in_deadline" if ms <= deadline_ms else "ok_late"
                    elif r.status == 503:
                        done = "503"
                        stats["503_ms"].append(ms)
                    else:
                        done = "other"
            else:
                done = "closed"
            if done:
                stats[done] += 1
                sel.unregister(s)
                s.close()
                del pending[s]
        now = time.monotonic()
        for s in [s for s, st in pending.items() if now - st[0] > 3.0]:
            stats["client_timeout"] += 1
            sel.unregister(s)
            s.close()
            del pending[s]
    ms = sorted(stats.pop("503_ms"))
    stats["503_p99_ms"] = ms[int(0.99 * (len(ms) - 1))] if ms else None
    out.put(stats)


# The cache is large enough that the flood's misses cannot evict the hot key:
# this case measures admission (are cheap hits refused or queued behind
# expensive misses?), not eviction. Whether a flood of one-off prefixes
# flushes the hot set is the cache policy's question, answered by the
# W-TinyLFU tests and the capacity sweep's scan workload.
@case("hits_under_miss_overload", "hot-prefix hits at 50/s for 10 s under misses at 10x the "
      "encoder's throughput", args=["--http.max-inflight=64"])
def _(ctx):
    # The encoder's throughput on 64-row misses, closed loop.
    tput, n = _closed_loop_throughput(ctx.port, 2.0, 32, salt=21)
    ctx.requests += n
    ctx.wait_idle(15)
    rate = max(50, int(10 * tput))
    ctx.log(f"encoder throughput {tput:.0f} misses/s; flooding at {rate}/s")
    # The hot prefix: identical input until it is a hit.
    hot = request_bytes("POST", "/predict", predict_body(777, salt=22))
    c = ctx.conn()
    for _ in range(20):
        c.send(hot)
        r = ctx.count(c.read_response(5))
        check(r is not None and r.status == 200, f"warm-up: {r}")
        if r.json()["cache_hit"]:
            break
    check(r.json()["cache_hit"], "hot prefix never became a hit")
    mp = multiprocessing.get_context("fork")
    q = mp.Queue()
    flood_s = 11.0
    # One flooder process keeps up with ~1,000 new connections per second;
    # each flooder is a process of its own so that it does not share the
    # interpreter lock with the hit timings below.
    nflood = 1 if rate <= 1000 else 2
    procs = [mp.Process(target=_flood, args=(ctx.port, rate / nflood, flood_s, 23 + k, 1000, q))
             for k in range(nflood)]
    for p in procs:
        p.start()
    try:
        lat, bad, reconnects = [], [], 0
        t_next = time.monotonic()
        # The hot prefix stays hot from the flood's first moment (50 requests
        # a second, as below); the first second, while the flood ramps up,
        # is not timed. A key left idle that long is not hot: W-TinyLFU may
        # rightly give it up to the flood.
        for k in range(550):
            timed = k >= 50
            t_next += 0.02
            time.sleep(max(0.0, t_next - time.monotonic()))
            t0 = time.perf_counter()
            try:
                c.send(hot)
                r = c.read_response(5)
            except OSError:
                r = None
            ms = (time.perf_counter() - t0) * 1000
            ctx.count(r)
            if r is None or r.status != 200:
                bad.append(r.status if r else "no response")
                c.close()
                c = ctx.conn()
                reconnects += 1
                continue
            if not r.json()["cache_hit"]:
                bad.append("not a hit")
            if timed:
                lat.append(ms)
        results = [q.get(timeout=30) for _ in procs]
    finally:
        for p in procs:
            p.join(10)
            if p.is_alive():
                p.kill()
        c.close()
    flood = {k: sum(r[k] or 0 for r in results) for k in results[0] if k != "503_p99_ms"}
    p99_503 = max((r["503_p99_ms"] or 0) for r in results)
    ctx.requests += flood["sent"]
    ctx.n5xx += flood["503"]
    lat.sort()
    check(lat, f"no hot-prefix hit was answered 200: {bad[:5]}")
    p50 = lat[len(lat) // 2]
    p99 = lat[int(0.99 * (len(lat) - 1))]
    line = (f"hits: {len(lat)} ok, {len(bad)} not ok, p50 {p50:.2f} ms, p99 {p99:.2f} ms, "
            f"max {lat[-1]:.2f} ms | misses at {rate}/s (sent {flood['sent'] / flood_s:.0f}/s): {flood['sent']} sent, "
            f"{flood['ok_in_deadline']} 200 within 1 s, {flood['ok_late']} 200 late, "
            f"{flood['503']} 503 (p99 {p99_503:.1f} ms), {flood['other']} other, "
            f"{flood['closed']} closed, {flood['client_timeout']} timed out")
    ctx.log(line)
    print("    " + line, flush=True)
    problems = []
    if bad:
        problems.append(f"{len(bad)} hot-prefix hits were not 200 hits: {bad[:5]}")
    # The target is 5 ms on a quiet machine (what scripts/reliability.py
    # checks and reports). Under ctest the bound is a gross-regression guard
    # (SIL_ATTACK_HIT_P99_MS, 25 ms): a shared CI machine's noise must not
    # fail the build, while hits queued behind misses (seconds) still do.
    bound = float(os.environ.get("SIL_ATTACK_HIT_P99_MS", "5"))
    if p99 > bound:
        problems.append(f"hit p99 {p99:.2f} ms > {bound:g} ms under miss overload "
                        f"(p50 {p50:.2f} ms)")
    try:
        ctx.wait_idle(20)
    except CaseFailed:
        problems.append("server still busy 20 s after the flood ended (work queued for clients "
                        "that gave up)")
    check(not problems, "; ".join(problems))


@case("sigterm_in_flight", "SIGTERM with 200+ slow misses in flight, --http.drain-timeout=1",
      args=["--http.drain-timeout=1", "--workers=1", "--encoder.max-batch=8",
            # No load shedding: every request waits, so the drain deadline
            # (not the queue-delay limit) is what cuts them off.
            "--http.max-queue-delay=0"])
def _(ctx):
    srv = ctx.server
    # Enough misses that the drain deadline surely cuts some off: at least
    # 200, and 4x what the encoder does in a second on this machine now.
    tput, done = _closed_loop_throughput(ctx.port, 1.0, 32, salt=30)
    ctx.requests += done
    ctx.wait_idle(10)
    n = min(800, max(200, int(4 * tput)))
    socks = []
    for i in range(n):
        s = socket.create_connection((HOST, ctx.port), timeout=5)
        s.sendall(_rows64_request(i, salt=31))
        socks.append(s)
    ctx.requests += n
    time.sleep(0.2)
    in_flight = ctx.call("GET", "/health").json()["in_flight"]
    t0 = time.monotonic()
    srv.signal(signal.SIGTERM)
    ctx.stopped = True
    outcome = read_many(socks, 1 + 6)
    rc = srv.wait(max(0.1, t0 + 1 + 6 - time.monotonic()))
    took = time.monotonic() - t0
    for s in socks:
        s.close()
    counts = tally(outcome)
    n503 = counts.get(503, 0)
    ctx.n5xx += n503 + sum(v for k, v in counts.items() if isinstance(k, int) and k > 503)
    err = srv.stderr()
    ctx.log(f"{n} misses sent ({tput:.0f}/s closed loop), {in_flight} in flight at SIGTERM; outcomes {counts}; exit {rc} after {took:.2f} s; stderr: "
            f"{' | '.join(err.strip().splitlines()[-3:])}")
    print(f"    SIGTERM: outcomes {counts}, exit {rc} after {took:.2f} s", flush=True)
    problems = []
    if rc is None:
        problems.append(f"server still running {took:.1f} s after SIGTERM (drain-timeout 1 s)")
    elif took > 1 + 4:
        problems.append(f"server took {took:.1f} s to exit (drain-timeout 1 s)")
    broken = {k: v for k, v in counts.items() if k not in (200, 503)}
    if broken:
        problems.append(f"{sum(broken.values())} of {n} clients got no complete 200/503: {broken}")
    if n503:
        if rc == 0:
            problems.append(f"{n503} requests dropped with 503 at the deadline, but exit status 0")
        lines = [l for l in err.splitlines() if "drop" in l.lower()]
        if not any(re.search(rf"\b{n503}\b", l) for l in lines):
            problems.append(f"stderr does not say that {n503} requests were dropped")
    elif broken and rc == 0:
        problems.append(f"exit status 0 although {sum(broken.values())} requests got no answer "
                        f"(stderr: {' | '.join(err.strip().splitlines()[-2:])})")
    elif rc not in (0, None):
        problems.append(f"nothing dropped but exit status {rc}")
    check(not problems, "; ".join(problems))


@case("garbage_and_bad_json", "random bytes as requests, malformed HTTP and JSON bodies")
def _(ctx):
    rng = random.Random(20240607)
    problems = []
    payloads = []
    for _ in range(16):
        payloads.append(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 400)))
                        + b"\r\n\r\n")
    payloads += [
        b"GET / HTTP/1.1\r\nHost x\r\n\r\n",
        b"GET /health HTTP/9.9\r\n\r\n",
        b"G\x00T /health HTTP/1.1\r\n\r\n",
        b"GET /health HTTP/1.1\r\nHost: a\x00b\r\n\r\n",
        b"GET  /health  HTTP/1.1\r\n\r\n",
        b"\r\n\r\n\r\n\r\nGARBAGE\r\n\r\n",
        b"GET /health HTTP/1.1\r\n Host: folded\r\n\r\n",
    ]
    for p in payloads:
        c = ctx.conn()
        try:
            c.send(p)
            responses, closed, leftover = c.read_until_close(3)
        except OSError as e:
            responses, closed, leftover = [], True, repr(e)
        finally:
            c.close()
        ctx.requests += 1
        for r in responses:
            if r.status >= 500:
                ctx.n5xx += 1
        statuses = [r.status for r in responses]
        if not responses or not all(400 <= s < 500 for s in statuses):
            problems.append(f"{p[:24]!r}: {statuses or 'no response'}")
    deep = "[" * 100000 + "]" * 100000
    bodies = [
        "{", '{"features":', "[]", "null", '"x"', '{"features":"x"}', '{"features":[[1,2]]}',
        '{"features":[[' + ",".join(["1"] * 32) + ']],"features":[]}',
        '{"features":[[' + ",".join(["NaN"] * 32) + "]]}",
        '{"features":[[' + ",".join(["1e999"] * 32) + "]]}",
        '{"features":[[' + "1" * 5000 + "," + ",".join(["1"] * 31) + "]]}",
        '{"features":[[' + ",".join(["1"] * 32) + ']],"use_cache":"\xff"}',
        '{"features":' + deep + "}",
        deep,
        '{"features":[' + ",".join(["[" + ",".join(["1"] * 32) + "]"] * 65) + "]}",
        '{"features":[[' + ",".join(["1"] * 32) + "]]" + " " * 10 + "trailing",
    ]
    for b in bodies:
        data = b.encode("utf-8", errors="surrogateescape") if isinstance(b, str) else b
        r = ctx.call("POST", "/predict", data)
        if r is None or not 400 <= r.status < 500:
            problems.append(f"body {b[:30]!r}: {r.status if r else 'no response'}")
    h = ctx.call("GET", "/health")
    check(h is not None and h.status == 200, f"/health afterwards: {h}")
    check(not problems, f"{len(problems)} not answered with 4xx: " + "; ".join(problems[:5]))


# -- runner -------------------------------------------------------------------------


def run_case(binary, spec, verbose):
    t0 = time.monotonic()
    rec = {"name": spec["name"], "attack": spec["attack"], "requests": 0, "5xx": 0,
           "crashed": False, "rss_before_kb": None, "rss_after_kb": None, "exit_status": None}
    srv = Server(binary, spec["args"], spec["nofile"])
    ctx = None
    failure = None
    try:
        srv.start()
        ctx = Ctx(srv, verbose)
        rec["rss_before_kb"] = srv.rss_kb()
        spec["fn"](ctx)
    except CaseFailed as e:
        failure = str(e)
    except Exception as e:  # a broken socket or a bug: still a failure, with its trace
        failure = f"{type(e).__name__}: {e}"
        if verbose:
            traceback.print_exc()
    finally:
        if ctx is not None:
            rec["requests"], rec["5xx"] = ctx.requests, ctx.n5xx
        if srv.proc is not None:
            if ctx is None or not ctx.stopped:
                if not srv.alive():
                    rec["crashed"] = srv.port is not None
                    rec["exit_status"] = srv.proc.returncode
                    if srv.port is not None:  # started, then died
                        failure = failure or f"server died (exit {srv.proc.returncode})"
                else:
                    rec["rss_after_kb"] = srv.rss_kb()
                    rc = srv.stop()
                    rec["exit_status"] = rc
                    if rc != 0 and failure is None:
                        failure = (f"server exited {rc} after SIGTERM, expected 0: "
                                   + " | ".join(srv.stderr().strip().splitlines()[-2:]))
            else:
                rec["exit_status"] = srv.rc
                rec["crashed"] = srv.rc is not None and srv.rc < 0
            srv.kill()
    rec["outcome"] = "held" if failure is None else "failed"
    rec["detail"] = (failure or (ctx.notes[-1] if ctx and ctx.notes else "ok")).replace("\n", " ")
    rec["seconds"] = round(time.monotonic() - t0, 2)
    return rec


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("server", nargs="?", help="path of sil-server")
    ap.add_argument("-k", action="append", default=[], help="run cases whose name contains this")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--report", help="write per-case results as JSON here")
    ap.add_argument("-v", "--verbose", action="store_true")
    a = ap.parse_args(argv)
    selected = [c for c in CASES if not a.k or any(k in c["name"] for k in a.k)]
    if a.list:
        for c in selected:
            print(f"{c['name']:32} {c['attack']}")
        return 0
    if not a.server or not os.access(a.server, os.X_OK):
        ap.error("the path of an executable sil-server is required")
    if not selected:
        ap.error(f"no case matches {a.k}")
    t0 = time.monotonic()
    records = []
    for spec in selected:
        print(f"[ RUN  ] {spec['name']}", flush=True)
        rec = run_case(a.server, spec, a.verbose)
        records.append(rec)
        tag = "[  OK  ]" if rec["outcome"] == "held" else "[ FAIL ]"
        print(f"{tag} {spec['name']} ({rec['seconds']:.1f} s, {rec['requests']} requests, "
              f"{rec['5xx']} 5xx{', server died' if rec['crashed'] else ''}): {rec['detail']}",
              flush=True)
    failed = [r["name"] for r in records if r["outcome"] != "held"]
    took = time.monotonic() - t0
    print(f"\n{len(records) - len(failed)} of {len(records)} attacks held in {took:.1f} s")
    if failed:
        print("failed: " + ", ".join(failed))
    if a.report:
        os.makedirs(os.path.dirname(os.path.abspath(a.report)), exist_ok=True)
        with open(a.report, "w") as f:
            json.dump({"server": os.path.abspath(a.server), "seconds": round(took, 1),
                       "unix_time": int(time.time()), "cases": records}, f, indent=1)
            f.write("\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
