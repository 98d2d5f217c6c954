#!/usr/bin/env python3
"""OpenLIT 1.45.0 (openai 2.x: openlit requires openai<3). Run with .venvs/openlit/bin/python.

openlit.init() builds its own TracerProvider/LoggerProvider from
OTEL_EXPORTER_OTLP_PROTOCOL (read at import time!) + otlp_endpoint; prices come from
the local tests/clients/openlit_pricing.json (otherwise it downloads one from GitHub).
No --mode. OpenLIT has no session/user API for plain OpenAI calls, so identity is
passed with openlit.init(custom_span_attributes={session.id, user.id}), which OpenLIT
stamps on its own LLM spans (not on the httpx "POST" spans).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

PRICING = os.path.join(common.HERE, "openlit_pricing.json")


def main():
    args = common.parse_args("openlit")
    common.guard_network()
    # openlit picks grpc vs http exporters from this env var when its modules are imported
    os.environ["OTEL_EXPORTER_OTLP_PROTOCOL"] = "grpc" if args.protocol == "grpc" else "http/protobuf"
    for k in ("OTEL_TRACES_EXPORTER", "OTEL_LOGS_EXPORTER", "OTEL_EXPORTER_OTLP_HEADERS"):
        os.environ.pop(k, None)
    common.set_resource_env(args)

    import openlit
    from opentelemetry import _logs, trace

    ident = common.DOC["identity"]
    openlit.init(
        service_name=args.service_name,
        environment="test",
        otlp_endpoint=args.otlp_endpoint,
        pricing_json=PRICING,
        capture_message_content=True,
        disable_metrics=True,
        custom_span_attributes={"session.id": ident["session_id"], "user.id": ident["user_id"]},
    )
    tracer = trace.get_tracer("promptlog.clients")
    try:
        results = common.run_scenarios(args, tracer=tracer)
    finally:
        common.shutdown(trace.get_tracer_provider(), _logs.get_logger_provider())
    common.finish(results)


if __name__ == "__main__":
    main()
