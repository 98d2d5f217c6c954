#!/usr/bin/env python3
"""Official opentelemetry-instrumentation-openai-v2 2.1b0 on OTel 1.33.1 / 0.54b1:
semconv 1.28-1.36 era, content as per-message log events (gen_ai.system.message,
gen_ai.user.message, gen_ai.assistant.message, gen_ai.tool.message, gen_ai.choice).
Run with .venvs/otel-legacy/bin/python.

--mode content (default; OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true)
     | no_content (events still emitted, content stripped)
Identity: W3C baggage session.id / user.id copied onto spans by
opentelemetry-processor-baggage (0.54b1 has no log processor: log records carry none).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

MODES = ["content", "no_content"]


def main():
    args = common.parse_args("otel-legacy", MODES, "content")
    common.guard_network()
    os.environ.pop("OTEL_SEMCONV_STABILITY_OPT_IN", None)
    os.environ["OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"] = (
        "true" if args.mode == "content" else "false")

    from opentelemetry import _events, _logs, trace
    from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor
    from opentelemetry.processor.baggage import ALLOW_ALL_BAGGAGE_KEYS, BaggageSpanProcessor
    from opentelemetry.sdk._events import EventLoggerProvider

    tp = common.make_tracer_provider(args, [BaggageSpanProcessor(ALLOW_ALL_BAGGAGE_KEYS)])
    lp = common.make_logger_provider(args)
    trace.set_tracer_provider(tp)
    _logs.set_logger_provider(lp)
    elp = EventLoggerProvider(lp)
    # Without a global EventLoggerProvider the instrumentation emits no log records.
    _events.set_event_logger_provider(elp)
    OpenAIInstrumentor().instrument(tracer_provider=tp, event_logger_provider=elp)

    tracer = tp.get_tracer("promptlog.clients")
    try:
        results = common.run_scenarios(args, scenario_context=common.span_with_baggage(tracer))
    finally:
        OpenAIInstrumentor().uninstrument()
        common.shutdown(tp, lp)
    common.finish(results)


if __name__ == "__main__":
    main()
