#!/usr/bin/env python3
"""Drives a running sil-server through drift and back, then prints GET /agent.

Reproduces the "A real run" example of the README's "How the agent decides":

  ./build/sil-server --port=8000 --model.preset=seed --risk.guard=off --agent.trigger=cosine \
      --audit.per-second=0 --admin.token=t0k3n --audit.rate=1 --audit.max-share=1 \
      --agent.interval=0.2 --agent.recover-threshold=0.001 \
      --agent.ttl-threshold=0.003 --agent.disable-threshold=0.01 --agent.recover-windows=2 \
      --agent.entry-evict-threshold=2 &
  /usr/bin/python3 tools/agent_demo.py 8000 t0k3n

It sends 200 requests with a fixed prefix and a suffix that drifts by 0.1
every 10 requests, then 300 undrifted requests, 4 ms apart (loopback only).
"""
import http.client
import json
import math
import sys
import time


def body(step):
    suffix = [math.sin(i * 1.7) + 0.1 * step for i in range(4, 32)]
    return {"features": [[0.5, -0.3, 0.2, 0.9] + suffix]}


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    port, token = int(sys.argv[1]), sys.argv[2]
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)

    def post(b):
        conn.request("POST", "/predict", json.dumps(b), {"Content-Type": "application/json"})
        return json.loads(conn.getresponse().read())

    for i in range(200):
        post(body(i // 10))
        time.sleep(0.004)
    for _ in range(300):
        post(body(0))
        time.sleep(0.004)
    conn.request("GET", "/agent", headers={"Authorization": "Bearer " + token})
    agent = json.loads(conn.getresponse().read())
    print(json.dumps(agent, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
