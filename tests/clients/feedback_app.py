#!/usr/bin/env python3
"""promptlog feedback test app (tests/it/feedback.rs). Run with .venvs/otel-latest/bin/python.

Makes the `plain` chat call through the official opentelemetry-instrumentation-openai-v2, then, with the
OTel Python SDK's logs API, emits two `gen_ai.evaluation.result` log records about it: one in the call's
span context (its trace/span ids), one naming the call's `gen_ai.response.id`. Prints one line
`CALL {"trace_id", "span_id", "response_id"}` (the LLM call's span) and exits 0.
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402


def main():
    args = common.parse_args("otel-latest")
    common.guard_network()
    os.environ["OTEL_SEMCONV_STABILITY_OPT_IN"] = "gen_ai_latest_experimental"

    import openai
    from opentelemetry import _logs, trace
    from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor
    from opentelemetry.sdk.trace import SpanProcessor

    calls = []

    class CaptureCalls(SpanProcessor):
        """Remembers the context of every LLM call span the instrumentation ends."""

        def on_end(self, span):
            if (span.attributes or {}).get("gen_ai.operation.name"):
                calls.append(span.get_span_context())

    tp = common.make_tracer_provider(args, [CaptureCalls()])
    lp = common.make_logger_provider(args)
    trace.set_tracer_provider(tp)
    _logs.set_logger_provider(lp)
    OpenAIInstrumentor().instrument(tracer_provider=tp, logger_provider=lp)
    try:
        client = openai.OpenAI(base_url=args.openai_base_url)
        out = client.chat.completions.create(**common.chat_kwargs("plain"))
        call = calls[-1]
        logger = _logs.get_logger("promptlog.tests.feedback")
        in_call = trace.set_span_in_context(trace.NonRecordingSpan(call))
        logger.emit(
            event_name="gen_ai.evaluation.result",
            context=in_call,
            attributes={
                "gen_ai.evaluation.name": "relevance",
                "gen_ai.evaluation.score.value": 0.25,
                "gen_ai.evaluation.score.label": "irrelevant",
                "gen_ai.evaluation.explanation": "The answer ignores the question.",
            },
        )
        logger.emit(
            event_name="gen_ai.evaluation.result",
            attributes={
                "gen_ai.evaluation.name": "toxicity",
                "gen_ai.evaluation.score.label": "clean",
                "gen_ai.evaluation.source": "code",
                "gen_ai.response.id": out.id,
            },
        )
    finally:
        OpenAIInstrumentor().uninstrument()
        common.shutdown(tp, lp)
    ids = {"trace_id": format(call.trace_id, "032x"), "span_id": format(call.span_id, "016x"), "response_id": out.id}
    print("CALL " + json.dumps(ids), flush=True)


if __name__ == "__main__":
    main()
