#!/usr/bin/env node
// promptlog real client: the official OpenTelemetry JS `@opentelemetry/instrumentation-openai` (0.21.0,
// the newest whose `engines` allow Node 20) around the real `openai` npm package (6.x) against
// tests/clients/fake_openai.py, exporting OTLP traces and logs (the instrumentation writes message
// content as `gen_ai.*` log events) over HTTP/protobuf or gRPC. Same CLI contract as the Python
// clients (tests/clients/README.md):
//
//   node tests/clients/node/otel_openai.mjs --otlp-endpoint http://127.0.0.1:4318 --protocol http|grpc \
//       --openai-base-url http://127.0.0.1:PORT/v1 --scenario all|plain|stream|tool|tool_result|error|embed|<list> \
//       [--service-name S]
//
// One `RESULT {...}` line per call on stdout; exit 0 only when every call behaved as scenarios.json
// says (the error scenario must throw the openai package's BadRequestError with the configured status).
// Both providers are force-flushed and shut down before exiting. Nothing but loopback is reachable
// (guard_network.mjs).
import "./guard_network.mjs";

import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

import { SpanStatusCode, trace } from "@opentelemetry/api";
import { logs } from "@opentelemetry/api-logs";
import { OTLPLogExporter as GrpcLogExporter } from "@opentelemetry/exporter-logs-otlp-grpc";
import { OTLPLogExporter as HttpLogExporter } from "@opentelemetry/exporter-logs-otlp-proto";
import { OTLPTraceExporter as GrpcExporter } from "@opentelemetry/exporter-trace-otlp-grpc";
import { OTLPTraceExporter as HttpExporter } from "@opentelemetry/exporter-trace-otlp-proto";
import { registerInstrumentations } from "@opentelemetry/instrumentation";
import { OpenAIInstrumentation } from "@opentelemetry/instrumentation-openai";
import { defaultResource, resourceFromAttributes } from "@opentelemetry/resources";
import { BatchLogRecordProcessor, LoggerProvider } from "@opentelemetry/sdk-logs";
import { BatchSpanProcessor, NodeTracerProvider } from "@opentelemetry/sdk-trace-node";

const INSTRUMENTATION = "otel-js-openai";
const HERE = dirname(fileURLToPath(import.meta.url));
const DOC = JSON.parse(readFileSync(join(HERE, "..", "scenarios.json"), "utf8"));

// ------------------------------------------------------------------------------------------ CLI
function usage(msg) {
  process.stderr.write(
    `${msg ? `otel_openai.mjs: ${msg}\n` : ""}usage: otel_openai.mjs --otlp-endpoint URL [--protocol http|grpc] ` +
      `--openai-base-url URL/v1 [--scenario all|${DOC.run_order.join("|")}|<comma list>] [--service-name S]\n`,
  );
  process.exit(2);
}

function cli() {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        "otlp-endpoint": { type: "string" },
        protocol: { type: "string", default: "http" },
        "openai-base-url": { type: "string" },
        scenario: { type: "string", default: "all" },
        "service-name": { type: "string", default: `client-${INSTRUMENTATION}` },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
    }));
  } catch (e) {
    usage(e.message);
  }
  if (values.help) usage();
  if (!values["otlp-endpoint"] || !values["openai-base-url"]) usage("--otlp-endpoint and --openai-base-url are required");
  if (!["http", "grpc"].includes(values.protocol)) usage(`bad --protocol ${values.protocol}`);
  const scenarios =
    values.scenario === "all" ? [...DOC.run_order] : values.scenario.split(",").map((s) => s.trim()).filter(Boolean);
  const bad = scenarios.filter((s) => !(s in DOC.scenarios));
  if (bad.length) usage(`unknown scenario(s) ${bad.join(",")}; known: ${DOC.run_order.join(",")}, all`);
  return {
    endpoint: values["otlp-endpoint"].replace(/\/+$/, ""),
    protocol: values.protocol,
    baseURL: values["openai-base-url"],
    scenarios,
    serviceName: values["service-name"],
  };
}

// ------------------------------------------------------------------------------------ telemetry
function makeProviders(args) {
  const grpc = args.protocol === "grpc"; // http:// → insecure channel
  const spans = grpc ? new GrpcExporter({ url: args.endpoint }) : new HttpExporter({ url: `${args.endpoint}/v1/traces` });
  const records = grpc
    ? new GrpcLogExporter({ url: args.endpoint })
    : new HttpLogExporter({ url: `${args.endpoint}/v1/logs` });
  // telemetry.sdk.* (defaultResource) + ours; no host/process detectors.
  const resource = defaultResource().merge(
    resourceFromAttributes({
      "service.name": args.serviceName,
      "deployment.environment.name": "test",
      "promptlog.client": INSTRUMENTATION,
    }),
  );
  const tracerProvider = new NodeTracerProvider({ resource, spanProcessors: [new BatchSpanProcessor(spans)] });
  tracerProvider.register(); // global tracer provider + AsyncLocalStorage context manager
  const loggerProvider = new LoggerProvider({ resource, processors: [new BatchLogRecordProcessor({ exporter: records })] });
  logs.setGlobalLoggerProvider(loggerProvider);
  // Content capture is off by default (OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT); turned on here.
  registerInstrumentations({
    instrumentations: [new OpenAIInstrumentation({ captureMessageContent: true })],
    tracerProvider,
    loggerProvider,
  });
  return { tracerProvider, loggerProvider };
}

// ------------------------------------------------------------------------------------ scenarios
/** The request of one chat scenario, as tests/clients/common.py `chat_kwargs` builds it. */
function chatParams(name) {
  const sc = DOC.scenarios[name];
  const r = sc.request;
  const messages = [
    { role: "system", content: r.system },
    { role: "user", content: r.user },
  ];
  if (r.tool_result) {
    const prev = DOC.scenarios.tool.response;
    messages.push({
      role: "assistant",
      content: null,
      tool_calls: prev.tool_calls.map((tc) => ({
        id: tc.id,
        type: "function",
        function: { name: tc.name, arguments: tc.arguments },
      })),
    });
    messages.push({ role: "tool", tool_call_id: r.tool_result.tool_call_id, content: r.tool_result.content });
  }
  const p = { model: r.model, messages };
  for (const k of ["temperature", "max_tokens", "top_p", "seed", "stop", "frequency_penalty", "presence_penalty"]) {
    if (r[k] != null) p[k] = r[k];
  }
  if (r.openai_user) p.user = r.openai_user;
  const tools = r.tools ?? (r.tools_from ? DOC.scenarios[r.tools_from].request.tools : null);
  if (tools) {
    p.tools = tools;
    p.tool_choice = r.tool_choice ?? "auto";
  }
  if (sc.stream) {
    p.stream = true;
    p.stream_options = { include_usage: true };
  }
  return p;
}

async function runOne(client, name) {
  const sc = DOC.scenarios[name];
  const resp = sc.response;
  try {
    if (sc.kind === "embeddings") {
      const r = sc.request;
      const out = await client.embeddings.create({
        model: r.model,
        input: r.input,
        dimensions: r.dimensions,
        encoding_format: r.encoding_format,
      });
      const ok = out.model === resp.model && out.data.length === r.input.length &&
        out.data.every((d) => d.embedding.length === r.dimensions);
      return { ok, model: out.model, n: out.data.length };
    }
    if (sc.stream) {
      let text = "";
      let id;
      let total;
      const stream = await client.chat.completions.create(chatParams(name));
      for await (const chunk of stream) {
        id = chunk.id;
        if (chunk.usage) total = chunk.usage.total_tokens;
        for (const ch of chunk.choices ?? []) text += ch.delta?.content ?? "";
      }
      return { ok: id === resp.id && text === resp.content, id, text, total_tokens: total };
    }
    const out = await client.chat.completions.create(chatParams(name));
    return { ok: !sc.error && out.id === resp.id, id: out.id, finish_reason: out.choices[0].finish_reason };
  } catch (e) {
    const res = { ok: false, exception: e?.constructor?.name ?? String(e), status: e?.status };
    res.message = String(e?.message ?? e).slice(0, 200);
    if (sc.error) res.ok = res.exception === sc.error.python_exception && e.status === sc.error.status;
    return res;
  }
}

// ------------------------------------------------------------------------------------------ main
async function main() {
  const args = cli();
  const { tracerProvider, loggerProvider } = makeProviders(args);
  // Loaded after the instrumentation is registered, through require() so require-in-the-middle patches it
  // (an ESM `import` would need import-in-the-middle's loader hook on the command line).
  const { OpenAI } = createRequire(import.meta.url)("openai");
  const client = new OpenAI({ baseURL: args.baseURL, apiKey: DOC.api_key, maxRetries: 0, timeout: 30_000 });
  const tracer = trace.getTracer("promptlog.client");
  const results = [];
  for (const name of args.scenarios) {
    // Each scenario in its own trace, under an app span (like the Python clients' `scenario <name>`).
    const t0 = performance.now();
    const attributes = { "promptlog.scenario": name };
    const result = await tracer.startActiveSpan(`scenario ${name}`, { root: true, attributes }, async (span) => {
      try {
        const r = await runOne(client, name);
        if (r.exception) span.setStatus({ code: SpanStatusCode.ERROR, message: r.message });
        return r;
      } finally {
        span.end();
      }
    });
    const res = { scenario: name, ...result, seconds: Math.round(performance.now() - t0) / 1000 };
    results.push(res);
    process.stdout.write(`RESULT ${JSON.stringify(res)}\n`);
  }
  for (const p of [tracerProvider, loggerProvider]) {
    await p.forceFlush();
    await p.shutdown();
  }
  const failed = results.filter((r) => !r.ok).map((r) => r.scenario);
  if (failed.length) process.stderr.write(`otel_openai.mjs: calls not as scenarios.json says: ${failed.join(", ")}\n`);
  process.exit(failed.length ? 1 : 0);
}

main().catch((e) => {
  process.stderr.write(`otel_openai.mjs: ${e?.stack ?? e}\n`);
  process.exit(1);
});
