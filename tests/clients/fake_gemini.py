#!/usr/bin/env python3
"""Deterministic fake Gemini Developer API server (stdlib only).

    python3 fake_gemini.py --port 0 [--scenarios scenarios-google.json] [--parent-pid PID]
                           [--ignore-stdin] [--request-log FILE] [--verbose]

Prints `READY http://127.0.0.1:<port>` once listening (google-genai's `http_options.base_url`), then serves
  POST /<version>/models/<model>:generateContent         one GenerateContentResponse (JSON)
  POST /<version>/models/<model>:streamGenerateContent   with `alt=sse`: `data: <chunk JSON>\\r\\n\\r\\n` per
       chunk, one chunk per text piece; only the last has `finishReason` and `usageMetadata`
  GET  /healthz
Responses use the REST (camelCase) field names: `candidates[].content.parts[].text`, `finishReason`,
`usageMetadata.{promptTokenCount, cachedContentTokenCount, candidatesTokenCount, thoughtsTokenCount,
totalTokenCount}`, `modelVersion`, `responseId`. Everything comes from scenarios-google.json; the scenario
is chosen by the text of the first user content; a request for `failing_model` gets the scenario's error
as Google sends it (`{"error": {"code", "message", "status"}}` with that HTTP status). Unknown requests get
a 404 `NOT_FOUND` whose message says `promptlog: no scenario`.

Exits on SIGTERM/SIGINT, when stdin reaches EOF (unless --ignore-stdin or stdin is a TTY), and within
~0.25 s after --parent-pid disappears.
"""
import argparse
import json
import os
import re
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HERE = os.path.dirname(os.path.abspath(__file__))
ROUTE = re.compile(r"^/[^/]+/models/([^/:]+):(generateContent|streamGenerateContent)$")


def first_user_text(body):
    for c in body.get("contents") or []:
        if c.get("role", "user") == "user":
            return "".join(p.get("text", "") for p in c.get("parts") or [] if isinstance(p, dict))
    return None


def usage_obj(u):
    return dict(u, promptTokensDetails=[{"modality": "TEXT", "tokenCount": u["promptTokenCount"]}])


def chunk(resp, text, last):
    cand = {"content": {"parts": [{"text": text}], "role": "model"}, "index": 0}
    out = {"candidates": [cand], "modelVersion": resp["model"], "responseId": resp["id"]}
    if last:
        cand["finishReason"] = resp["finish_reason"]
        out["usageMetadata"] = usage_obj(resp["usage"])
    return out


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "promptlog-fake-gemini/1"

    def log_message(self, fmt, *args):
        if self.server.verbose:
            sys.stderr.write("fake_gemini: " + (fmt % args) + "\n")

    def _send_json(self, status, obj):
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _error(self, code, status, message):
        self._send_json(code, {"error": {"code": code, "message": message, "status": status}})

    def do_GET(self):
        if self.path.rstrip("/") == "/healthz":
            return self._send_json(200, {"ok": True})
        self._error(404, "NOT_FOUND", "promptlog: unknown path %s" % self.path)

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            return self._error(400, "INVALID_ARGUMENT", "body is not JSON")
        self.server.log_request_body(self.path, dict(self.headers), body)
        path, _, query = self.path.partition("?")
        m = ROUTE.match(path)
        if not m:
            return self._error(404, "NOT_FOUND", "promptlog: unknown path %s" % self.path)
        model, method = m.group(1), m.group(2)
        doc = self.server.doc
        if model == doc["failing_model"]:
            err = next(s["error"] for s in doc["scenarios"].values() if s["request"]["model"] == model)
            return self._error(err["status"], err["grpc_status"], err["message"])
        text = first_user_text(body)
        sc = next((s for s in doc["scenarios"].values() if "response" in s and s["request"]["user"] == text), None)
        if sc is None:
            return self._error(404, "NOT_FOUND", "promptlog: no scenario matches this request")
        resp = sc["response"]
        if method == "generateContent":
            time.sleep(resp.get("delay_ms", 0) / 1000.0)
            return self._send_json(200, chunk(resp, resp["content"], True))
        if "alt=sse" not in query:
            return self._error(400, "INVALID_ARGUMENT", "promptlog: the fake streams only with alt=sse")
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        pieces = resp.get("chunks") or [resp["content"]]
        for i, piece in enumerate(pieces):
            time.sleep(resp.get("first_chunk_delay_ms" if i == 0 else "chunk_delay_ms", 0) / 1000.0)
            data = "data: %s\r\n\r\n" % json.dumps(chunk(resp, piece, i == len(pieces) - 1))
            self._write_chunk(data.encode())
        self._write_chunk(b"")

    def _write_chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr, doc, request_log, verbose):
        super().__init__(addr, Handler)
        self.doc = doc
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
    ap.add_argument("--scenarios", default=os.path.join(HERE, "scenarios-google.json"))
    ap.add_argument("--parent-pid", type=int, default=None)
    ap.add_argument("--ignore-stdin", action="store_true", help="do not exit when stdin closes")
    ap.add_argument("--request-log", default=None, help="append every request (path, headers, body) as JSON lines")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()

    signal.signal(signal.SIGTERM, _die)
    signal.signal(signal.SIGINT, _die)
    with open(args.scenarios, encoding="utf-8") as f:
        doc = json.load(f)
    srv = Server((args.host, args.port), doc, args.request_log, args.verbose)
    if args.parent_pid:
        threading.Thread(target=_watch_parent, args=(args.parent_pid,), daemon=True).start()
    if not args.ignore_stdin and not sys.stdin.isatty():
        threading.Thread(target=_watch_stdin, daemon=True).start()
    print("READY http://%s:%d" % (args.host, srv.server_address[1]), flush=True)
    srv.serve_forever(poll_interval=0.2)


if __name__ == "__main__":
    main()
