#!/usr/bin/env python3
"""Real anthropic SDK (2.x, traces itself: scope com.anthropic.sdk.python) against fake_anthropic.py,
alone or with one instrumentation on top. `--mode` picks the combination (and so the venv):

  sdk            SDK tracing only, content_mode "content"            (venv anthropic-sdk)
  sdk_metadata   SDK tracing only, its default content_mode          (venv anthropic-sdk)
  openllmetry    + opentelemetry-instrumentation-anthropic (Traceloop) (venv anthropic-openllmetry)
  openinference  + openinference-instrumentation-anthropic (Arize)     (venv anthropic-openinference)
  otel           + opentelemetry-instrumentation-genai-anthropic       (venv anthropic-otel),
                   OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=span_only

With an instrumentation the SDK keeps its own tracing on with its defaults (as an app that only adds
the instrumentation gets), so every call is recorded twice. The SDK's spans go through the global
TracerProvider (set here), the instrumentation is given the same provider.
Requests come from scenarios-anthropic.json: plain, stream (messages.create(stream=True), events
read raw), cache (system block with cache_control), error (529 overloaded_error; max_retries=0).
"""
import os
import sys
import time

import provider_common as pc

DOC = pc.load("scenarios-anthropic.json")
MODES = ["sdk", "sdk_metadata", "openllmetry", "openinference", "otel"]


def request_kwargs(name):
    r = DOC["scenarios"][name]["request"]
    system = r["system"]
    if r.get("cache_system"):
        system = [{"type": "text", "text": system, "cache_control": {"type": "ephemeral"}}]
    kw = {"model": r["model"], "max_tokens": r["max_tokens"], "system": system,
          "messages": [{"role": "user", "content": r["user"]}]}
    for k in ("stop_sequences",):
        if r.get(k) is not None:
            kw[k] = r[k]
    return kw


def run_one(client, name):
    sc = DOC["scenarios"][name]
    res = {"scenario": name, "ok": False}
    t0 = time.time()
    try:
        if sc["stream"]:
            text, rid, usage = [], None, {}
            for event in client.messages.create(stream=True, **request_kwargs(name)):
                if event.type == "message_start":
                    rid = event.message.id
                    usage["input"] = event.message.usage.input_tokens
                elif event.type == "content_block_delta" and event.delta.type == "text_delta":
                    text.append(event.delta.text)
                elif event.type == "message_delta":
                    usage["output"] = event.usage.output_tokens
            res.update(id=rid, text="".join(text), usage=usage)
            res["ok"] = rid == sc["response"]["id"] and res["text"] == sc["response"]["content"]
        else:
            out = client.messages.create(**request_kwargs(name))
            res.update(id=out.id, stop_reason=out.stop_reason, usage=out.usage.model_dump(exclude_none=True))
            res["ok"] = "error" not in sc and out.id == sc["response"]["id"]
    except Exception as e:  # noqa: BLE001 - the error scenario expects one
        res.update(exception=type(e).__name__, message=str(e)[:200])
        if "error" in sc:
            res["ok"] = type(e).__name__ == sc["error"]["python_exception"]
    res["seconds"] = round(time.time() - t0, 3)
    return res


def main():
    args = pc.parse_args("anthropic", DOC, MODES)
    pc.guard_network()
    # Nothing from the caller's environment may change what the SDK records.
    for k in list(os.environ):
        if k.startswith("ANTHROPIC_"):
            del os.environ[k]
    from opentelemetry import trace
    tp = pc.make_tracer_provider(args)
    trace.set_tracer_provider(tp)

    if args.mode == "openllmetry":
        os.environ["TRACELOOP_TRACE_CONTENT"] = "true"
        from opentelemetry.instrumentation.anthropic import AnthropicInstrumentor
        AnthropicInstrumentor().instrument(tracer_provider=tp)
    elif args.mode == "openinference":
        from openinference.instrumentation.anthropic import AnthropicInstrumentor
        AnthropicInstrumentor().instrument(tracer_provider=tp)
    elif args.mode == "otel":
        os.environ["OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"] = "span_only"
        os.environ["OTEL_SEMCONV_STABILITY_OPT_IN"] = "gen_ai_latest_experimental"
        from opentelemetry.instrumentation.genai.anthropic import AnthropicInstrumentor
        AnthropicInstrumentor().instrument(tracer_provider=tp)

    import anthropic
    # None = the SDK's defaults (traces on, content_mode metadata_only), through the global provider.
    otel = {"traces": {"content_mode": "content"}} if args.mode == "sdk" else None
    client = anthropic.Anthropic(base_url=args.base_url, api_key=DOC["api_key"], max_retries=0, timeout=30,
                                 open_telemetry=otel)
    results = pc.run_scenarios(args, tp.get_tracer("promptlog.client"), lambda n: run_one(client, n))
    pc.shutdown(tp)
    bad = [r["scenario"] for r in results if not r["ok"]]
    if bad:
        sys.stderr.write("promptlog: scenarios not as expected: %s\n" % ", ".join(bad))
        sys.exit(1)
    sys.exit(0)


if __name__ == "__main__":
    main()
