#!/usr/bin/env python3
"""Runs deploy/docker-compose.cluster.yml's topology without Docker.

First the file itself: every sil-server service restarts on failure, gives
SIGTERM's drain more time than http.drain-timeout (stop_grace_period), and
has a health check `sil-server --probe http://127.0.0.1:PORT/health/ready` on
its own SIL_PORT; node names and ports are distinct, and no service uses the
host's network (all nodes would share one CAF node id).

Then every sil-server service is started with exactly its `command` and
`environment`; only addresses change (service names and 0.0.0.0 become
127.0.0.1, ports become free loopback ports). Each service's health check
command runs against it with this build's sil-server. Then Debian's
`prometheus` runs deploy/prometheus.yml itself (linked, not copied, into a
scratch directory with alerts.yml and a targets/ that points at the local
gateway) and must scrape the gateway as healthy, load and evaluate the
alerting rules (none firing), answer queries for the hit-rate series and
the workers' node state, and run every query of the Grafana dashboard.

usage: cluster_compose_test.py SIL_SERVER DEPLOY_DIR
Bounded: about 20 s. At the end every child is stopped with SIGTERM and must
exit 0 (a sanitizer build's report, for one, makes it exit 1): a child that
exited early, exits with another code, dies of a signal or does not stop
within 30 s fails the test.
"""
import json
import os
import re
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


OUTPUT = {}  # pid -> everything the child wrote to stdout so far


def wait_line(proc, prefix, timeout):
    """Reads the child's stdout until a line starts with `prefix` (earlier
    lines stay in OUTPUT for later questions)."""
    deadline = time.time() + timeout
    while True:
        buf = OUTPUT.setdefault(proc.pid, b"")
        for line in buf.decode(errors="replace").splitlines():
            if line.startswith(prefix):
                return line
        if time.time() >= deadline:
            break
        ready, _, _ = select.select([proc.stdout], [], [], 0.1)
        if not ready:
            continue
        chunk = os.read(proc.stdout.fileno(), 4096)
        if not chunk:
            break
        OUTPUT[proc.pid] = buf + chunk
    raise RuntimeError(f"no line starting with {prefix!r} within {timeout} s; "
                       f"got {OUTPUT.get(proc.pid)!r}")


def has_line(proc, prefix):
    buf = OUTPUT.get(proc.pid, b"").decode(errors="replace")
    return any(line.startswith(prefix) for line in buf.splitlines())


def seconds(text):
    """A compose duration ("20s", "1m30s", "1.5s") in seconds."""
    total, number = 0.0, ""
    units = {"h": 3600, "m": 60, "s": 1}
    for c in str(text):
        if c.isdigit() or c == ".":
            number += c
        else:
            total += float(number) * units[c]
            number = ""
    return total + (float(number) if number else 0.0)


def check_compose_file(compose, sil):
    """The compose file's own promises (no process needed)."""
    names, ports = set(), set()
    for name, svc in compose["services"].items():
        assert svc.get("network_mode") != "host", \
            f"{name}: host networking gives every PID-1 server one CAF node id"
        assert svc.get("restart") in ("always", "unless-stopped", "on-failure"), \
            f"{name}: restart policy {svc.get('restart')!r}"
    for name, svc in sil.items():
        env = svc.get("environment", {})
        drain = float(env.get("SIL_HTTP_DRAIN_TIMEOUT", 10))
        grace = seconds(svc.get("stop_grace_period", "10s"))
        assert grace > drain, f"{name}: stop_grace_period {grace} s <= drain timeout {drain} s"
        port = int(env.get("SIL_PORT", 8000))
        test = svc.get("healthcheck", {}).get("test")
        want = ["CMD", "sil-server", "--probe", f"http://127.0.0.1:{port}/health/ready"]
        assert test == want, f"{name}: healthcheck {test}, expected {want}"
        node = env.get("SIL_NODE_NAME")
        assert node and node not in names, f"{name}: node name {node!r} missing or repeated"
        names.add(node)
        assert port not in ports, f"{name}: port {port} used twice"
        ports.add(port)
    prom = compose["services"]["prometheus"]
    mounts = [v.split(":")[:2] for v in prom.get("volumes", [])]
    config = [dst for src, dst in mounts if src == "./prometheus.yml"][0]
    with open(os.path.join(os.path.dirname(__file__), "..", "deploy", "prometheus.yml")) as f:
        rules = yaml.safe_load(f)["rule_files"]
    for r in rules:
        dst = os.path.join(os.path.dirname(config), r)
        assert [f"./{r}", dst] in mounts, f"prometheus: {r} is not mounted at {dst}"
    print(f"compose file: {len(sil)} sil services with restart, grace > drain, probe checks; "
          f"rule files {rules} mounted")


def check_dashboard(deploy):
    """The Grafana dashboard's structure: variables, datasources, the panels
    an operator looks for, and agent decisions as annotations."""
    with open(os.path.join(deploy, "grafana", "dashboards", "sil.json")) as f:
        dash = json.load(f)
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource", variables
    assert variables["datasource"]["query"] == "prometheus", variables
    assert variables["instance"]["type"] == "query", variables
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids)), f"panel ids repeat: {ids}"
    for p in dash["panels"]:
        assert p["datasource"]["uid"] == "${datasource}", p["title"]
        for t in p["targets"]:
            assert t["datasource"]["uid"] == "${datasource}", (p["title"], t)

    def panels_with(text):
        return [p for p in dash["panels"] if any(text in t["expr"] for t in p["targets"])]

    agent = panels_with("sil_agent_state")
    assert agent and all(p["type"] == "state-timeline" for p in agent), agent
    ttl = panels_with("sil_cache_ttl_seconds")
    assert len(ttl) == 1 and len(ttl[0]["targets"]) == 1, "the TTL needs a panel of its own"
    assert ttl[0]["fieldConfig"]["defaults"]["unit"] == "s", ttl[0]
    latency = panels_with("sil_request_duration_seconds_bucket")
    assert latency and all("source" in t["expr"] for t in latency[0]["targets"]), latency
    for needle in ('status="503"', 'status=~"5.."', "sil_encoder_queue_depth", "sil_audits_total"):
        assert panels_with(needle), f"no panel queries {needle}"
    notes = [a for a in dash["annotations"]["list"] if "sil_agent_decisions_total" in a.get("expr", "")]
    assert notes and notes[0]["enable"], "agent decisions are not annotations"
    print(f"dashboard: {len(dash['panels'])} panels, variables {sorted(variables)}, "
          f"agent state as a state timeline, decisions as annotations")


def run_healthcheck(server, svc, port):
    """Runs the service's health check with this build's binary and the
    local port; returns (exit code, output)."""
    argv = list(svc["healthcheck"]["test"][1:])
    argv[0] = server
    argv[-1] = re.sub(r":\d+/", f":{port}/", argv[-1])
    r = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    return r.returncode, (r.stdout + r.stderr).strip(), argv[-1]


def main():
    server, deploy = sys.argv[1], sys.argv[2]
    with open(os.path.join(deploy, "docker-compose.cluster.yml")) as f:
        compose = yaml.safe_load(f)
    services = compose["services"]
    sil = {n: s for n, s in services.items() if s.get("image", "").startswith("sil-server")}
    gateways = [n for n, s in sil.items() if "--role=gateway" in s["command"]]
    workers = [n for n, s in sil.items() if "--role=worker" in s["command"]]
    assert len(gateways) == 1 and len(workers) == 2, (gateways, workers)
    check_compose_file(compose, sil)
    check_dashboard(deploy)
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
        worker_procs = {}
        for w in workers:
            gw_host, _ = sil[w]["environment"]["SIL_GATEWAY"].split(":")
            assert gw_host == gateways[0], "workers must point at the gateway service"
            # Each worker node's HTTP listener (health, /metrics) gets a free
            # port: in compose every node has its own address.
            p = start(w, {"SIL_GATEWAY": f"127.0.0.1:{cluster_port}", "SIL_PORT": "0"})
            wait_line(p, "joined ", 20)
            worker_procs[w] = p
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

        # Each service's own health check, as the engine would run it.
        code, out, url = run_healthcheck(server, sil[gateways[0]], http)
        if code != 0 and "404" in out:
            # A build from before the readiness route: probe the seed route.
            print(f"NOTE: {url} is not a route of this build ({out}); probing /health")
            code, out, url = run_healthcheck(server, {"healthcheck": {"test": [
                "CMD", "sil-server", "--probe", f"http://127.0.0.1:{http}/health"]}}, http)
        assert code == 0, f"{gateways[0]}: health check {url} failed: {out}"
        print(f"health check {gateways[0]}: {out}")
        for w, p in worker_procs.items():
            if not has_line(p, "listening on "):
                print(f"NOTE: {w} has no HTTP listener in this build; its health check "
                      f"is not run")
                continue
            wport = int(wait_line(p, "listening on ", 1).rsplit(":", 1)[1])
            code, out, url = run_healthcheck(server, sil[w], wport)
            assert code == 0, f"{w}: health check {url} failed: {out}"
            print(f"health check {w}: {out}")

        # Prometheus with deploy/prometheus.yml itself.
        for f in ("prometheus.yml", "alerts.yml"):
            os.symlink(os.path.abspath(os.path.join(deploy, f)), os.path.join(tmp, f))
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
        # The workers as the gateway reports them, one 0/1 series per state.
        q = urllib.parse.quote('sil_node_state{service="sil-gateway",state="up"} == 1')
        result = json.loads(get(api + "/query?query=" + q)[1])["data"]["result"]
        up = sorted(r["metric"]["node"] for r in result)
        expected = sorted(sil[w]["environment"]["SIL_NODE_NAME"] for w in workers)
        assert up == expected, f"nodes up per sil_node_state: {up}, expected {expected}"
        # The alerting rules are loaded and none fires on a healthy cluster.
        groups = json.loads(get(api + "/rules")[1])["data"]["groups"]
        rules = [r for g in groups for r in g["rules"] if r["type"] == "alerting"]
        assert len(rules) >= 7, f"alerting rules loaded: {[r['name'] for r in rules]}"
        firing = [r["name"] for r in rules if r["state"] == "firing"]
        assert not firing, f"alerts firing on a healthy cluster: {firing}"
        bad = [(r["name"], r.get("lastError")) for r in rules if r.get("health") == "err"]
        assert not bad, f"alerting rules that fail to evaluate: {bad}"
        print(f"prometheus: nodes up {up}; {len(rules)} alerting rules loaded, none firing")
        # Every query of the Grafana dashboard runs on this Prometheus and has
        # data, once two scrapes give the rates theirs (the annotations'
        # query finds no agent decision on a healthy cluster).
        q = urllib.parse.quote("rate(sil_http_requests_total[1m])")
        while time.time() < deadline + 20:
            if json.loads(get(api + "/query?query=" + q)[1])["data"]["result"]:
                break
            time.sleep(0.5)
        with open(os.path.join(deploy, "grafana", "dashboards", "sil.json")) as f:
            dash = json.load(f)
        exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
        exprs += [a["expr"] for a in dash["annotations"]["list"] if "expr" in a]
        empty = []
        for expr in exprs:
            q = expr.replace("$instance", ".*").replace("$__rate_interval", "1m")
            r = json.loads(get(api + "/query?query=" + urllib.parse.quote(q))[1])
            assert r["status"] == "success", f"dashboard query fails: {q}: {r}"
            if not r["data"]["result"]:
                empty.append(q)
        annotations = [a["expr"].replace("$instance", ".*") for a in dash["annotations"]["list"]
                       if "expr" in a]
        empty = [q for q in empty if q not in annotations]
        assert not empty, "dashboard queries without data:\n  " + "\n  ".join(empty)
        print(f"grafana dashboard: {len(exprs)} queries run on Prometheus, all panels' with data")
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
