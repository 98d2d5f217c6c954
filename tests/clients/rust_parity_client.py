#!/usr/bin/env python3
"""The three calls of the promptlog-instrument `openai_chat` example (tests/clients/scenarios-rust.json:
a plain call with temperature and max_tokens, a streamed call with usage, a failing call), made with
the official opentelemetry-instrumentation-openai-v2 (latest experimental conventions, content on the
span), so tests/it/instrument.rs can compare its llm_calls rows with the Rust example's.
Run with .venvs/otel-latest/bin/python.
"""
import argparse
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import common  # noqa: E402

# The app span around each call, as in the Rust example.
APP_SPANS = {"plain": "plain call", "stream": "streamed call", "error": "failing call"}


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--otlp-endpoint", required=True)
    ap.add_argument("--protocol", choices=["http", "grpc"], default="http")
    ap.add_argument("--openai-base-url", required=True)
    ap.add_argument("--service-name", required=True)
    ap.add_argument("--scenarios", default=os.path.join(HERE, "scenarios-rust.json"))
    args = ap.parse_args()
    args.otlp_endpoint = args.otlp_endpoint.rstrip("/")
    args.instrumentation, args.mode = "otel-latest", "span_only"
    doc = common.load_doc(args.scenarios)
    common.guard_network()
    os.environ["OTEL_SEMCONV_STABILITY_OPT_IN"] = "gen_ai_latest_experimental"
    os.environ["OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"] = "SPAN_ONLY"

    import openai
    from opentelemetry import _logs, trace
    from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor

    tp = common.make_tracer_provider(args)
    lp = common.make_logger_provider(args)
    trace.set_tracer_provider(tp)
    _logs.set_logger_provider(lp)
    OpenAIInstrumentor().instrument(tracer_provider=tp, logger_provider=lp)
    tracer = tp.get_tracer("promptlog.clients")
    client = openai.OpenAI(base_url=args.openai_base_url, api_key=doc["api_key"], max_retries=0, timeout=30)
    ok_all = True
    try:
        for name in doc["run_order"]:
            sc = doc["scenarios"][name]
            r = sc["request"]
            kw = {"model": r["model"], "messages": [{"role": "system", "content": r["system"]},
                                                    {"role": "user", "content": r["user"]}]}
            for k in ("temperature", "max_tokens"):
                if k in r:
                    kw[k] = r[k]
            res = {"scenario": name, "ok": False}
            with tracer.start_as_current_span(APP_SPANS[name]):
                try:
                    if sc["stream"]:
                        text = []
                        for chunk in client.chat.completions.create(stream=True, stream_options={"include_usage": True}, **kw):
                            for ch in chunk.choices or []:
                                text.append(ch.delta.content or "")
                        res["ok"] = "".join(text) == sc["response"]["content"]
                    else:
                        out = client.chat.completions.create(**kw)
                        res["ok"] = "error" not in sc and out.id == sc["response"]["id"]
                except Exception as e:  # noqa: BLE001 - the error scenario expects one
                    res["exception"] = type(e).__name__
                    res["ok"] = "error" in sc and type(e).__name__ == sc["error"]["python_exception"]
            ok_all &= res["ok"]
            print("RESULT " + json.dumps(res, sort_keys=True), flush=True)
    finally:
        OpenAIInstrumentor().uninstrument()
        common.shutdown(tp, lp)
    sys.exit(0 if ok_all else 1)


if __name__ == "__main__":
    main()
