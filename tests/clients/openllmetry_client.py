#!/usr/bin/env python3
"""Traceloop OpenLLMetry: opentelemetry-instrumentation-openai 0.62.4 (Traceloop's, not the
official one), initialised through traceloop-sdk 0.62.4's Traceloop.init with our own OTLP
exporter (nothing goes to the Traceloop cloud). Run with .venvs/openllmetry/bin/python.

--mode attributes  (default) prompts/completions as span attributes
     | events      Traceloop.init(use_attributes=False): gen_ai.* log events instead
                   (needs a global LoggerProvider + OTLP log exporter)
Identity: Traceloop.set_association_properties({session_id, user_id, tenant, experiment})
-> traceloop.association.properties.<key> on every span; each scenario runs inside
a @workflow(name="scenario_<name>") span.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

MODES = ["attributes", "events"]


def main():
    args = common.parse_args("openllmetry", MODES, "attributes")
    common.guard_network()
    os.environ["TRACELOOP_TELEMETRY"] = "false"
    os.environ["TRACELOOP_METRICS_ENABLED"] = "false"
    os.environ["TRACELOOP_TRACE_CONTENT"] = "true"
    os.environ.pop("TRACELOOP_API_KEY", None)
    os.environ.pop("TRACELOOP_BASE_URL", None)

    from opentelemetry import _logs, trace
    from traceloop.sdk import Traceloop
    from traceloop.sdk.decorators import workflow
    from traceloop.sdk.instruments import Instruments

    lp = None
    if args.mode == "events":
        lp = common.make_logger_provider(args)
        _logs.set_logger_provider(lp)
        try:  # OTel 1.44 still has the (deprecated) Events API; set it for completeness
            from opentelemetry import _events
            from opentelemetry.sdk._events import EventLoggerProvider
            _events.set_event_logger_provider(EventLoggerProvider(lp))
        except ImportError:
            pass

    res = common.resource_attributes(args)
    Traceloop.init(
        app_name=res.pop("service.name"),
        resource_attributes=res,
        exporter=common.span_exporter(args),
        disable_batch=False,
        telemetry_enabled=False,
        instruments={Instruments.OPENAI},
        use_attributes=(args.mode == "attributes"),
    )
    ident = common.DOC["identity"]
    Traceloop.set_association_properties({
        "session_id": ident["session_id"],
        "user_id": ident["user_id"],
        "tenant": ident["metadata"]["tenant"],
        "experiment": ident["metadata"]["experiment"],
    })

    def call_wrapper(name, thunk):
        return workflow(name="scenario_%s" % name)(thunk)()

    try:
        results = common.run_scenarios(args, call_wrapper=call_wrapper)
    finally:
        common.shutdown(trace.get_tracer_provider(), lp)
    common.finish(results)


if __name__ == "__main__":
    main()
