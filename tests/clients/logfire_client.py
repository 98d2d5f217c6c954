#!/usr/bin/env python3
"""Pydantic Logfire 5.2.0 (logfire.instrument_openai). Run with .venvs/logfire/bin/python.

--mode v2 (default: instrument_openai(version=2), gen_ai.* semconv attributes)
     | v1 (version=1: legacy request_data / response_data JSON attributes)
Export: logfire.configure(send_to_logfire=False, console=False, metrics=False).
  http -> the documented alternative-backend path: OTEL_EXPORTER_OTLP_ENDPOINT
          (logfire adds OTLP/HTTP span + log exporters itself);
  grpc -> logfire has no gRPC exporter of its own: additional_span_processors=
          [BatchSpanProcessor(OTLP gRPC exporter)].
Identity: logfire.set_baggage(session.id=..., user.id=...) (copied to span attributes
by logfire's add_baggage_to_attributes=True); tags via logfire.with_tags(...)
on the instrumenting instance -> logfire.tags; each scenario runs inside
logfire.span('scenario {scenario}') (which also yields a pending span).
"""
import contextlib
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

MODES = ["v2", "v1"]


def main():
    args = common.parse_args("logfire", MODES, "v2")
    common.guard_network()
    for k in list(os.environ):
        if k.startswith("OTEL_EXPORTER_OTLP") or k.startswith("LOGFIRE_"):
            os.environ.pop(k)
    extra = []
    if args.protocol == "http":
        os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = args.otlp_endpoint
    else:
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        extra.append(BatchSpanProcessor(common.span_exporter(args)))

    import logfire

    res = common.resource_attributes(args)
    logfire.configure(
        send_to_logfire=False,
        console=False,
        metrics=False,
        service_name=res.pop("service.name"),
        environment=res.pop("deployment.environment.name"),
        resource_attributes=res,
        additional_span_processors=extra or None,
        inspect_arguments=False,
    )
    ident = common.DOC["identity"]
    lf = logfire.with_tags(*ident["tags"])
    lf.instrument_openai(version=1 if args.mode == "v1" else 2)

    def ctx(name):
        stack = contextlib.ExitStack()
        stack.enter_context(logfire.set_baggage(**{"session.id": ident["session_id"],
                                                   "user.id": ident["user_id"]}))
        stack.enter_context(logfire.span("scenario {scenario}", scenario=name))
        return stack

    try:
        results = common.run_scenarios(args, scenario_context=ctx)
    finally:
        logfire.force_flush()
        logfire.shutdown()
    common.finish(results)


if __name__ == "__main__":
    main()
