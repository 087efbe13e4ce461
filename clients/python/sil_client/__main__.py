"""Command line of the sil-server client.

    python3 -m sil_client predict --url http://127.0.0.1:8000 --features '[[1,1,1,1,0,...]]'
    python3 -m sil_client health | stats | metrics | live | ready
    python3 -m sil_client agent --token T
    python3 -m sil_client admin disable|enable|clear|resume --token T
    python3 -m sil_client admin ttl SECONDS --token T

--url defaults to $SIL_URL, else http://127.0.0.1:8000; --token to
$SIL_ADMIN_TOKEN. The answer is printed as JSON on stdout (/metrics as
text). Exit status: 0 on a 2xx answer; 1 when the server answered with an
error (printed on stderr with its status, code and message); 2 for a bad
command line; 3 when the server could not be reached.
"""

import argparse
import json
import os
import sys

from . import __version__
from .client import Client, SilConnectionError, SilHTTPError


def _features(text):
    try:
        value = json.loads(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"not JSON: {e}") from e
    if not isinstance(value, list):
        raise argparse.ArgumentTypeError("expected a JSON array of rows, e.g. [[1,2,...]]")
    return value


def _parser():
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--url", default=os.environ.get("SIL_URL", "http://127.0.0.1:8000"),
                        help="the server (default: $SIL_URL or http://127.0.0.1:8000)")
    common.add_argument("--token", default=os.environ.get("SIL_ADMIN_TOKEN"),
                        help="admin bearer token (default: $SIL_ADMIN_TOKEN)")
    common.add_argument("--timeout", type=float, default=10.0,
                        help="seconds to wait for each answer (default: 10)")
    p = argparse.ArgumentParser(prog="python3 -m sil_client",
                                description="Talk to a sil-server from the command line.")
    p.add_argument("--version", action="version", version=f"sil_client {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)
    pr = sub.add_parser("predict", parents=[common], help="POST /predict")
    pr.add_argument("--features", type=_features, required=True,
                    help="JSON rows of 32 numbers, e.g. '[[1,1,1,1,0,...]]'")
    pr.add_argument("--no-cache", action="store_true",
                    help="use_cache: false (a fresh encode that leaves the cache alone)")
    pr.add_argument("--max-age-ms", type=int, help="refuse cached entries older than this")
    pr.add_argument("--max-wrong-rate", type=float,
                    help="tighten the error budget for this request, in (0, 1]")
    pr.add_argument("--timeout-ms", type=int, help="this request's deadline on the server")
    for name, help_text in (("health", "GET /health"), ("live", "GET /health/live"),
                            ("ready", "GET /health/ready"), ("stats", "GET /stats"),
                            ("metrics", "GET /metrics (Prometheus text)"),
                            ("agent", "GET /agent (needs --token)")):
        sub.add_parser(name, parents=[common], help=help_text)
    ad = sub.add_parser("admin", parents=[common], help="admin calls (need --token)")
    ad.add_argument("action", choices=["disable", "enable", "clear", "resume", "ttl"],
                    help="cache disable / enable / clear, agent resume, or set the TTL")
    ad.add_argument("seconds", nargs="?", type=float, help="the new TTL (for 'ttl')")
    return p


def main(argv=None):
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "admin" and (args.action == "ttl") != (args.seconds is not None):
        parser.error("'admin ttl' takes SECONDS; the other admin actions take none")
    try:
        c = Client(args.url, token=args.token, timeout=args.timeout)
    except ValueError as e:
        parser.error(str(e))
    try:
        if args.command == "predict":
            out = c.predict(args.features, use_cache=False if args.no_cache else None,
                            max_age_ms=args.max_age_ms, max_wrong_rate=args.max_wrong_rate,
                            timeout_ms=args.timeout_ms)
        elif args.command == "admin":
            out = {"disable": c.disable_cache, "enable": c.enable_cache,
                   "clear": c.clear_cache, "resume": c.resume_agent,
                   "ttl": lambda: c.set_ttl(args.seconds)}[args.action]()
        else:
            out = getattr(c, args.command)()
    except SilHTTPError as e:
        print(f"sil_client: {e}", file=sys.stderr)
        return 1
    except SilConnectionError as e:
        print(f"sil_client: {e}", file=sys.stderr)
        return 3
    if isinstance(out, str):
        sys.stdout.write(out)
    else:
        print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
