#!/usr/bin/env python3
"""One GenAI chat span, exported by the stock OTLP exporter configured ONLY through the standard
environment variables, as an app would be in production. Run with .venvs/otel-latest/bin/python.

  OTEL_EXPORTER_OTLP_ENDPOINT     https://127.0.0.1:PORT
  OTEL_EXPORTER_OTLP_PROTOCOL     grpc | http/protobuf
  OTEL_EXPORTER_OTLP_CERTIFICATE  CA bundle that signed the collector's certificate
  OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE / OTEL_EXPORTER_OTLP_CLIENT_KEY  for mTLS
  OTEL_EXPORTER_OTLP_HEADERS      e.g. authorization=Bearer%20<key>
  OTEL_SERVICE_NAME               tells the test's rows apart

The exporters are built without arguments so nothing but the environment configures them.
Prints `RESULT {"ok": bool, "result": name}` and exits 0 only if the export succeeded."""
import json
import os
import sys


def exporter():
    protocol = os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    elif protocol == "http/protobuf":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    else:
        sys.exit("unsupported OTEL_EXPORTER_OTLP_PROTOCOL %r" % protocol)
    return OTLPSpanExporter()


def main():
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import SpanKind

    # Collect the span in memory, then export it once with the real exporter, to see its result.
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create())
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("promptlog.tls_client")
    with tracer.start_as_current_span("chat gpt-4o-mini", kind=SpanKind.CLIENT) as span:
        span.set_attribute("gen_ai.operation.name", "chat")
        span.set_attribute("gen_ai.provider.name", "openai")
        span.set_attribute("gen_ai.request.model", "gpt-4o-mini")
        span.set_attribute("gen_ai.response.model", "gpt-4o-mini")
        span.set_attribute("gen_ai.usage.input_tokens", 12)
        span.set_attribute("gen_ai.usage.output_tokens", 7)
    real = exporter()
    result = real.export(memory.get_finished_spans())
    real.shutdown()
    ok = result.name == "SUCCESS"
    print("RESULT " + json.dumps({"ok": ok, "result": result.name}), flush=True)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
