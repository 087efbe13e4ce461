#!/usr/bin/env python3
"""Writes the fuzzers' seed corpus: tests/fuzz/corpus/<target>/<name>.

The seeds are small, readable inputs, valid and invalid, that start the
fuzzers at the interesting places of the contract (README, "The HTTP
contract"); libFuzzer mutates from there. Rerun after changing this file:
    python3 tests/fuzz/make_corpus.py
"""
import json
import os
import shutil

HERE = os.path.dirname(os.path.abspath(__file__))


def row(first=1.0, n=32):
    return [first] + [round(0.25 * (i % 5), 2) for i in range(1, n)]


def body(rows, **extra):
    d = {"features": rows}
    d.update(extra)
    return json.dumps(d, separators=(",", ":"))


R = row()
predict = {
    # valid
    "valid_one_row": body([R]),
    "valid_three_rows": body([row(1), row(2), row(3)]),
    "valid_64_rows": body([row(i) for i in range(64)]),
    "valid_use_cache_false": body([R], use_cache=False),
    "valid_max_age": body([R], max_age_ms=250),
    "valid_max_age_zero": body([R], max_age_ms=0),
    "valid_max_wrong_rate": body([R], max_wrong_rate=0.001),
    "valid_max_wrong_rate_one": body([R], max_wrong_rate=1),
    "valid_all_fields": body([R], use_cache=True, max_age_ms=1000, max_wrong_rate=0.5),
    "valid_unknown_fields": '{"id":"x","meta":{"a":[1,{"b":null}]},"features":[%s]}'
                            % json.dumps(R, separators=(",", ":")),
    "valid_exponents": body([[1e-30, -2.5E+3, 0, -0.0] + [1] * 28]),
    "valid_small_limits": '{"features":[[1,2],[3,4]]}',
    "valid_ttl": '{"ttl_seconds":12.5}',
    "valid_admin_header": "Bearer s3cret-token",
    # invalid
    "truncated": body([R])[:-7],
    "empty": "",
    "not_object": "[[1,2,3]]",
    "missing_features": '{"use_cache":true}',
    "no_rows": '{"features":[]}',
    "short_row": body([[1, 2, 3]]),
    "long_row": body([row(n=33)]),
    "too_many_rows": body([row(i) for i in range(65)]),
    "row_not_array": '{"features":[1,2]}',
    "string_value": body([["1"] + [0] * 31]),
    "null_value": body([[None] + [0] * 31]),
    "bool_value": body([[True] + [0] * 31]),
    "nested_value": body([[[1]] + [0] * 31]),
    "huge_number": '{"features":[[1e39' + ",0" * 31 + "]]}",
    "huge_integer": '{"features":[[123456789012345678901234567890' + ",0" * 31 + "]]}",
    "float_max_edge": '{"features":[[3.4028235677973366e38' + ",0" * 31 + "]]}",
    "nan_text": '{"features":[[NaN' + ",0" * 31 + "]]}",
    "infinity_text": '{"features":[[Infinity' + ",0" * 31 + "]]}",
    "minus_infinity_text": '{"features":[[-Infinity' + ",0" * 31 + "]]}",
    "features_twice": '{"features":[%s],"features":[%s]}'
                      % (json.dumps(R), json.dumps(R)),
    "use_cache_string": body([R], use_cache="yes"),
    "max_age_negative": body([R], max_age_ms=-1),
    "max_age_float": body([R], max_age_ms=1.5),
    "max_age_year": body([R], max_age_ms=31536000000),
    "max_age_over_a_year": body([R], max_age_ms=31536000001),
    "valid_timeout": body([R], timeout_ms=250),
    "timeout_zero": body([R], timeout_ms=0),
    "timeout_too_long": body([R], timeout_ms=600001),
    "timeout_float": body([R], timeout_ms=2.5),
    "max_age_huge": '{"features":[%s],"max_age_ms":18446744073709551615}' % json.dumps(R),
    "max_wrong_rate_zero": body([R], max_wrong_rate=0),
    "max_wrong_rate_above_one": body([R], max_wrong_rate=1.5),
    "max_wrong_rate_null": body([R], max_wrong_rate=None),
    "deep_nesting_arrays": "[" * 1000 + "]" * 1000,
    "deep_nesting_unknown_field": '{"x":' + "[" * 1000 + "]" * 1000 + ',"features":[%s]}'
                                  % json.dumps(R),
    "deep_nesting_objects": '{"a":' * 500 + "1" + "}" * 500,
    "trailing_garbage": body([R]) + "xyz",
    "two_documents": body([R]) + body([R]),
    # found by the fuzzer: nlohmann (the reference) read a raw NUL as the end of input
    "nul_then_garbage": body([R]).encode() + b"\0\0\0x" + b'{"max_age_ms":_\x86}',
    "bad_utf8_key": b'{"f\xff\xfe":1,"features":[' + json.dumps(R).encode() + b"]}",
    "bad_escape": '{"features\\u12":[]}',
    "comment": '{/* c */"features":[%s]}' % json.dumps(R),
    "ttl_negative": '{"ttl_seconds":-1}',
    "ttl_too_long": '{"ttl_seconds":1e12}',
    "ttl_string": '{"ttl_seconds":"5"}',
    "admin_wrong": "Bearer nope",
    "admin_lowercase_scheme": "bearer s3cret-token",  # found by the fuzzer: the scheme's case
    "admin_spaces": "BEARER   s3cret-token",
    "admin_no_space": "Bearers3cret-token",
    "admin_basic": "Basic czNjcmV0",
    # the KServe v2 inference body, and the "id" /predict echoes
    "valid_id": body([R], id="req-\u00e9\"42"),
    "id_not_a_string": body([R], id=42),
    "infer_flat": json.dumps({"id": "7", "inputs": [
        {"name": "features", "datatype": "FP32", "shape": [1, 32], "data": R}]}),
    "infer_nested_small": json.dumps({"parameters": {"use_cache": False, "timeout_ms": 50},
                                      "inputs": [{"name": "features", "datatype": "FP32",
                                                  "shape": [2, 2], "data": [[1, 2], [3, 4]]}],
                                      "outputs": [{"name": "prediction"}]}),
    "infer_bad_shape": json.dumps({"inputs": [
        {"name": "features", "datatype": "FP32", "shape": [1, 3], "data": [1, 2, 3]}]}),
    "infer_fp64": json.dumps({"inputs": [
        {"name": "features", "datatype": "FP64", "shape": [1, 2], "data": [1, 2]}]}),
}


def http(method, target, body_text="", headers=None, version="1.1"):
    h = {"Host": "127.0.0.1"}
    if body_text or method in ("POST", "PUT"):
        h["Content-Type"] = "application/json"
        h["Content-Length"] = str(len(body_text))
    h.update(headers or {})
    lines = [f"{method} {target} HTTP/{version}"] + [f"{k}: {v}" for k, v in h.items() if v is not None]
    return "\r\n".join(lines) + "\r\n\r\n" + body_text


def chunked(method, target, chunks, extra=None):
    head = {"Host": "127.0.0.1", "Content-Type": "application/json",
            "Transfer-Encoding": "chunked"}
    head.update(extra or {})
    out = f"{method} {target} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in head.items())
    out += "\r\n"
    for c in chunks:
        out += f"{len(c):x}\r\n{c}\r\n"
    return out + "0\r\n\r\n"


B = body([R])
requests = {
    "predict": http("POST", "/predict", B),
    "predict_three_rows": http("POST", "/predict", body([row(1), row(2), row(3)])),
    "predict_max_age": http("POST", "/predict", body([R], max_age_ms=10)),
    "predict_max_wrong_rate": http("POST", "/predict", body([R], max_wrong_rate=0.002)),
    "predict_charset": http("POST", "/predict?x=1", B,
                            {"Content-Type": "application/json; charset=utf-8"}),
    "predict_bad_json": http("POST", "/predict", B[:-9]),
    "predict_nan": http("POST", "/predict", '{"features":[[NaN' + ",0" * 31 + "]]}"),
    "predict_wrong_type": http("POST", "/predict", "plain", {"Content-Type": "text/plain"}),
    "predict_get": http("GET", "/predict"),
    "health": http("GET", "/health"),
    "stats_http10": http("GET", "/stats", version="1.0"),
    "metrics_close": http("GET", "/metrics", headers={"Connection": "close"}),
    "pipelined_three": http("GET", "/health") + http("POST", "/predict", B) + http("GET", "/stats"),
    "pipelined_predicts": http("POST", "/predict", B) + http("POST", "/predict", body([row(2)])),
    "chunked_predict": chunked("POST", "/predict", [B[:40], B[40:100], B[100:]]),
    "chunked_extension": chunked("POST", "/predict", [B]).replace(
        f"{len(B):x}\r\n", f"{len(B):x};name=value\r\n", 1),
    "chunked_then_get": chunked("POST", "/predict", [B]) + http("GET", "/health"),
    # found by the fuzzer: a list element that is not a bare token
    "te_param_first": chunked("POST", "/predict", [B], {"Transfer-Encoding": ";chunked, chunked"}),
    "te_and_cl": chunked("POST", "/predict", [B], {"Content-Length": str(len(B))}),
    "cl_and_te": http("POST", "/predict", B, {"Transfer-Encoding": "chunked"}),
    "te_gzip_chunked": chunked("POST", "/predict", [B], {"Transfer-Encoding": "gzip, chunked"}),
    "te_chunked_twice": chunked("POST", "/predict", [B], {"Transfer-Encoding": "chunked, chunked"}),
    "te_http10": chunked("POST", "/predict", [B]).replace("HTTP/1.1", "HTTP/1.0", 1),
    "te_two_fields": chunked("POST", "/predict", [B]).replace(
        "Transfer-Encoding: chunked", "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked", 1),
    "predict_timeout": http("POST", "/predict", body([R], timeout_ms=100)),
    "te_identity": http("POST", "/predict", B, {"Transfer-Encoding": "identity"}),
    "two_content_lengths": http("POST", "/predict", B)
        .replace("Content-Length:", f"Content-Length: {len(B)}\r\nContent-Length:", 1),
    "conflicting_content_lengths": http("POST", "/predict", B)
        .replace("Content-Length:", "Content-Length: 5\r\nContent-Length:", 1),
    "content_length_negative": http("POST", "/predict", B, {"Content-Length": "-1"}),
    "content_length_huge": http("POST", "/predict", B, {"Content-Length": "99999999999999999999"}),
    "content_length_over_limit": http("POST", "/predict", "", {"Content-Length": str(2 << 20)}),
    "content_length_short": http("POST", "/predict", B, {"Content-Length": str(len(B) - 10)}),
    "bare_lf": http("GET", "/health").replace("\r\n", "\n"),
    "obs_fold": http("GET", "/health", headers={"X-Folded": "a\r\n b"}),
    "bad_method": "G=T /health HTTP/1.1\r\nHost: x\r\n\r\n",
    "bad_version": "GET /health HTTP/9.9\r\nHost: x\r\n\r\n",
    "space_in_target": "GET /he alth HTTP/1.1\r\nHost: x\r\n\r\n",
    "header_no_colon": "GET /health HTTP/1.1\r\nHost x\r\n\r\n",
    "truncated_headers": "POST /predict HTTP/1.1\r\nContent-Len",
    "admin_ttl": http("PUT", "/admin/cache/ttl", '{"ttl_seconds":5}',
                      {"Authorization": "Bearer fuzz-token"}),
    "admin_ttl_bad": http("PUT", "/admin/cache/ttl", '{"ttl_seconds":-5}',
                          {"Authorization": "Bearer fuzz-token"}),
    "admin_wrong_token": http("POST", "/admin/cache/clear", "", {"Authorization": "Bearer x"}),
    "agent": http("GET", "/agent", headers={"Authorization": "Bearer fuzz-token"}),
    "infer": http("POST", "/v2/models/base/infer", json.dumps({"id": "1", "inputs": [
        {"name": "features", "datatype": "FP32", "shape": [1, 32], "data": R}]})),
    "infer_no_content_type": http("POST", "/v2/models/base/infer", json.dumps({"inputs": [
        {"name": "features", "datatype": "FP32", "shape": [1, 32], "data": [R]}]}),
        {"Content-Type": None}),
    "health_ready_request_id": http("GET", "/health/ready", headers={"X-Request-Id": "abc"}),
    "cors_preflight": http("OPTIONS", "/predict", headers={
        "Origin": "https://app.example.com", "Access-Control-Request-Method": "POST"}),
}


def write(target, seeds):
    d = os.path.join(HERE, "corpus", target)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    for name, data in seeds.items():
        with open(os.path.join(d, name), "wb") as f:
            f.write(data if isinstance(data, bytes) else data.encode())
    print(f"{d}: {len(seeds)} seeds")


write("fuzz_decode_predict", predict)
write("fuzz_http_request", requests)
