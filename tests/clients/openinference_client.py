#!/usr/bin/env python3
"""Arize OpenInference (openinference-instrumentation-openai 0.1.66).
Run with .venvs/openinference/bin/python.

--mode default        OpenInference attributes only (llm.*, input.value, ...)
     | genai_semconv  OPENINFERENCE_ENABLE_GENAI_SEMCONV=true: gen_ai.* attributes added too
Identity: openinference.instrumentation.using_attributes(session_id, user_id, tags,
metadata) -> session.id, user.id, tag.tags, metadata on the OpenInference spans.
"""
import contextlib
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

MODES = ["default", "genai_semconv"]


def main():
    args = common.parse_args("openinference", MODES, "default")
    common.guard_network()
    if args.mode == "genai_semconv":
        os.environ["OPENINFERENCE_ENABLE_GENAI_SEMCONV"] = "true"
    else:
        os.environ.pop("OPENINFERENCE_ENABLE_GENAI_SEMCONV", None)

    from openinference.instrumentation import using_attributes
    from openinference.instrumentation.openai import OpenAIInstrumentor
    from opentelemetry import trace

    tp = common.make_tracer_provider(args)
    trace.set_tracer_provider(tp)
    OpenAIInstrumentor().instrument(tracer_provider=tp)
    tracer = tp.get_tracer("promptlog.clients")
    ident = common.DOC["identity"]

    def ctx(name):
        stack = contextlib.ExitStack()
        stack.enter_context(using_attributes(session_id=ident["session_id"], user_id=ident["user_id"],
                                             tags=list(ident["tags"]), metadata=dict(ident["metadata"])))
        stack.enter_context(common.scenario_span(tracer, name))
        return stack

    try:
        results = common.run_scenarios(args, scenario_context=ctx)
    finally:
        OpenAIInstrumentor().uninstrument()
        common.shutdown(tp)
    common.finish(results)


if __name__ == "__main__":
    main()
