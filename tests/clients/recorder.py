#!/usr/bin/env python3
"""Minimal OTLP receiver that records every export request to disk.

Run it from the otel-latest venv (it needs grpcio + opentelemetry-proto):

    .venvs/otel-latest/bin/python tests/clients/recorder.py --out DIR \
        [--http-port 4318] [--grpc-port 4317] [--drop-metrics] [--parent-pid PID]

Port 0 picks a free port; -1 disables that listener. Prints
`READY http=<port> grpc=<port>` once both listen. For each request it writes
`DIR/<signal>-<seq>.pb` (the raw, decompressed ExportXServiceRequest bytes) and
`DIR/<signal>-<seq>.json` (google.protobuf.json_format.MessageToJson: ids are
base64 there, int64 as strings; it is for humans). <signal> is traces, logs or
metrics; <seq> is a 4-digit counter shared by all signals, in arrival order.
HTTP: POST /v1/traces|/v1/logs|/v1/metrics, application/x-protobuf (gzip ok) or
application/json. Exits on SIGTERM/SIGINT, or once --parent-pid is gone.
"""
import argparse
import gzip
import os
import signal
import sys
import threading
import zlib
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2 as lpb, logs_service_pb2_grpc as lgrpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2 as mpb, metrics_service_pb2_grpc as mgrpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as tpb, trace_service_pb2_grpc as tgrpc

SIGNALS = {
    "traces": (tpb.ExportTraceServiceRequest, tpb.ExportTraceServiceResponse),
    "logs": (lpb.ExportLogsServiceRequest, lpb.ExportLogsServiceResponse),
    "metrics": (mpb.ExportMetricsServiceRequest, mpb.ExportMetricsServiceResponse),
}


class Store:
    def __init__(self, out, drop_metrics, quiet):
        self.out = out
        self.drop_metrics = drop_metrics
        self.quiet = quiet
        self.seq = 0
        self.lock = threading.Lock()
        os.makedirs(out, exist_ok=True)

    def record(self, signal_name, msg, transport):
        if signal_name == "metrics" and self.drop_metrics:
            return
        raw = msg.SerializeToString()
        with self.lock:
            self.seq += 1
            base = os.path.join(self.out, "%s-%04d" % (signal_name, self.seq))
            with open(base + ".pb", "wb") as f:
                f.write(raw)
            with open(base + ".json", "w", encoding="utf-8") as f:
                f.write(json_format.MessageToJson(msg, indent=1) + "\n")
        if not self.quiet:
            print("recorded %s.pb (%s, %d bytes)" % (base, transport, len(raw)), file=sys.stderr, flush=True)


def make_http_handler(store):
    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def do_POST(self):
            n = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(n) if n else b""
            enc = (self.headers.get("Content-Encoding") or "").lower()
            try:
                if enc == "gzip" or body[:2] == b"\x1f\x8b":
                    body = gzip.decompress(body)
                elif enc == "deflate":
                    body = zlib.decompress(body)
            except Exception as e:  # noqa: BLE001
                return self._reply(400, b"bad compression: %s" % str(e).encode(), "text/plain")
            sig = self.path.split("?")[0].rstrip("/").rsplit("/", 1)[-1]
            if sig not in SIGNALS:
                return self._reply(404, b"unknown path", "text/plain")
            req_cls, resp_cls = SIGNALS[sig]
            msg = req_cls()
            ctype = (self.headers.get("Content-Type") or "").lower()
            try:
                if "json" in ctype:
                    json_format.Parse(body.decode("utf-8"), msg)
                else:
                    msg.ParseFromString(body)
            except Exception as e:  # noqa: BLE001
                return self._reply(400, b"bad body: %s" % str(e).encode(), "text/plain")
            store.record(sig, msg, "http")
            if "json" in ctype:
                self._reply(200, json_format.MessageToJson(resp_cls()).encode(), "application/json")
            else:
                self._reply(200, resp_cls().SerializeToString(), "application/x-protobuf")

        def _reply(self, status, data, ctype):
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return H


def make_grpc_server(store, port):
    class Traces(tgrpc.TraceServiceServicer):
        def Export(self, request, context):
            store.record("traces", request, "grpc")
            return tpb.ExportTraceServiceResponse()

    class Logs(lgrpc.LogsServiceServicer):
        def Export(self, request, context):
            store.record("logs", request, "grpc")
            return lpb.ExportLogsServiceResponse()

    class Metrics(mgrpc.MetricsServiceServicer):
        def Export(self, request, context):
            store.record("metrics", request, "grpc")
            return mpb.ExportMetricsServiceResponse()

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    tgrpc.add_TraceServiceServicer_to_server(Traces(), server)
    lgrpc.add_LogsServiceServicer_to_server(Logs(), server)
    mgrpc.add_MetricsServiceServicer_to_server(Metrics(), server)
    bound = server.add_insecure_port("127.0.0.1:%d" % port)
    server.start()
    return server, bound


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--http-port", type=int, default=4318)
    ap.add_argument("--grpc-port", type=int, default=4317)
    ap.add_argument("--drop-metrics", action="store_true")
    ap.add_argument("--parent-pid", type=int, default=None)
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args()

    store = Store(args.out, args.drop_metrics, args.quiet)
    http_port = grpc_port = -1
    if args.grpc_port >= 0:
        _server, grpc_port = make_grpc_server(store, args.grpc_port)
    if args.http_port >= 0:
        httpd = ThreadingHTTPServer(("127.0.0.1", args.http_port), make_http_handler(store))
        httpd.daemon_threads = True
        http_port = httpd.server_address[1]
        threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True).start()

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print("READY http=%d grpc=%d" % (http_port, grpc_port), flush=True)
    while not stop.wait(0.25):
        if args.parent_pid:
            try:
                os.kill(args.parent_pid, 0)
            except ProcessLookupError:
                break
    os._exit(0)


if __name__ == "__main__":
    main()
