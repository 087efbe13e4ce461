#!/usr/bin/env python3
"""Checks http/openapi.json against itself and against a running sil-server.

1. The document: OpenAPI 3.1, every $ref resolves, every path parameter is
   declared, and every example (request bodies, responses, parameters)
   validates against its schema (JSON Schema 2020-12, python3-jsonschema).
2. The server (started here on a free loopback port, seed model):
   - GET /openapi.json serves exactly this file;
   - every route the server answers is described, and every described
     operation is served: the server's 404 answer lists its routes;
   - a real request to every operation, and to the error answers the
     document promises (405, 404, 400, 415, 401, 403), gets a documented
     status whose body validates against the documented schema, with an
     X-Request-Id field. An operation whose example needs state first names
     the calls that make it in `x-test-before` (method, path, body).
At the end the server is stopped with SIGTERM and must exit 0.

usage: openapi_test.py SIL_SERVER OPENAPI_JSON
"""
import http.client
import json
import re
import select
import signal
import subprocess
import sys
import time

import jsonschema

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
failures = []


def fail(msg):
    failures.append(msg)
    print(f"FAIL: {msg}", file=sys.stderr)


def validator(doc, schema):
    """A 2020-12 validator for `schema` whose #/components/... refs resolve
    in the document."""
    root = {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "components": doc.get("components", {}), "allOf": [schema]}
    return jsonschema.Draft202012Validator(root)


def check_value(doc, schema, value, where):
    errors = sorted(validator(doc, schema).iter_errors(value), key=lambda e: list(e.path))
    for e in errors[:3]:
        fail(f"{where}: {e.message} at {list(e.path)}")
    return not errors


def walk(node, path=()):
    if isinstance(node, dict):
        yield path, node
        for k, v in node.items():
            yield from walk(v, path + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from walk(v, path + (i,))


def resolve(doc, ref):
    if not ref.startswith("#/"):
        return None
    node = doc
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def deref(doc, node):
    while isinstance(node, dict) and "$ref" in node:
        node = resolve(doc, node["$ref"])
    return node


def operations(doc):
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method in METHODS:
                yield path, method, op


def check_document(doc):
    if not str(doc.get("openapi", "")).startswith("3.1"):
        fail(f"openapi is {doc.get('openapi')!r}, expected 3.1.x")
    for key in ("info", "paths", "components"):
        if key not in doc:
            fail(f"no {key}")
    jsonschema.Draft202012Validator.check_schema({"components": doc["components"]})
    for name, schema in doc["components"].get("schemas", {}).items():
        try:
            jsonschema.Draft202012Validator.check_schema(schema)
        except jsonschema.SchemaError as e:
            fail(f"components.schemas.{name} is not a valid schema: {e.message}")
    for path, node in walk(doc):
        if "$ref" in node and resolve(doc, node["$ref"]) is None:
            fail(f"{'/'.join(map(str, path))}: $ref {node['$ref']} does not resolve")
    examples = 0
    for path, method, op in operations(doc):
        where = f"{method.upper()} {path}"
        if not op.get("responses"):
            fail(f"{where}: no responses")
        params = [deref(doc, p) for p in op.get("parameters", [])]
        declared = {p["name"] for p in params if p.get("in") == "path"}
        for name in re.findall(r"\{([^}]+)\}", path):
            if name not in declared:
                fail(f"{where}: path parameter {name} is not declared")
        for p in params:
            if "example" in p:
                examples += 1
                check_value(doc, p["schema"], p["example"], f"{where} parameter {p['name']} example")
        bodies = []
        if "requestBody" in op:
            bodies.append(("request", deref(doc, op["requestBody"])))
        for status, r in op["responses"].items():
            r = deref(doc, r)
            if not r.get("description"):
                fail(f"{where} {status}: no description")
            bodies.append((status, r))
        for label, b in bodies:
            for ctype, media in b.get("content", {}).items():
                for name, ex in media.get("examples", {}).items():
                    examples += 1
                    check_value(doc, media["schema"], deref(doc, ex)["value"],
                                f"{where} {label} {ctype} example {name}")
                if "example" in media:
                    examples += 1
                    check_value(doc, media["schema"], media["example"], f"{where} {label} example")
    for name, p in doc["components"].get("parameters", {}).items():
        if "example" in p:
            examples += 1
            check_value(doc, p["schema"], p["example"], f"components.parameters.{name} example")
    return examples


# -- the running server ----------------------------------------------------------


def start_server(binary):
    args = [binary, "--port=0", "--model.preset=seed", "--workers=1", "--audit.rate=0",
            "--admin.token=openapi-token"]
    p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=sys.stderr)
    deadline = time.time() + 30
    buf = b""
    while time.time() < deadline:
        ready, _, _ = select.select([p.stdout], [], [], 0.1)
        if not ready:
            if p.poll() is not None:
                break
            continue
        chunk = p.stdout.read1(4096)
        if not chunk:
            break
        buf += chunk
        m = re.search(rb"listening on [^\n]*:(\d+)\n", buf)
        if m:
            return p, int(m.group(1))
    p.kill()
    raise RuntimeError(f"sil-server did not start: {buf!r}")


class Client:
    def __init__(self, port):
        self.port = port

    def call(self, method, target, body=None, headers=None):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=15)
        h = dict(headers or {})
        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            h.setdefault("Content-Type", "application/json")
        c.request(method, target, body=data, headers=h)
        r = c.getresponse()
        payload = r.read()
        c.close()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, payload


def check_answer(doc, op, where, status, headers, payload):
    responses = op["responses"]
    if str(status) not in responses:
        fail(f"{where}: status {status} is not documented ({sorted(responses)}): {payload[:200]!r}")
        return
    if "x-request-id" not in headers:
        fail(f"{where}: no X-Request-Id")
    r = deref(doc, responses[str(status)])
    content = r.get("content")
    if not content:
        if payload:
            fail(f"{where}: {status} documents no body, got {payload[:100]!r}")
        return
    ctype = headers.get("content-type", "").split(";")[0].strip()
    if ctype not in content:
        fail(f"{where}: {status} content type {ctype!r} is not documented ({list(content)})")
        return
    schema = content[ctype]["schema"]
    value = payload.decode() if ctype == "text/plain" else json.loads(payload)
    check_value(doc, schema, value, f"{where} -> {status}")


def first_example(doc, op):
    body = deref(doc, op.get("requestBody", {}))
    for media in body.get("content", {}).values():
        for ex in media.get("examples", {}).values():
            return deref(doc, ex)["value"]
    return None


def check_server(doc, text, binary):
    proc, port = start_server(binary)
    c = Client(port)
    try:
        status, headers, served = c.call("GET", "/openapi.json")
        if status != 200 or served.decode() != text:
            fail("GET /openapi.json does not serve http/openapi.json as it is")

        # Every route the server answers is described, and the other way round.
        status, _, body = c.call("GET", "/no-such-route")
        listed = re.search(r"\(routes: (.*)\)$", json.loads(body)["error"]["message"])
        routes = set()
        for item in listed.group(1).split(", "):
            method, path = item.split(" ", 1)
            routes.add((method.lower(), path))
        described = {(m, p) for p, m, _ in operations(doc)}
        for m, p in sorted(routes - described):
            fail(f"{m.upper()} {p} is served but not described")
        for m, p in sorted(described - routes):
            fail(f"{m.upper()} {p} is described but not served")

        version = json.loads(c.call("GET", "/v2/models/seed")[2])["versions"][0]
        auth = {"Authorization": "Bearer openapi-token"}
        calls = 0

        def target_of(path, model="seed", ver=version):
            return path.replace("{model_name}", model).replace("{model_version}", ver)

        ops = list(operations(doc))
        # Admin commands last: they change the server's state.
        ops.sort(key=lambda o: o[0].startswith("/admin/"))
        for path, method, op in ops:
            where = f"{method.upper()} {path}"
            headers = dict(auth) if op.get("security") else {}
            body = first_example(doc, op)
            # State the example needs (x-test-before: calls made first, e.g.
            # a canary to promote).
            for pre in op.get("x-test-before", []):
                status, _, payload = c.call(pre["method"], target_of(pre["path"]),
                                            pre.get("body"), headers)
                calls += 1
                if status >= 400:
                    fail(f"{where}: its setup call {pre['method']} {pre['path']} got {status}: "
                         f"{payload[:200]!r}")
            # The documented answer.
            status, h, payload = c.call(method.upper(), target_of(path), body, headers)
            calls += 1
            if status >= 400:
                fail(f"{where}: the example request got {status}: {payload[:200]!r}")
            check_answer(doc, op, where, status, h, payload)
            # The errors it documents.
            documented = op["responses"]
            if "405" in documented:
                wrong = "DELETE"
                status, h, payload = c.call(wrong, target_of(path), None, headers)
                calls += 1
                if status != 405:
                    fail(f"{where}: DELETE got {status}, expected 405")
                check_answer(doc, op, f"{where} (DELETE)", status, h, payload)
            if "404" in documented and "{model_name}" in path:
                status, h, payload = c.call(method.upper(), target_of(path, "no-model"), body,
                                            headers)
                calls += 1
                if status != 404:
                    fail(f"{where}: an unknown model got {status}, expected 404")
                check_answer(doc, op, f"{where} (unknown model)", status, h, payload)
            if "400" in documented and body is not None:
                bad = b'{"features": [[1, 2, 3]], "inputs": [{"name": "features"}]'
                status, h, payload = c.call(method.upper(), target_of(path), bad, headers)
                calls += 1
                if status != 400:
                    fail(f"{where}: a bad body got {status}, expected 400")
                check_answer(doc, op, f"{where} (bad body)", status, h, payload)
            if "415" in documented and body is not None:
                hh = dict(headers, **{"Content-Type": "text/plain"})
                status, h, payload = c.call(method.upper(), target_of(path),
                                            json.dumps(body).encode(), hh)
                calls += 1
                if status != 415:
                    fail(f"{where}: text/plain got {status}, expected 415")
                check_answer(doc, op, f"{where} (text/plain)", status, h, payload)
            if "401" in documented:
                status, h, payload = c.call(method.upper(), target_of(path), body,
                                            {"Authorization": "Bearer wrong"})
                calls += 1
                if status != 401:
                    fail(f"{where}: a wrong token got {status}, expected 401")
                check_answer(doc, op, f"{where} (wrong token)", status, h, payload)
        print(f"server: {len(routes)} routes listed, {calls} requests checked against the document")
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            code = "no exit within 30 s"
        if code != 0:
            fail(f"sil-server ended with {code} after SIGTERM, expected 0")


def main():
    binary, path = sys.argv[1], sys.argv[2]
    with open(path) as f:
        text = f.read()
    doc = json.loads(text)
    n = check_document(doc)
    ops = sum(1 for _ in operations(doc))
    print(f"document: {ops} operations, {n} examples validated")
    check_server(doc, text, binary)
    if failures:
        print(f"{len(failures)} problems", file=sys.stderr)
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
