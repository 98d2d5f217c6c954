#!/usr/bin/env python3
"""Deterministic fake OpenAI-compatible server (stdlib only).

    python3 fake_openai.py --port 0 [--scenarios scenarios.json] [--parent-pid PID]
                           [--ignore-stdin] [--request-log FILE]

Prints `READY http://127.0.0.1:<port>/v1` on stdout once listening, then serves
  POST /v1/chat/completions  (JSON, or SSE when "stream": true; a final usage
                              chunk when stream_options.include_usage is true)
  POST /v1/embeddings        (encoding_format float or base64)
  GET  /v1/models, GET /healthz
Everything comes from scenarios.json. The scenario is chosen by the text of the
first user message (+ whether a role=tool message is present); a request for the
configured failing model gets an OpenAI-style error. Unknown requests get a 404
error of type "promptlog_no_scenario" so mismatches are loud.

Exits on SIGTERM/SIGINT, when stdin reaches EOF (unless --ignore-stdin or stdin
is a TTY), and within ~1 s after --parent-pid disappears.
"""
import argparse
import base64
import json
import os
import signal
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HERE = os.path.dirname(os.path.abspath(__file__))


def _content_text(content):
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


class Scenarios:
    def __init__(self, path):
        with open(path, encoding="utf-8") as f:
            self.doc = json.load(f)
        self.failing_model = self.doc["failing_model"]
        self.by_name = self.doc["scenarios"]

    def error_for(self, model):
        if model != self.failing_model:
            return None
        for sc in self.by_name.values():
            if "error" in sc and sc["request"].get("model") == model:
                return sc["error"]
        return {"status": 500, "message": "promptlog fake failure", "type": "server_error",
                "code": "promptlog_failure", "param": None}

    def chat(self, body):
        msgs = body.get("messages") or []
        first_user = next((_content_text(m.get("content")) for m in msgs if m.get("role") == "user"), None)
        has_tool = any(m.get("role") == "tool" for m in msgs)
        for name, sc in self.by_name.items():
            if sc.get("kind") != "chat" or "response" not in sc:
                continue
            req = sc["request"]
            if req.get("user") == first_user and ("tool_result" in req) == has_tool:
                return name, sc
        return None, None

    def embed(self, body):
        for name, sc in self.by_name.items():
            if sc.get("kind") == "embeddings" and sc["request"]["model"] == body.get("model"):
                return name, sc
        return None, None


def usage_obj(u):
    out = {"prompt_tokens": u["prompt_tokens"], "completion_tokens": u["completion_tokens"],
           "total_tokens": u["total_tokens"],
           "prompt_tokens_details": {"cached_tokens": u.get("cached_tokens", 0), "audio_tokens": 0},
           "completion_tokens_details": {"reasoning_tokens": u.get("reasoning_tokens", 0), "audio_tokens": 0,
                                         "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}}
    return out


def tool_calls_obj(resp, with_index=False):
    out = []
    for i, tc in enumerate(resp.get("tool_calls") or []):
        d = {"id": tc["id"], "type": "function", "function": {"name": tc["name"], "arguments": tc["arguments"]}}
        if with_index:
            d["index"] = i
        out.append(d)
    return out


def chat_completion(resp):
    msg = {"role": "assistant", "content": resp.get("content"), "refusal": None, "annotations": []}
    if resp.get("tool_calls"):
        msg["tool_calls"] = tool_calls_obj(resp)
    return {"id": resp["id"], "object": "chat.completion", "created": resp["created"], "model": resp["model"],
            "system_fingerprint": resp.get("system_fingerprint"), "service_tier": resp.get("service_tier"),
            "choices": [{"index": 0, "message": msg, "logprobs": None, "finish_reason": resp["finish_reason"]}],
            "usage": usage_obj(resp["usage"])}


def chat_chunks(resp, include_usage):
    base = {"id": resp["id"], "object": "chat.completion.chunk", "created": resp["created"],
            "model": resp["model"], "system_fingerprint": resp.get("system_fingerprint"),
            "service_tier": resp.get("service_tier")}

    def chunk(delta, finish=None, **extra):
        c = dict(base, choices=[{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}])
        if include_usage:
            c["usage"] = None
        c.update(extra)
        return c

    pieces = resp.get("chunks") or [resp.get("content") or ""]
    out = [chunk({"role": "assistant", "content": "", "refusal": None})]
    out += [chunk({"content": p}) for p in pieces]
    if resp.get("tool_calls"):
        out.append(chunk({"tool_calls": tool_calls_obj(resp, with_index=True)}))
    out.append(chunk({}, resp["finish_reason"]))
    if include_usage:
        out.append(dict(base, choices=[], usage=usage_obj(resp["usage"])))
    return out


def embedding_vector(text, dims):
    seed = sum(ord(ch) for ch in text)
    return [round(((seed * (i + 7)) % 997) / 997.0 - 0.5, 6) for i in range(dims)]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "promptlog-fake-openai/1"

    def log_message(self, fmt, *args):  # quiet unless --verbose
        if self.server.verbose:
            sys.stderr.write("fake_openai: " + (fmt % args) + "\n")

    def _send_json(self, status, obj, headers=None):
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-request-id", "req_promptlog_fake")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status, message, typ, code, param=None):
        self._send_json(status, {"error": {"message": message, "type": typ, "code": code, "param": param}})

    def do_GET(self):
        if self.path.rstrip("/") in ("/healthz", "/v1/healthz"):
            return self._send_json(200, {"ok": True})
        if self.path.rstrip("/") == "/v1/models":
            models = sorted({sc["request"]["model"] for sc in self.server.scenarios.by_name.values()})
            return self._send_json(200, {"object": "list", "data": [
                {"id": m, "object": "model", "created": 1767225600, "owned_by": "promptlog"} for m in models]})
        self._error(404, "unknown path %s" % self.path, "promptlog_no_route", "not_found")

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            return self._error(400, "body is not JSON", "invalid_request_error", "bad_json")
        self.server.log_request_body(self.path, body)
        path = self.path.split("?")[0].rstrip("/")
        sc = self.server.scenarios
        err = sc.error_for(body.get("model"))
        if err:
            return self._error(err["status"], err["message"], err["type"], err["code"], err.get("param"))
        if path == "/v1/chat/completions":
            return self._chat(body)
        if path == "/v1/embeddings":
            return self._embed(body)
        self._error(404, "unknown path %s" % self.path, "promptlog_no_route", "not_found")

    def _chat(self, body):
        name, sc = self.server.scenarios.chat(body)
        if sc is None:
            return self._error(404, "no scenario matches this chat request", "promptlog_no_scenario", "no_scenario")
        resp = sc["response"]
        if not body.get("stream"):
            time.sleep(resp.get("delay_ms", 0) / 1000.0)
            return self._send_json(200, chat_completion(resp))
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("x-request-id", "req_promptlog_fake")
        self.end_headers()
        time.sleep(resp.get("first_chunk_delay_ms", 0) / 1000.0)
        for i, c in enumerate(chat_chunks(resp, include_usage)):
            if i > 0:
                time.sleep(resp.get("chunk_delay_ms", 0) / 1000.0)
            self._write_chunk(("data: %s\n\n" % json.dumps(c)).encode())
        self._write_chunk(b"data: [DONE]\n\n")
        self._write_chunk(b"")

    def _write_chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def _embed(self, body):
        name, sc = self.server.scenarios.embed(body)
        if sc is None:
            return self._error(404, "no embeddings scenario for this model", "promptlog_no_scenario", "no_scenario")
        resp = sc["response"]
        inputs = body.get("input")
        inputs = [inputs] if isinstance(inputs, str) else list(inputs or [])
        dims = body.get("dimensions") or sc["request"].get("dimensions") or 8
        data = []
        for i, text in enumerate(inputs):
            vec = embedding_vector(str(text), dims)
            if body.get("encoding_format") == "base64":
                vec = base64.b64encode(struct.pack("<%df" % len(vec), *vec)).decode()
            data.append({"object": "embedding", "index": i, "embedding": vec})
        time.sleep(resp.get("delay_ms", 0) / 1000.0)
        self._send_json(200, {"object": "list", "data": data, "model": resp["model"], "usage": resp["usage"]})


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr, scenarios, request_log, verbose):
        super().__init__(addr, Handler)
        self.scenarios = scenarios
        self.verbose = verbose
        self._log_lock = threading.Lock()
        self._log = open(request_log, "a", encoding="utf-8") if request_log else None

    def log_request_body(self, path, body):
        if self._log:
            with self._log_lock:
                self._log.write(json.dumps({"path": path, "body": body}) + "\n")
                self._log.flush()


def _die(*_):
    os._exit(0)


def _watch_stdin():
    try:
        while sys.stdin.buffer.read(4096):
            pass
    except Exception:
        pass
    _die()


def _watch_parent(pid):
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            _die()
        except PermissionError:
            pass
        time.sleep(0.25)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--scenarios", default=os.path.join(HERE, "scenarios.json"))
    ap.add_argument("--parent-pid", type=int, default=None)
    ap.add_argument("--ignore-stdin", action="store_true", help="do not exit when stdin closes")
    ap.add_argument("--request-log", default=None, help="append every request body as JSON lines")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()

    signal.signal(signal.SIGTERM, _die)
    signal.signal(signal.SIGINT, _die)
    srv = Server((args.host, args.port), Scenarios(args.scenarios), args.request_log, args.verbose)
    if args.parent_pid:
        threading.Thread(target=_watch_parent, args=(args.parent_pid,), daemon=True).start()
    if not args.ignore_stdin and not sys.stdin.isatty():
        threading.Thread(target=_watch_stdin, daemon=True).start()
    print("READY http://%s:%d/v1" % (args.host, srv.server_address[1]), flush=True)
    srv.serve_forever(poll_interval=0.2)


if __name__ == "__main__":
    main()
