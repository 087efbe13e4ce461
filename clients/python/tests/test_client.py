"""Tests of sil_client against the real sil-server binary (standard library
only). The binary comes from $SIL_SERVER_BINARY (ctest sets it), else
build/sil-server in the repository. Each test class starts its own server on
a free loopback port and stops it with SIGTERM at the end, which must exit 0.

    SIL_SERVER_BINARY=build/sil-server python3 -m unittest discover -s clients/python/tests
"""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
PACKAGE_ROOT = os.path.dirname(HERE)  # clients/python
sys.path.insert(0, PACKAGE_ROOT)

from sil_client import Client, SilConnectionError, SilError, SilHTTPError  # noqa: E402

REPO = os.path.dirname(os.path.dirname(PACKAGE_ROOT))
SERVER = os.environ.get("SIL_SERVER_BINARY", os.path.join(REPO, "build", "sil-server"))
TOKEN = "client-test-token"


def row(first, last=0.0):
    """One input row: `first`, three ones, zeros, `last` (32 values)."""
    return [first, 1, 1, 1] + [0] * 27 + [last]


class Server:
    """sil-server on port 0; its "listening on HOST:PORT" line gives the URL."""

    def __init__(self, *flags):
        args = [SERVER, "--port=0", "--model.preset=seed", "--workers=2", "--audit.rate=0",
                *flags]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
        self.stderr = []
        threading.Thread(target=lambda: self.stderr.extend(self.proc.stderr),
                         daemon=True).start()
        deadline = time.monotonic() + 30
        self.url = None
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            m = re.match(r"listening on (\S+):(\d+)", line)
            if m:
                self.url = f"http://{m.group(1)}:{m.group(2)}"
                break
        if self.url is None:
            self.proc.kill()
            self.proc.wait()
            raise RuntimeError(f"{SERVER} did not print its listening line: "
                               + "".join(self.stderr)[-2000:])
        # Drain stdout so that the server never blocks on a full pipe.
        threading.Thread(target=self.proc.stdout.read, daemon=True).start()

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return None


def free_port():
    """A loopback port with nothing listening on it (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_cli(*args, env_extra=None):
    env = dict(os.environ)
    env.pop("SIL_URL", None)
    env.pop("SIL_ADMIN_TOKEN", None)
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-m", "sil_client", *args], cwd=PACKAGE_ROOT,
                          env=env, capture_output=True, text=True, timeout=60)


class ServerTestCase(unittest.TestCase):
    flags = ()

    @classmethod
    def setUpClass(cls):
        cls.server = Server(*cls.flags)

    @classmethod
    def tearDownClass(cls):
        code = cls.server.stop()
        if code != 0:
            raise AssertionError(f"sil-server exited with {code} after SIGTERM: "
                                 + "".join(cls.server.stderr)[-2000:])


class PredictAndReadTest(ServerTestCase):
    flags = (f"--admin.token={TOKEN}",)

    def setUp(self):
        self.c = Client(self.server.url, timeout=10)

    def test_a_miss_then_a_hit_of_the_same_input(self):
        first = self.c.predict([row(11.0)])
        self.assertFalse(first["cache_hit"])
        self.assertEqual(first["source"], "encoder")
        self.assertGreaterEqual(first["prediction"], 0.0)
        self.assertLessEqual(first["prediction"], 1.0)
        again = self.c.predict([row(11.0)])
        self.assertTrue(again["cache_hit"])
        self.assertEqual(again["source"], "cache")
        self.assertEqual(again["prediction"], first["prediction"])
        self.assertEqual(again["risk"]["basis"], "exact")
        self.assertIn("cache_age_ms", again)

    def test_a_flat_row_is_sent_as_one_row(self):
        one = self.c.predict(row(12.0))
        two = self.c.predict([row(12.0)])
        self.assertEqual(one["prediction"], two["prediction"])
        self.assertTrue(two["cache_hit"])

    def test_use_cache_false_computes_fresh(self):
        self.c.predict([row(13.0)])
        fresh = self.c.predict([row(13.0)], use_cache=False)
        self.assertFalse(fresh["cache_hit"])
        self.assertEqual(fresh["source"], "encoder")

    def test_max_age_and_budget_fields_are_sent(self):
        self.c.predict([row(14.0)])
        time.sleep(0.05)
        # The entry is older than 1 ms: refused, computed fresh.
        old = self.c.predict([row(14.0)], max_age_ms=1)
        self.assertFalse(old["cache_hit"])
        ok = self.c.predict([row(14.0)], max_age_ms=60000, max_wrong_rate=0.5, timeout_ms=5000)
        self.assertTrue(ok["cache_hit"])

    def test_bad_row_length_is_a_400_with_the_servers_error(self):
        with self.assertRaises(SilHTTPError) as cm:
            self.c.predict([[1, 2, 3]])
        e = cm.exception
        self.assertEqual(e.status, 400)
        self.assertEqual(e.code, "bad_request")
        self.assertEqual(e.message, "row 0 has 3 values, expected 32")
        self.assertEqual(e.error, {"code": "bad_request", "message": e.message})
        self.assertIsInstance(e, SilError)

    def test_out_of_range_fields_and_non_finite_numbers_are_400(self):
        for kwargs in ({"max_age_ms": -1}, {"max_wrong_rate": 2.0}, {"timeout_ms": 0}):
            with self.subTest(**kwargs), self.assertRaises(SilHTTPError) as cm:
                self.c.predict([row(15.0)], **kwargs)
            self.assertEqual(cm.exception.status, 400)
            self.assertIn(next(iter(kwargs)), cm.exception.message)
        with self.assertRaises(SilHTTPError) as cm:
            self.c.predict([row(float("nan"))])
        self.assertEqual(cm.exception.status, 400)
        with self.assertRaises(SilHTTPError) as cm:
            self.c.predict([])
        self.assertEqual(cm.exception.status, 400)

    def test_health_stats_metrics(self):
        h = self.c.health()
        self.assertEqual(h["status"], "ok")
        self.assertTrue(h["cache_enabled"])
        self.c.predict([row(16.0)])
        s = self.c.stats()
        self.assertIn("hits", s["cache"])
        self.assertGreaterEqual(s["requests"]["predict"], 1)
        m = self.c.metrics()
        self.assertIsInstance(m, str)
        self.assertRegex(m, r"(?m)^sil_cache_misses_total \d+")

    def test_unknown_route_is_a_typed_404(self):
        with self.assertRaises(SilHTTPError) as cm:
            self.c._call("GET", "/no-such-route")
        self.assertEqual(cm.exception.status, 404)
        self.assertEqual(cm.exception.code, "not_found")

    def test_admin_without_a_token_is_401(self):
        for call in (self.c.agent, self.c.disable_cache, self.c.resume_agent):
            with self.subTest(call=call.__name__), self.assertRaises(SilHTTPError) as cm:
                call()
            self.assertEqual(cm.exception.status, 401)
            self.assertEqual(cm.exception.code, "unauthorized")

    def test_admin_with_a_wrong_token_is_401(self):
        wrong = Client(self.server.url, token="not-" + TOKEN)
        with self.assertRaises(SilHTTPError) as cm:
            wrong.set_ttl(5)
        self.assertEqual(cm.exception.status, 401)
        self.assertEqual(cm.exception.message, "wrong admin token")
        self.assertTrue(self.c.health()["cache_enabled"])  # nothing changed

    def test_admin_calls_with_the_token(self):
        admin = Client(self.server.url, token=TOKEN)
        try:
            state = admin.disable_cache()
            self.assertTrue(state["manual_override"])
            self.assertFalse(admin.health()["cache_enabled"])
            admin.enable_cache()
            self.assertTrue(admin.health()["cache_enabled"])
            state = admin.set_ttl(5)
            self.assertEqual(state["ttl_seconds"], 5)
            self.assertEqual(admin.stats()["cache"]["ttl_seconds"], 5)
            admin.predict([row(17.0)])
            admin.clear_cache()
            deadline = time.monotonic() + 5
            while admin.stats()["cache"]["size"] != 0 and time.monotonic() < deadline:
                time.sleep(0.02)
            self.assertEqual(admin.stats()["cache"]["size"], 0)
            with self.assertRaises(SilHTTPError) as cm:
                admin.set_ttl(-1)
            self.assertEqual(cm.exception.status, 400)
            self.assertIn("ttl_seconds", cm.exception.message)
        finally:
            state = admin.resume_agent()
        self.assertFalse(state["manual_override"])
        log = admin.agent()["decisions"]
        self.assertEqual(log[-1]["action"], "resume")
        self.assertTrue(all(d["manual"] for d in log))


class ModelsAndCanaryTest(ServerTestCase):
    """Versions and canary cache policies through the client."""
    flags = (f"--admin.token={TOKEN}",)

    def setUp(self):
        self.admin = Client(self.server.url, token=TOKEN, timeout=30)

    def test_load_promote_and_unload_a_version(self):
        before = self.admin.models()
        first = before["versions"][0]["version"]
        loaded = self.admin.load_model("seed", preset="seed", seed=11, warm=2)
        new = loaded["version"]
        self.assertTrue(new.startswith("s11-"))
        self.assertEqual(self.admin.predict([row(1.0)], model="seed", version="s11")
                         ["model_version"], new)
        self.assertEqual(self.admin.set_default_version("seed", new)["previous_default"], first)
        self.assertEqual(self.admin.predict([row(2.0)])["model_version"], new)
        self.admin.unload_model("seed", first)
        with self.assertRaises(SilHTTPError) as cm:
            self.admin.predict([row(1.0)], version=first)
        self.assertEqual(cm.exception.status, 404)
        with self.assertRaises(SilHTTPError) as cm:
            self.admin.predict([row(1.0)], model="nope")
        self.assertEqual(cm.exception.status, 404)
        self.assertIn("nope", cm.exception.message)

    def test_a_canary_starts_and_is_aborted(self):
        version = self.admin.models()["versions"][0]["version"]
        started = self.admin.start_canary("seed", version, {"name": "short", "ttl_seconds": 2},
                                          share=0.3)
        running = started["canaries"]["running"]
        self.assertEqual(len(running), 1)
        self.assertEqual(running[0]["candidate"]["ttl_seconds"], 2)
        with self.assertRaises(SilHTTPError) as cm:
            self.admin.start_canary("seed", version, {"name": "again"})
        self.assertEqual(cm.exception.status, 409)
        self.assertEqual(len(self.admin.agent()["canaries"]["running"]), 1)
        ended = self.admin.abort_canary("seed", version)
        self.assertEqual(ended["canaries"]["running"], [])
        self.assertEqual(ended["canaries"]["decisions"][-1]["action"], "rollback")
        with self.assertRaises(SilHTTPError) as cm:
            self.admin.promote_canary("seed", version)
        self.assertEqual(cm.exception.status, 404)


class NoAdminTokenTest(ServerTestCase):
    """A server without admin.token: the admin API is off (403)."""

    def test_admin_is_403(self):
        c = Client(self.server.url, token="anything")
        with self.assertRaises(SilHTTPError) as cm:
            c.clear_cache()
        self.assertEqual(cm.exception.status, 403)
        self.assertEqual(cm.exception.code, "forbidden")


class ReadinessTest(unittest.TestCase):
    """live() and ready(): a serving node is both; a gateway that cannot
    answer predictions (no worker, no fallback) is live but not ready."""

    def test_a_serving_node_is_live_and_ready(self):
        server = Server()
        try:
            c = Client(server.url)
            self.assertEqual(c.live()["status"], "ok")
            ready = c.ready()
            self.assertTrue(ready["ready"])
            self.assertEqual(ready["status"], "ok")
        finally:
            server.stop()

    def test_a_gateway_without_workers_is_live_but_not_ready(self):
        server = Server("--role=gateway", "--workers=0", "--cluster.port=0",
                        "--cluster.fallback=reject")
        try:
            c = Client(server.url)
            self.assertEqual(c.live()["status"], "ok")
            with self.assertRaises(SilHTTPError) as cm:
                c.ready()
            self.assertEqual(cm.exception.status, 503)
            with self.assertRaises(SilHTTPError) as cm:
                c.health()
            self.assertEqual(cm.exception.status, 503)
        finally:
            server.stop()


class ConnectionTest(unittest.TestCase):
    def test_connection_refused_is_a_typed_error(self):
        url = f"http://127.0.0.1:{free_port()}"
        with self.assertRaises(SilConnectionError) as cm:
            Client(url, timeout=5).health()
        self.assertEqual(cm.exception.url, url)
        self.assertFalse(cm.exception.timed_out)
        self.assertIsInstance(cm.exception, SilError)

    def test_no_answer_within_the_timeout(self):
        # A listener that accepts and never answers.
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            s.listen()
            url = f"http://127.0.0.1:{s.getsockname()[1]}"
            start = time.monotonic()
            with self.assertRaises(SilConnectionError) as cm:
                Client(url, timeout=0.3).stats()
            self.assertTrue(cm.exception.timed_out)
            self.assertLess(time.monotonic() - start, 20)  # a gross bound only

    def test_a_url_that_is_not_http_is_refused(self):
        with self.assertRaises(ValueError):
            Client("127.0.0.1:8000")


class CommandLineTest(ServerTestCase):
    flags = (f"--admin.token={TOKEN}",)

    def test_predict_prints_the_answer(self):
        r = run_cli("predict", "--url", self.server.url, "--features", json.dumps([row(21.0)]))
        self.assertEqual(r.returncode, 0, r.stderr)
        out = json.loads(r.stdout)
        self.assertFalse(out["cache_hit"])
        r = run_cli("predict", f"--url={self.server.url}", "--features", json.dumps([row(21.0)]))
        self.assertTrue(json.loads(r.stdout)["cache_hit"])
        r = run_cli("predict", "--url", self.server.url, "--no-cache", "--features",
                    json.dumps([row(21.0)]))
        self.assertFalse(json.loads(r.stdout)["cache_hit"])

    def test_bad_input_exits_1_with_the_servers_error(self):
        r = run_cli("predict", "--url", self.server.url, "--features", "[[1,2,3]]")
        self.assertEqual(r.returncode, 1)
        self.assertIn("HTTP 400 bad_request: row 0 has 3 values, expected 32", r.stderr)
        self.assertEqual(r.stdout, "")

    def test_features_that_are_not_json_are_a_usage_error(self):
        r = run_cli("predict", "--url", self.server.url, "--features", "[[1,")
        self.assertEqual(r.returncode, 2)
        self.assertIn("--features", r.stderr)

    def test_health_stats_and_metrics(self):
        r = run_cli("health", "--url", self.server.url)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout)["status"], "ok")
        r = run_cli("stats", env_extra={"SIL_URL": self.server.url})
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("cache", json.loads(r.stdout))
        r = run_cli("metrics", "--url", self.server.url)
        self.assertIn("sil_cache_hits_total", r.stdout)

    def test_admin_needs_the_token(self):
        r = run_cli("admin", "clear", "--url", self.server.url)
        self.assertEqual(r.returncode, 1)
        self.assertIn("HTTP 401", r.stderr)
        r = run_cli("admin", "ttl", "7", "--url", self.server.url, "--token", TOKEN)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout)["ttl_seconds"], 7)
        r = run_cli("admin", "resume", "--url", self.server.url,
                    env_extra={"SIL_ADMIN_TOKEN": TOKEN})
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertFalse(json.loads(r.stdout)["manual_override"])
        r = run_cli("admin", "ttl", "--url", self.server.url, "--token", TOKEN)
        self.assertEqual(r.returncode, 2)

    def test_connection_refused_exits_3(self):
        r = run_cli("health", "--url", f"http://127.0.0.1:{free_port()}")
        self.assertEqual(r.returncode, 3)
        self.assertIn("cannot reach", r.stderr)


if __name__ == "__main__":
    unittest.main()
