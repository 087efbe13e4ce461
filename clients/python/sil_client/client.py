"""The HTTP client of sil-server, on the standard library only (http.client).

Every call opens one connection, sends one request and reads the answer; it
never goes through an HTTP proxy from the environment (the service is meant
to be reached directly). A 2xx answer comes back as parsed JSON (or text for
/metrics); anything else raises SilHTTPError with the server's JSON error,
and a server that cannot be reached raises SilConnectionError.
"""

import http.client
import json
import math
import numbers
import socket
import urllib.parse

__all__ = ["Client", "SilError", "SilHTTPError", "SilConnectionError"]


def _seg(text):
    """One path segment, percent-encoded."""
    return urllib.parse.quote(str(text), safe="")


class SilError(Exception):
    """Base class of every error this client raises."""


class SilHTTPError(SilError):
    """The server answered with a status other than 2xx.

    status: the HTTP status (400, 401, 403, 404, 503, ...);
    code, message: the server's error, from {"error": {"code", "message"}}
      (code is None when the body was not such a JSON error);
    error: that error object as a dict ({} when there was none);
    body: the raw body as text; retry_after: the Retry-After header's
      seconds (503), or None.
    """

    def __init__(self, status, code, message, error=None, body="", retry_after=None):
        self.status = status
        self.code = code
        self.message = message
        self.error = error or {}
        self.body = body
        self.retry_after = retry_after
        super().__init__(f"HTTP {status}" + (f" {code}" if code else "") + f": {message}")


class SilConnectionError(SilError):
    """No answer: the server could not be reached, closed the connection, or
    did not answer within the client's timeout (timed_out is then True)."""

    def __init__(self, url, reason, timed_out=False):
        self.url = url
        self.reason = reason
        self.timed_out = timed_out
        super().__init__(f"cannot reach {url}: {reason}")


def _is_number(v):
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


class Client:
    """A sil-server at `url` (http://HOST:PORT); `token` is the admin
    bearer token (admin calls and agent()); `timeout` bounds each call in
    seconds (connect, send and answer)."""

    def __init__(self, url="http://127.0.0.1:8000", token=None, timeout=10.0):
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"url must look like http://HOST:PORT, got {url!r}")
        self.url = f"{parts.scheme}://{parts.netloc}"
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port or (443 if self._https else 80)
        self._base = parts.path.rstrip("/")
        self.token = token
        self.timeout = timeout

    # -- the prediction API ------------------------------------------------

    def predict(self, features, use_cache=None, max_age_ms=None, max_wrong_rate=None,
                timeout_ms=None, model=None, version=None):
        """POST /predict. `features` is a list of rows of 32 numbers (one row
        may be given as a flat list). Optional: use_cache (False: a fresh
        encode that neither reads nor writes the cache), max_age_ms (refuse
        cached entries older than that), max_wrong_rate (tighten the error
        budget for this request), timeout_ms (this request's deadline),
        model and version (default: the default model's default version;
        an unknown one is a 404).
        Returns the answer: prediction, cache_hit, latency_ms, source, model,
        model_version, ..."""
        if isinstance(features, (list, tuple)) and features and all(
                _is_number(v) for v in features):
            features = [list(features)]
        body = {"features": features}
        if use_cache is not None:
            body["use_cache"] = bool(use_cache)
        if max_age_ms is not None:
            body["max_age_ms"] = max_age_ms
        if max_wrong_rate is not None:
            body["max_wrong_rate"] = max_wrong_rate
        if timeout_ms is not None:
            body["timeout_ms"] = timeout_ms
        if model is not None:
            body["model"] = model
        if version is not None:
            body["version"] = version
        return self._call("POST", "/predict", body)

    def health(self):
        """GET /health: status, cache_enabled, workers, in_flight, model_version."""
        return self._call("GET", "/health")

    def live(self):
        """GET /health/live: 200 while the process serves."""
        return self._call("GET", "/health/live")

    def ready(self):
        """GET /health/ready: 200 when it can answer predictions; SilHTTPError 503 otherwise."""
        return self._call("GET", "/health/ready")

    def stats(self):
        """GET /stats: cache, latency, encoder, agent, risk, ... counters."""
        return self._call("GET", "/stats")

    def metrics(self):
        """GET /metrics: the Prometheus text exposition, as a str."""
        return self._call("GET", "/metrics")

    # -- the admin API (bearer token) -------------------------------------

    def agent(self):
        """GET /agent: the agent's state and its decision log."""
        return self._call("GET", "/agent", auth=True)

    def disable_cache(self):
        """POST /admin/cache/disable (a manual override of the agent)."""
        return self._call("POST", "/admin/cache/disable", auth=True)

    def enable_cache(self):
        """POST /admin/cache/enable."""
        return self._call("POST", "/admin/cache/enable", auth=True)

    def clear_cache(self):
        """POST /admin/cache/clear."""
        return self._call("POST", "/admin/cache/clear", auth=True)

    def set_ttl(self, seconds):
        """PUT /admin/cache/ttl with {"ttl_seconds": seconds}."""
        return self._call("PUT", "/admin/cache/ttl", {"ttl_seconds": seconds}, auth=True)

    def resume_agent(self):
        """POST /admin/agent/resume: hand control back to the agent."""
        return self._call("POST", "/admin/agent/resume", auth=True)

    # -- models, versions and canary cache policies (admin) -----------------

    def models(self):
        """GET /admin/models: every version, its state, the defaults, canaries."""
        return self._call("GET", "/admin/models", auth=True)

    def load_model(self, name, preset=None, seed=None, weights=None, warm=None,
                   default=False):
        """POST /admin/models: load a version (a preset and seed, or a weights
        file on the server), warm it, and make it the default if asked."""
        body = {"name": name}
        for key, value in (("preset", preset), ("seed", seed), ("weights", weights),
                           ("warm", warm)):
            if value is not None:
                body[key] = value
        if default:
            body["default"] = True
        return self._call("POST", "/admin/models", body, auth=True)

    def set_default_version(self, name, version):
        """PUT /admin/models/{name}/default: switch the default atomically."""
        return self._call("PUT", f"/admin/models/{_seg(name)}/default", {"version": version},
                          auth=True)

    def unload_model(self, name, version):
        """DELETE /admin/models/{name}/versions/{version}: it drains, then goes."""
        return self._call("DELETE", f"/admin/models/{_seg(name)}/versions/{_seg(version)}",
                          auth=True)

    def start_canary(self, name, version, policy, share=None):
        """POST .../canary: `policy` is a dict with a "name" and the settings
        it changes (prefix_k, prefix_unit, ttl_seconds, capacity_share,
        tolerance, max_wrong_rate, admission); share of prefixes in (0, 1)."""
        body = {"policy": policy}
        if share is not None:
            body["share"] = share
        return self._call("POST", f"/admin/models/{_seg(name)}/versions/{_seg(version)}/canary",
                          body, auth=True)

    def promote_canary(self, name, version):
        """POST .../canary/promote: the candidate's policy serves every prefix."""
        return self._call(
            "POST", f"/admin/models/{_seg(name)}/versions/{_seg(version)}/canary/promote",
            auth=True)

    def abort_canary(self, name, version):
        """DELETE .../canary: the policy in place serves every prefix again."""
        return self._call("DELETE",
                          f"/admin/models/{_seg(name)}/versions/{_seg(version)}/canary",
                          auth=True)

    # -- plumbing ----------------------------------------------------------

    def _call(self, method, path, body=None, auth=False):
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            # NaN and infinities are not JSON: sent as the invalid tokens
            # Python writes, the server answers 400 (it says which value).
            data = json.dumps(body, allow_nan=True).encode()
            headers["Content-Type"] = "application/json"
        if auth and self.token is not None:
            headers["Authorization"] = f"Bearer {self.token}"
        cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
        conn = cls(self._host, self._port, timeout=self.timeout)
        try:
            conn.request(method, self._base + path, body=data, headers=headers)
            resp = conn.getresponse()
            raw = resp.read()
        except socket.timeout as e:
            raise SilConnectionError(self.url, f"no answer within {self.timeout} s",
                                     timed_out=True) from e
        except (OSError, http.client.HTTPException) as e:
            raise SilConnectionError(self.url, str(e) or type(e).__name__) from e
        finally:
            conn.close()
        text = raw.decode("utf-8", errors="replace")
        ctype = resp.getheader("Content-Type", "")
        if 200 <= resp.status < 300:
            if ctype.startswith("application/json"):
                return json.loads(text)
            return text
        raise _http_error(resp.status, text, resp.getheader("Retry-After"))


def _http_error(status, text, retry_after):
    error = {}
    try:
        parsed = json.loads(text)
        if isinstance(parsed, dict) and isinstance(parsed.get("error"), dict):
            error = parsed["error"]
    except ValueError:
        pass
    seconds = None
    if retry_after is not None:
        try:
            seconds = float(retry_after)
            if not math.isfinite(seconds):
                seconds = None
        except ValueError:
            seconds = None
    return SilHTTPError(status, error.get("code"), error.get("message", text.strip()), error,
                        text, seconds)
