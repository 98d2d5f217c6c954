#!/usr/bin/env python3
"""Official opentelemetry-instrumentation-openai-v2 2.4b0 (+ util-genai 1.1b0), latest
experimental GenAI conventions. Run with .venvs/otel-latest/bin/python.

--mode span_only | event_only | span_and_event  (OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT)
Identity: W3C baggage session.id / user.id copied onto spans and log records by
opentelemetry-processor-baggage.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

MODES = ["span_only", "event_only", "span_and_event"]


def main():
    args = common.parse_args("otel-latest", MODES, "span_and_event")
    common.guard_network()
    os.environ["OTEL_SEMCONV_STABILITY_OPT_IN"] = "gen_ai_latest_experimental"
    os.environ["OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"] = args.mode.upper()
    os.environ.pop("OTEL_INSTRUMENTATION_GENAI_EMIT_EVENT", None)  # default follows the mode

    from opentelemetry import _logs, trace
    from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor
    from opentelemetry.processor.baggage import ALLOW_ALL_BAGGAGE_KEYS, BaggageSpanProcessor
    from opentelemetry.processor.baggage.log_processor import BaggageLogProcessor

    tp = common.make_tracer_provider(args, [BaggageSpanProcessor(ALLOW_ALL_BAGGAGE_KEYS)])
    lp = common.make_logger_provider(args, [BaggageLogProcessor(ALLOW_ALL_BAGGAGE_KEYS)])
    trace.set_tracer_provider(tp)
    _logs.set_logger_provider(lp)
    OpenAIInstrumentor().instrument(tracer_provider=tp, logger_provider=lp)

    tracer = tp.get_tracer("promptlog.clients")
    try:
        results = common.run_scenarios(args, scenario_context=common.span_with_baggage(tracer))
    finally:
        OpenAIInstrumentor().uninstrument()
        common.shutdown(tp, lp)
    common.finish(results)


if __name__ == "__main__":
    main()
