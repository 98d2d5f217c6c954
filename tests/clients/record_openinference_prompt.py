#!/usr/bin/env python3
# Usage: .venvs/openinference/bin/python tests/clients/record_openinference_prompt.py
# Output recorded in crates/promptlog-ingest/src/normalize/prompt_tests.rs (RECORDED_OPENINFERENCE).
# Records the span attributes OpenInference's openai instrumentation sets under using_prompt_template
# (the call itself goes to a closed port and fails; the template attributes come from the context).
import json
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from openinference.instrumentation import using_prompt_template
from openinference.instrumentation.openai import OpenAIInstrumentor
import openai

exp = InMemorySpanExporter()
tp = TracerProvider(); tp.add_span_processor(SimpleSpanProcessor(exp))
OpenAIInstrumentor().instrument(tracer_provider=tp)
client = openai.OpenAI(api_key="k", base_url="http://127.0.0.1:9/v1", max_retries=0)
with using_prompt_template(template="Describe the weather in {city} on {date}",
                           variables={"city": "Johannesburg", "date": "July 11"}, version="v1.0"):
    try:
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    except Exception:
        pass
for s in exp.get_finished_spans():
    print(json.dumps({k: v for k, v in s.attributes.items() if "prompt_template" in k or k == "openinference.span.kind"}, sort_keys=True))
import importlib.metadata as m
print(m.version("openinference-instrumentation-openai"), m.version("openinference-instrumentation"))
