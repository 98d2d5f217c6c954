#!/usr/bin/env python3
"""Print a compact, human-readable view of recorded OTLP fixtures (.pb files).

    .venvs/otel-latest/bin/python tests/clients/otlp_summary.py tests/fixtures/otlp/<dir> [--full]

Per span: name, kind, status, parent, scope, every attribute with its AnyValue
type (s=string i=int d=double b=bool arr=array kv=kvlist), span events. Per log
record: event_name, severity, trace/span link, attributes, body. Long strings
are cut to 160 chars unless --full.
"""
import argparse
import glob
import os
import sys

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

FULL = False
KINDS = {0: "UNSPECIFIED", 1: "INTERNAL", 2: "SERVER", 3: "CLIENT", 4: "PRODUCER", 5: "CONSUMER"}


def cut(s):
    s = str(s)
    return s if FULL or len(s) <= 160 else s[:157] + "..."


def anyv(v):
    k = v.WhichOneof("value")
    if k is None:
        return "<empty>"
    if k == "string_value":
        return "s:" + cut(repr(v.string_value))
    if k == "int_value":
        return "i:%d" % v.int_value
    if k == "double_value":
        return "d:%r" % v.double_value
    if k == "bool_value":
        return "b:%s" % v.bool_value
    if k == "bytes_value":
        return "bytes:%s" % v.bytes_value.hex()
    if k == "array_value":
        return "arr[" + ", ".join(anyv(x) for x in v.array_value.values) + "]"
    if k == "kvlist_value":
        return "kv{" + ", ".join("%s=%s" % (x.key, anyv(x.value)) for x in v.kvlist_value.values) + "}"
    return k


def attrs(kvs, indent):
    for kv in sorted(kvs, key=lambda x: x.key):
        print("%s%s = %s" % (indent, kv.key, anyv(kv.value)))


def main():
    global FULL
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--full", action="store_true")
    a = ap.parse_args()
    FULL = a.full
    files = sorted(glob.glob(os.path.join(a.dir, "*.pb")), key=lambda p: os.path.basename(p).split("-")[-1])
    if not files:
        sys.exit("no .pb files in %s" % a.dir)
    for path in files:
        base = os.path.basename(path)
        data = open(path, "rb").read()
        if base.startswith("traces-"):
            req = ExportTraceServiceRequest.FromString(data)
            for rs in req.resource_spans:
                print("== %s resource:" % base)
                attrs(rs.resource.attributes, "   ")
                for ss in rs.scope_spans:
                    for sp in ss.spans:
                        print("-- SPAN %r kind=%s status=%d%s scope=%s@%s" % (
                            sp.name, KINDS.get(sp.kind, sp.kind), sp.status.code,
                            (" msg=%r" % sp.status.message) if sp.status.message else "",
                            ss.scope.name, ss.scope.version))
                        print("   trace=%s span=%s parent=%s dur=%.1fms" % (
                            sp.trace_id.hex()[-8:], sp.span_id.hex()[-8:], sp.parent_span_id.hex()[-8:] or "-",
                            (sp.end_time_unix_nano - sp.start_time_unix_nano) / 1e6))
                        attrs(sp.attributes, "   ")
                        for ev in sp.events:
                            print("   EVENT %r" % ev.name)
                            attrs(ev.attributes, "      ")
        elif base.startswith("logs-"):
            req = ExportLogsServiceRequest.FromString(data)
            for rl in req.resource_logs:
                print("== %s resource:" % base)
                attrs(rl.resource.attributes, "   ")
                for sl in rl.scope_logs:
                    for lr in sl.log_records:
                        print("-- LOG event_name=%r sev=%d/%r scope=%s trace=%s span=%s" % (
                            lr.event_name, lr.severity_number, lr.severity_text, sl.scope.name,
                            lr.trace_id.hex()[-8:] or "-", lr.span_id.hex()[-8:] or "-"))
                        attrs(lr.attributes, "   ")
                        if lr.HasField("body"):
                            print("   BODY " + anyv(lr.body))
        else:
            print("== %s (%d bytes, not decoded)" % (base, len(data)))


if __name__ == "__main__":
    main()
