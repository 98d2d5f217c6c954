#!/usr/bin/env python3
"""Real google-genai client (Gemini Developer API) with the official
opentelemetry-instrumentation-google-genai against fake_gemini.py (venv google-genai).

  --mode span_only   OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=span_only (content on the span)

The instrumentation forces OTEL_INSTRUMENTATION_GENAI_EMIT_EVENT=true, so a LoggerProvider with the OTLP
log exporter is configured too. Client: `genai.Client(api_key=…, http_options=HttpOptions(base_url=<fake>,
retry_options=HttpRetryOptions(attempts=1)))` (no retries: the SDK retries a 503 five times by default).
Requests come from scenarios-google.json: plain (generate_content), stream (generate_content_stream =
streamGenerateContent?alt=sse), cache (cached_content), thinking (thinking_config; the response has
thoughtsTokenCount), error (503 UNAVAILABLE -> google.genai.errors.ServerError).
"""
import os
import sys
import time

import provider_common as pc

DOC = pc.load("scenarios-google.json")
MODES = ["span_only"]


def config(types, r):
    kw = {}
    if r.get("system"):
        kw["system_instruction"] = r["system"]
    for k in ("temperature", "top_p", "top_k", "max_output_tokens", "stop_sequences", "cached_content"):
        if r.get(k) is not None:
            kw[k] = r[k]
    if r.get("thinking_budget") is not None:
        kw["thinking_config"] = types.ThinkingConfig(thinking_budget=r["thinking_budget"])
    return types.GenerateContentConfig(**kw)


def run_one(client, types, name):
    sc = DOC["scenarios"][name]
    r = sc["request"]
    res = {"scenario": name, "ok": False}
    t0 = time.time()
    try:
        kw = {"model": r["model"], "contents": r["user"], "config": config(types, r)}
        if sc["stream"]:
            text, rid = [], None
            for chunk in client.models.generate_content_stream(**kw):
                rid = chunk.response_id
                text.append(chunk.text or "")
            res.update(id=rid, text="".join(text))
            res["ok"] = rid == sc["response"]["id"] and res["text"] == sc["response"]["content"]
        else:
            out = client.models.generate_content(**kw)
            res.update(id=out.response_id, text=out.text, usage=out.usage_metadata.model_dump(exclude_none=True))
            res["ok"] = "error" not in sc and out.response_id == sc["response"]["id"]
    except Exception as e:  # noqa: BLE001 - the error scenario expects one
        res.update(exception=type(e).__name__, message=str(e)[:200])
        if "error" in sc:
            res["ok"] = type(e).__name__ == sc["error"]["python_exception"]
    res["seconds"] = round(time.time() - t0, 3)
    return res


def main():
    args = pc.parse_args("google-genai", DOC, MODES)
    pc.guard_network()
    for k in list(os.environ):
        if k.startswith(("GOOGLE_", "GEMINI_")):
            del os.environ[k]
    os.environ["OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"] = args.mode
    os.environ["OTEL_SEMCONV_STABILITY_OPT_IN"] = "gen_ai_latest_experimental"
    from opentelemetry import trace
    tp = pc.make_tracer_provider(args)
    lp = pc.make_logger_provider(args)
    trace.set_tracer_provider(tp)
    from opentelemetry.instrumentation.google_genai import GoogleGenAiSdkInstrumentor
    # 1.3b0 declares google-genai >=1.32.0,<3 and instruments nothing on 3.x unless the check is skipped.
    GoogleGenAiSdkInstrumentor().instrument(tracer_provider=tp, logger_provider=lp, skip_dep_check=True)

    from google import genai
    from google.genai import types
    client = genai.Client(api_key=DOC["api_key"], http_options=types.HttpOptions(
        base_url=args.base_url, timeout=30_000, retry_options=types.HttpRetryOptions(attempts=1)))
    results = pc.run_scenarios(args, tp.get_tracer("promptlog.client"), lambda n: run_one(client, types, n))
    pc.shutdown(tp, lp)
    bad = [r["scenario"] for r in results if not r["ok"]]
    if bad:
        sys.stderr.write("promptlog: scenarios not as expected: %s\n" % ", ".join(bad))
        sys.exit(1)
    sys.exit(0)


if __name__ == "__main__":
    main()
