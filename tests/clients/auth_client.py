#!/usr/bin/env python3
"""API-key client for the auth suite (tests/it/auth.rs): the stock OpenTelemetry SDK and OTLP
exporters, configured only through the standard environment variables, the key included:

  OTEL_EXPORTER_OTLP_ENDPOINT   http://127.0.0.1:PORT
  OTEL_EXPORTER_OTLP_PROTOCOL   grpc | http/protobuf
  OTEL_EXPORTER_OTLP_HEADERS    authorization=Bearer%20<key>   (or x-api-key=<key>, or unset)
  OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES

Sends one chat span and one log record inside it, each exported at once (simple processors), and
prints one JSON line with what the exporters reported: {"traces": ["SUCCESS"], "logs": ["FAILURE"]}.
The span, its resource and the log record also carry `promptlog.project_id=claimed-by-client`, which
the collector must keep as an ordinary attribute and never use as the project.
Run with .venvs/otel-latest/bin/python.
"""
import json
import logging
import os
import sys

CLAIM = {"promptlog.project_id": "claimed-by-client"}


class Recording:
    """Wraps an exporter and records the result of every export."""

    def __init__(self, inner):
        self.inner = inner
        self.results = []

    def export(self, batch):
        result = self.inner.export(batch)
        self.results.append(result.name)
        return result

    def shutdown(self):
        self.inner.shutdown()

    def force_flush(self, timeout_millis=30000):
        return True


def main():
    protocol = os.environ["OTEL_EXPORTER_OTLP_PROTOCOL"]
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    elif protocol == "http/protobuf":
        from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    else:
        sys.exit("unsupported OTEL_EXPORTER_OTLP_PROTOCOL %r" % protocol)
    from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
    from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    # No argument: endpoint, protocol and headers come from the environment only.
    spans, logs = Recording(OTLPSpanExporter()), Recording(OTLPLogExporter())
    resource = Resource.create()  # OTEL_SERVICE_NAME + OTEL_RESOURCE_ATTRIBUTES
    tp = TracerProvider(resource=resource)
    tp.add_span_processor(SimpleSpanProcessor(spans))
    lp = LoggerProvider(resource=resource)
    lp.add_log_record_processor(SimpleLogRecordProcessor(logs))
    log = logging.getLogger("promptlog.auth_client")
    log.propagate = False
    log.setLevel(logging.INFO)
    log.addHandler(LoggingHandler(level=logging.INFO, logger_provider=lp))

    tracer = tp.get_tracer("promptlog.auth_client")
    attrs = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini",
             "gen_ai.usage.input_tokens": 3, "gen_ai.usage.output_tokens": 5, **CLAIM}
    with tracer.start_as_current_span("chat gpt-4o-mini", attributes=attrs):
        log.info("hello from the auth client", extra=CLAIM)
    tp.shutdown()
    lp.shutdown()
    print(json.dumps({"traces": spans.results, "logs": logs.results}), flush=True)


if __name__ == "__main__":
    main()
