"""Shared code for the real-client scripts (stdlib + openai + OTel SDK only).

Every client script:
  1. calls parse_args(instrumentation, modes) and guard_network(),
  2. sets env vars / configures its instrumentation and providers,
  3. calls run_scenarios(args, scenario_context=...) which drives the real
     openai client against the fake server using scenarios.json,
  4. flushes + shuts down its providers and exits with finish(results).
"""
import argparse
import contextlib
import ipaddress
import json
import os
import sys
import time

# openai>=3 uses the httpx2 fork; several instrumentations still `import httpx`
# (openai-v2: `from httpx import URL` -> ImportError without httpx, and without
# the alias server.address/port would be missing because base_url is an
# httpx2.URL). httpx2's documented app-level fix: alias httpx -> httpx2.
try:
    import httpx2
    httpx2.alias_httpx()
except ImportError:  # openai<3 (openlit venv) ships plain httpx
    pass

HERE = os.path.dirname(os.path.abspath(__file__))
SCENARIOS_PATH = os.path.join(HERE, "scenarios.json")


def load_doc(path=SCENARIOS_PATH):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


DOC = load_doc()


# --------------------------------------------------------------------------- CLI
def parse_args(instrumentation, modes=None, default_mode=None):
    ap = argparse.ArgumentParser(description="promptlog real client: %s" % instrumentation)
    ap.add_argument("--otlp-endpoint", required=True,
                    help="OTLP base endpoint, e.g. http://127.0.0.1:4318 (http) or http://127.0.0.1:4317 (grpc)")
    ap.add_argument("--protocol", choices=["http", "grpc"], default="http")
    ap.add_argument("--openai-base-url", required=True, help="e.g. http://127.0.0.1:PORT/v1")
    ap.add_argument("--scenario", default="all",
                    help="one of %s, a comma list, or all" % ",".join(DOC["run_order"]))
    if modes:
        ap.add_argument("--mode", choices=modes, default=default_mode or modes[0])
    ap.add_argument("--service-name", default="client-%s" % instrumentation)
    args = ap.parse_args()
    args.instrumentation = instrumentation
    if not modes:
        args.mode = None
    if args.scenario == "all":
        args.scenarios = list(DOC["run_order"])
    else:
        args.scenarios = [s.strip() for s in args.scenario.split(",") if s.strip()]
        bad = [s for s in args.scenarios if s not in DOC["scenarios"]]
        if bad:
            ap.error("unknown scenario(s) %s; known: %s, all" % (bad, ",".join(DOC["run_order"])))
    args.otlp_endpoint = args.otlp_endpoint.rstrip("/")
    os.environ.setdefault("OPENAI_API_KEY", DOC["api_key"])
    return args


def resource_attributes(args):
    attrs = {
        "service.name": args.service_name,
        "deployment.environment.name": "test",
        "promptlog.client": args.instrumentation,
    }
    if args.mode:
        attrs["promptlog.client.mode"] = args.mode
    return attrs


def set_resource_env(args):
    """For SDKs that build their own Resource (they all merge OTEL_RESOURCE_ATTRIBUTES)."""
    attrs = resource_attributes(args)
    os.environ["OTEL_SERVICE_NAME"] = attrs.pop("service.name")
    os.environ["OTEL_RESOURCE_ATTRIBUTES"] = ",".join("%s=%s" % kv for kv in attrs.items())


# ------------------------------------------------------------------- offline guard
def guard_network():
    """Refuse (and report) any socket connection that is not to loopback."""
    def allowed(host):
        if host in (None, "", "localhost"):
            return True
        try:
            return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
        except ValueError:
            return False

    def hook(event, a):
        host = None
        if event == "socket.connect" and isinstance(a[1], tuple):
            host = a[1][0]
        elif event == "socket.getaddrinfo":
            host = a[0]
        else:
            return
        if isinstance(host, bytes):
            host = host.decode()
        if not allowed(host):
            sys.stderr.write("promptlog guard_network: blocked %s to %r\n" % (event, host))
            raise OSError("promptlog: network access to %r blocked (offline test client)" % (host,))

    sys.addaudithook(hook)  # covers every Python-level socket API (not grpc's C core)


# ---------------------------------------------------------------- OTLP exporters
def span_exporter(args):
    if args.protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        return OTLPSpanExporter(endpoint=args.otlp_endpoint, insecure=True)
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    return OTLPSpanExporter(endpoint=args.otlp_endpoint + "/v1/traces")


def log_exporter(args):
    if args.protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
        return OTLPLogExporter(endpoint=args.otlp_endpoint, insecure=True)
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    return OTLPLogExporter(endpoint=args.otlp_endpoint + "/v1/logs")


def make_tracer_provider(args, extra_processors=()):
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    tp = TracerProvider(resource=Resource.create(resource_attributes(args)))
    for p in extra_processors:
        tp.add_span_processor(p)
    tp.add_span_processor(BatchSpanProcessor(span_exporter(args)))
    return tp


def make_logger_provider(args, extra_processors=()):
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
    from opentelemetry.sdk.resources import Resource
    lp = LoggerProvider(resource=Resource.create(resource_attributes(args)))
    for p in extra_processors:
        lp.add_log_record_processor(p)
    lp.add_log_record_processor(BatchLogRecordProcessor(log_exporter(args)))
    return lp


def shutdown(*providers):
    for p in providers:
        if p is None:
            continue
        for meth in ("force_flush", "shutdown"):
            fn = getattr(p, meth, None)
            if fn is None:
                continue
            try:
                fn()
            except Exception as e:  # noqa: BLE001
                sys.stderr.write("promptlog: %s.%s failed: %r\n" % (type(p).__name__, meth, e))


# ---------------------------------------------------------------- requests
def chat_kwargs(name):
    sc = DOC["scenarios"][name]
    r = sc["request"]
    msgs = [{"role": "system", "content": r["system"]}, {"role": "user", "content": r["user"]}]
    if "tool_result" in r:
        prev = DOC["scenarios"]["tool"]["response"]
        msgs.append({"role": "assistant", "content": None, "tool_calls": [
            {"id": tc["id"], "type": "function", "function": {"name": tc["name"], "arguments": tc["arguments"]}}
            for tc in prev["tool_calls"]]})
        msgs.append({"role": "tool", "tool_call_id": r["tool_result"]["tool_call_id"],
                     "content": r["tool_result"]["content"]})
    kw = {"model": r["model"], "messages": msgs}
    for k in ("temperature", "max_tokens", "top_p", "seed", "stop", "frequency_penalty", "presence_penalty"):
        if r.get(k) is not None:
            kw[k] = r[k]
    if r.get("openai_user"):
        kw["user"] = r["openai_user"]
    tools = r.get("tools")
    if tools is None and r.get("tools_from"):
        tools = DOC["scenarios"][r["tools_from"]]["request"]["tools"]
    if tools:
        kw["tools"] = tools
        kw["tool_choice"] = r.get("tool_choice", "auto")
    if sc.get("stream"):
        kw["stream"] = True
        kw["stream_options"] = {"include_usage": True}
    return kw


def embed_kwargs(name):
    r = DOC["scenarios"][name]["request"]
    return {k: r[k] for k in ("model", "input", "dimensions", "encoding_format") if k in r}


def run_one(client, name):
    """Run one scenario; return a result dict (ok=True when it behaved as scenarios.json says)."""
    sc = DOC["scenarios"][name]
    res = {"scenario": name, "ok": False}
    t0 = time.time()
    try:
        if sc["kind"] == "embeddings":
            out = client.embeddings.create(**embed_kwargs(name))
            res.update(model=out.model, n=len(out.data))
            res["ok"] = out.model == sc["response"]["model"]
        elif sc.get("stream"):
            text, rid, usage = [], None, None
            stream = client.chat.completions.create(**chat_kwargs(name))
            for chunk in stream:
                rid = chunk.id
                if chunk.usage:
                    usage = chunk.usage.total_tokens
                for ch in chunk.choices or []:
                    if ch.delta and ch.delta.content:
                        text.append(ch.delta.content)
            res.update(id=rid, text="".join(text), total_tokens=usage)
            res["ok"] = rid == sc["response"]["id"] and res["text"] == sc["response"]["content"]
        else:
            out = client.chat.completions.create(**chat_kwargs(name))
            res.update(id=out.id, finish_reason=out.choices[0].finish_reason)
            res["ok"] = "error" not in sc and out.id == sc["response"]["id"]
    except Exception as e:  # noqa: BLE001 - the error scenario expects one
        res.update(exception=type(e).__name__, message=str(e)[:200])
        if "error" in sc:
            res["ok"] = type(e).__name__ == sc["error"]["python_exception"]
    res["seconds"] = round(time.time() - t0, 3)
    return res


@contextlib.contextmanager
def scenario_span(tracer, name):
    with tracer.start_as_current_span("scenario %s" % name, attributes={"promptlog.scenario": name}):
        yield


def run_scenarios(args, tracer=None, scenario_context=None, client=None, call_wrapper=None):
    """Run args.scenarios with a real openai client. scenario_context(name) -> context
    manager wrapped around each call (identity, parent span...); default: a parent
    span 'scenario <name>' from `tracer` when given. call_wrapper(name, thunk) -> result
    replaces the context manager (for decorator-style SDKs)."""
    if client is None:
        import openai
        client = openai.OpenAI(base_url=args.openai_base_url, api_key=DOC["api_key"], max_retries=0, timeout=30)
    if scenario_context is None:
        scenario_context = (lambda n: scenario_span(tracer, n)) if tracer else (lambda n: contextlib.nullcontext())
    results = []
    for name in args.scenarios:
        if call_wrapper is not None:
            res = call_wrapper(name, lambda n=name: run_one(client, n))
        else:
            with scenario_context(name):
                res = run_one(client, name)
        print("RESULT " + json.dumps(res, sort_keys=True), flush=True)
        results.append(res)
    return results


@contextlib.contextmanager
def baggage_identity(name):
    """Put session/user ids into W3C baggage (copied to spans/logs by Baggage*Processor)."""
    from opentelemetry import baggage, context
    ident = DOC["identity"]
    ctx = baggage.set_baggage("session.id", ident["session_id"])
    ctx = baggage.set_baggage("user.id", ident["user_id"], context=ctx)
    token = context.attach(ctx)
    try:
        yield
    finally:
        context.detach(token)


def span_with_baggage(tracer):
    """scenario_context factory: baggage identity + parent span 'scenario <name>'."""
    def ctx(name):
        stack = contextlib.ExitStack()
        stack.enter_context(baggage_identity(name))
        stack.enter_context(scenario_span(tracer, name))
        return stack
    return ctx


def finish(results):
    bad = [r["scenario"] for r in results if not r["ok"]]
    if bad:
        sys.stderr.write("promptlog: scenarios not as expected: %s\n" % ", ".join(bad))
        sys.exit(1)
    sys.exit(0)
