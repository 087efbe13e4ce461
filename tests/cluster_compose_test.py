#!/usr/bin/env python3
"""Runs deploy/docker-compose.cluster.yml's topology without Docker.

Every sil-server service of the compose file is started with exactly its
`command` and `environment`; only addresses change (service names and
0.0.0.0 become 127.0.0.1, ports become free loopback ports). Then Debian's
`prometheus` runs deploy/prometheus.yml itself (linked, not copied, into a
scratch directory whose targets/ points at the local gateway) and must scrape
the gateway as healthy and answer a query for the hit-rate series.

usage: cluster_compose_test.py SIL_SERVER DEPLOY_DIR
Bounded: about 20 s. At the end every child is stopped with SIGTERM and must
exit 0 (a sanitizer build's report, for one, makes it exit 1): a child that
exited early, exits with another code, dies of a signal or does not stop
within 30 s fails the test.
"""
import json
import os
import select
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

import yaml


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.read().decode()


def post(url, body):
    req = urllib.request.Request(url, data=body.encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.status, json.loads(r.read())


def wait_line(proc, prefix, timeout):
    """Reads the child's stdout until a line starts with `prefix`."""
    deadline = time.time() + timeout
    buf = b""
    while time.time() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.1)
        if not ready:
            continue
        chunk = os.read(proc.stdout.fileno(), 4096)
        if not chunk:
            break
        buf += chunk
        for line in buf.decode(errors="replace").splitlines():
            if line.startswith(prefix):
                return line
    raise RuntimeError(f"no line starting with {prefix!r} within {timeout} s; got {buf!r}")


def main():
    server, deploy = sys.argv[1], sys.argv[2]
    with open(os.path.join(deploy, "docker-compose.cluster.yml")) as f:
        compose = yaml.safe_load(f)
    services = compose["services"]
    sil = {n: s for n, s in services.items() if s.get("image", "").startswith("sil-server")}
    gateways = [n for n, s in sil.items() if "--role=gateway" in s["command"]]
    workers = [n for n, s in sil.items() if "--role=worker" in s["command"]]
    assert len(gateways) == 1 and len(workers) == 2, (gateways, workers)
    cluster_port = free_port()
    children = []  # (name, Popen)
    passed = False
    tmp = tempfile.mkdtemp(prefix="sil-compose-")

    def start(name, extra_env):
        env = dict(os.environ)
        env.update({k: str(v) for k, v in sil[name].get("environment", {}).items()})
        # Addresses only: the same command, the same settings otherwise.
        for k, v in list(env.items()):
            if k.startswith("SIL_") and v == "0.0.0.0":
                env[k] = "127.0.0.1"
        env.update(extra_env)
        argv = [server] + list(sil[name]["command"])
        p = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=sys.stderr)
        children.append((name, p))
        return p

    try:
        gw = start(gateways[0], {"SIL_PORT": "0", "SIL_CLUSTER_PORT": str(cluster_port)})
        line = wait_line(gw, "listening on ", 20)
        http = int(line.rsplit(":", 1)[1])
        for w in workers:
            gw_host, _ = sil[w]["environment"]["SIL_GATEWAY"].split(":")
            assert gw_host == gateways[0], "workers must point at the gateway service"
            # Each worker node's HTTP listener (health, /metrics) gets a free
            # port: in compose every node has its own address.
            p = start(w, {"SIL_GATEWAY": f"127.0.0.1:{cluster_port}", "SIL_PORT": "0"})
            wait_line(p, "joined ", 20)
        base = f"http://127.0.0.1:{http}"
        status, body = get(base + "/health")
        health = json.loads(body)
        assert health["status"] == "ok", health
        stats = json.loads(get(base + "/stats")[1])
        nodes = {n["name"]: n["state"] for n in stats["encoder"]["nodes"]}
        for w in workers:
            name = sil[w]["environment"]["SIL_NODE_NAME"]
            assert nodes.get(name) == "up", nodes
        # Traffic with repeats, so that the hit rate is above 0.
        for i in range(40):
            feats = [float(i % 5)] * 4 + [0.1 * (i % 5)] * 28  # exact repeats
            status, r = post(base + "/predict", json.dumps({"features": [feats]}))
            assert status == 200 and 0.0 <= r["prediction"] <= 1.0, r
        print(f"compose topology: gateway :{http}, registry :{cluster_port}, nodes {nodes}")

        # Prometheus with deploy/prometheus.yml itself.
        os.symlink(os.path.abspath(os.path.join(deploy, "prometheus.yml")),
                   os.path.join(tmp, "prometheus.yml"))
        os.makedirs(os.path.join(tmp, "targets"))
        with open(os.path.join(tmp, "targets", "sil.json"), "w") as f:
            json.dump([{"targets": [f"127.0.0.1:{http}"], "labels": {"service": "sil-gateway"}}], f)
        prom_port = free_port()
        prom = subprocess.Popen(
            ["prometheus", f"--config.file={tmp}/prometheus.yml",
             f"--web.listen-address=127.0.0.1:{prom_port}", f"--storage.tsdb.path={tmp}/data"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        children.append(("prometheus", prom))
        api = f"http://127.0.0.1:{prom_port}/api/v1"
        deadline = time.time() + 40
        health = None
        while time.time() < deadline:
            try:
                targets = json.loads(get(api + "/targets")[1])["data"]["activeTargets"]
                if targets:
                    health = targets[0]["health"]
                    if health == "up":
                        break
            except OSError:
                pass
            time.sleep(0.5)
        assert health == "up", f"prometheus target health: {health}"
        value = None
        while time.time() < deadline:
            q = urllib.parse.quote('sil_cache_hit_ratio{service="sil-gateway"}')
            result = json.loads(get(api + "/query?query=" + q)[1])["data"]["result"]
            if result:
                value = float(result[0]["value"][1])
                break
            time.sleep(0.5)
        assert value is not None, "no sil_cache_hit_ratio series"
        assert value > 0.0, f"hit ratio {value}"
        print(f"prometheus: target up, sil_cache_hit_ratio = {value:.3f}")
        passed = True
        return 0
    finally:
        bad = stop_children(children)
        for line in bad:
            print(f"FAIL: {line}", file=sys.stderr)
        if bad and passed:
            return 1  # (when the test already failed, its exception goes on)


def describe(code):
    return f"died of signal {-code}" if code < 0 else f"exited with code {code}"


def stop_children(children):
    """SIGTERM to every child, then each must exit 0; returns the failures."""
    bad = []
    for name, p in children:
        if p.poll() is not None:
            bad.append(f"{name} (pid {p.pid}) ended before the test stopped it: "
                       f"{describe(p.returncode)}")
        else:
            p.terminate()
    for name, p in children:
        try:
            code = p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            bad.append(f"{name} (pid {p.pid}) did not exit within 30 s of SIGTERM (killed)")
            continue
        if code != 0 and not any(f"(pid {p.pid})" in b for b in bad):
            bad.append(f"{name} (pid {p.pid}) {describe(code)} after SIGTERM, expected 0")
    return bad


if __name__ == "__main__":
    sys.exit(main())
