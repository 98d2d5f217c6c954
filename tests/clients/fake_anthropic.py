#!/usr/bin/env python3
"""Deterministic fake Anthropic Messages API server (stdlib only).

    python3 fake_anthropic.py --port 0 [--scenarios scenarios-anthropic.json] [--parent-pid PID]
                              [--ignore-stdin] [--request-log FILE] [--verbose]

Prints `READY http://127.0.0.1:<port>` on stdout once listening (the anthropic SDK's base_url has
no `/v1`), then serves
  POST /v1/messages  JSON Message, or (when "stream": true) Anthropic's SSE wire format:
                     `event: <type>` + `data: <json>` for message_start (usage: input, cache
                     read/creation, output_tokens 1), content_block_start, ping, one
                     content_block_delta (text_delta) per chunk, content_block_stop,
                     message_delta (stop_reason, usage.output_tokens), message_stop
  GET  /healthz
Everything comes from scenarios-anthropic.json. The scenario is chosen by the text of the first
user message; a request for `failing_model` gets the scenario's error as Anthropic sends it
(`{"type":"error","error":{"type","message"},"request_id"}` with its status, 529 for
overloaded_error, and a `request-id` header). Unknown requests get a 404 `not_found_error` whose
message says `promptlog: no scenario`, so mismatches are loud.

Exits on SIGTERM/SIGINT, when stdin reaches EOF (unless --ignore-stdin or stdin is a TTY), and
within ~0.25 s after --parent-pid disappears.
"""
import argparse
import json
import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HERE = os.path.dirname(os.path.abspath(__file__))


def _text(content):
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(b.get("text", "") for b in content if isinstance(b, dict))
    return ""


class Scenarios:
    def __init__(self, path):
        with open(path, encoding="utf-8") as f:
            self.doc = json.load(f)
        self.by_name = self.doc["scenarios"]

    def error_for(self, model):
        if model != self.doc["failing_model"]:
            return None
        for sc in self.by_name.values():
            if "error" in sc and sc["request"]["model"] == model:
                return sc["error"]
        return {"status": 500, "type": "api_error", "message": "promptlog fake failure", "request_id": "req_promptlog"}

    def find(self, body):
        msgs = body.get("messages") or []
        first_user = next((_text(m.get("content")) for m in msgs if m.get("role") == "user"), None)
        for name, sc in self.by_name.items():
            if "response" in sc and sc["request"]["user"] == first_user:
                return name, sc
        return None, None


def usage_obj(u, output_tokens=None):
    return {
        "input_tokens": u["input_tokens"],
        "cache_creation_input_tokens": u["cache_creation_input_tokens"],
        "cache_read_input_tokens": u["cache_read_input_tokens"],
        "cache_creation": {"ephemeral_5m_input_tokens": u["cache_creation_input_tokens"], "ephemeral_1h_input_tokens": 0},
        "output_tokens": u["output_tokens"] if output_tokens is None else output_tokens,
        "service_tier": "standard",
    }


def message(resp, content, stop_reason, output_tokens=None):
    return {"id": resp["id"], "type": "message", "role": "assistant", "model": resp["model"],
            "content": content, "stop_reason": stop_reason, "stop_sequence": None,
            "usage": usage_obj(resp["usage"], output_tokens)}


def stream_events(resp):
    """(event type, data) of a streamed Message, as the API sends them."""
    out = [("message_start", {"type": "message_start", "message": message(resp, [], None, output_tokens=1)}),
           ("content_block_start", {"type": "content_block_start", "index": 0,
                                    "content_block": {"type": "text", "text": ""}}),
           ("ping", {"type": "ping"})]
    for piece in resp.get("chunks") or [resp["content"]]:
        out.append(("content_block_delta", {"type": "content_block_delta", "index": 0,
                                            "delta": {"type": "text_delta", "text": piece}}))
    out.append(("content_block_stop", {"type": "content_block_stop", "index": 0}))
    out.append(("message_delta", {"type": "message_delta",
                                  "delta": {"stop_reason": resp["stop_reason"], "stop_sequence": None},
                                  "usage": {"output_tokens": resp["usage"]["output_tokens"]}}))
    out.append(("message_stop", {"type": "message_stop"}))
    return out


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "promptlog-fake-anthropic/1"

    def log_message(self, fmt, *args):
        if self.server.verbose:
            sys.stderr.write("fake_anthropic: " + (fmt % args) + "\n")

    def _send_json(self, status, obj, request_id="req_promptlog_fake"):
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("request-id", request_id)
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status, typ, message, request_id="req_promptlog_fake"):
        self._send_json(status, {"type": "error", "error": {"type": typ, "message": message},
                                 "request_id": request_id}, request_id)

    def do_GET(self):
        if self.path.rstrip("/") in ("/healthz", "/v1/healthz"):
            return self._send_json(200, {"ok": True})
        self._error(404, "not_found_error", "promptlog: unknown path %s" % self.path)

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            return self._error(400, "invalid_request_error", "body is not JSON")
        self.server.log_request_body(self.path, dict(self.headers), body)
        if self.path.split("?")[0].rstrip("/") != "/v1/messages":
            return self._error(404, "not_found_error", "promptlog: unknown path %s" % self.path)
        err = self.server.scenarios.error_for(body.get("model"))
        if err:
            return self._error(err["status"], err["type"], err["message"], err.get("request_id", "req_promptlog"))
        name, sc = self.server.scenarios.find(body)
        if sc is None:
            return self._error(404, "not_found_error", "promptlog: no scenario matches this request")
        resp = sc["response"]
        if not body.get("stream"):
            time.sleep(resp.get("delay_ms", 0) / 1000.0)
            return self._send_json(200, message(resp, [{"type": "text", "text": resp["content"]}],
                                                resp["stop_reason"]))
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("request-id", "req_promptlog_fake")
        self.end_headers()
        for i, (typ, data) in enumerate(stream_events(resp)):
            if typ == "content_block_delta":
                first = i == 3
                time.sleep(resp.get("first_chunk_delay_ms" if first else "chunk_delay_ms", 0) / 1000.0)
            self._write_chunk(("event: %s\ndata: %s\n\n" % (typ, json.dumps(data))).encode())
        self._write_chunk(b"")

    def _write_chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr, scenarios, request_log, verbose):
        super().__init__(addr, Handler)
        self.scenarios = scenarios
        self.verbose = verbose
        self._log_lock = threading.Lock()
        self._log = open(request_log, "a", encoding="utf-8") if request_log else None

    def log_request_body(self, path, headers, body):
        if self._log:
            with self._log_lock:
                self._log.write(json.dumps({"path": path, "headers": headers, "body": body}) + "\n")
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
    ap.add_argument("--scenarios", default=os.path.join(HERE, "scenarios-anthropic.json"))
    ap.add_argument("--parent-pid", type=int, default=None)
    ap.add_argument("--ignore-stdin", action="store_true", help="do not exit when stdin closes")
    ap.add_argument("--request-log", default=None, help="append every request (path, headers, body) as JSON lines")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()

    signal.signal(signal.SIGTERM, _die)
    signal.signal(signal.SIGINT, _die)
    srv = Server((args.host, args.port), Scenarios(args.scenarios), args.request_log, args.verbose)
    if args.parent_pid:
        threading.Thread(target=_watch_parent, args=(args.parent_pid,), daemon=True).start()
    if not args.ignore_stdin and not sys.stdin.isatty():
        threading.Thread(target=_watch_stdin, daemon=True).start()
    print("READY http://%s:%d" % (args.host, srv.server_address[1]), flush=True)
    srv.serve_forever(poll_interval=0.2)


if __name__ == "__main__":
    main()
