#!/usr/bin/env node
// promptlog real client: the Vercel AI SDK v6 (`ai`, telemetry built in via `experimental_telemetry`)
// with `@ai-sdk/openai-compatible` against tests/clients/fake_openai.py, exporting OTLP traces over
// HTTP/protobuf or gRPC. Same CLI contract as the Python clients (tests/clients/README.md):
//
//   node tests/clients/node/vercel_ai.mjs --otlp-endpoint http://127.0.0.1:4318 --protocol http|grpc \
//       --openai-base-url http://127.0.0.1:PORT/v1 --scenario all|plain|stream|tool|tool_result|error|embed|<list> \
//       [--service-name S]
//
// One `RESULT {...}` line per call on stdout; exit 0 only when every call behaved as scenarios.json
// says (the error scenario must throw an APICallError with the configured status). The tracer
// provider is force-flushed and shut down before exiting. Nothing but loopback is reachable
// (guard_network.mjs).
import "./guard_network.mjs";

import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

import { createOpenAICompatible } from "@ai-sdk/openai-compatible";
import { SpanStatusCode, trace } from "@opentelemetry/api";
import { OTLPTraceExporter as GrpcExporter } from "@opentelemetry/exporter-trace-otlp-grpc";
import { OTLPTraceExporter as HttpExporter } from "@opentelemetry/exporter-trace-otlp-proto";
import { defaultResource, resourceFromAttributes } from "@opentelemetry/resources";
import { BatchSpanProcessor, NodeTracerProvider } from "@opentelemetry/sdk-trace-node";
import { APICallError, embedMany, generateText, jsonSchema, streamText, tool } from "ai";

const INSTRUMENTATION = "vercel-ai";
const HERE = dirname(fileURLToPath(import.meta.url));
const DOC = JSON.parse(readFileSync(join(HERE, "..", "scenarios.json"), "utf8"));

// ------------------------------------------------------------------------------------------ CLI
function usage(msg) {
  process.stderr.write(
    `${msg ? `vercel_ai.mjs: ${msg}\n` : ""}usage: vercel_ai.mjs --otlp-endpoint URL [--protocol http|grpc] ` +
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
    values.scenario === "all"
      ? [...DOC.run_order]
      : values.scenario.split(",").map((s) => s.trim()).filter(Boolean);
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
function makeProvider(args) {
  const exporter =
    args.protocol === "grpc"
      ? new GrpcExporter({ url: args.endpoint }) // http:// → insecure channel
      : new HttpExporter({ url: `${args.endpoint}/v1/traces` });
  const provider = new NodeTracerProvider({
    // telemetry.sdk.* (defaultResource) + ours; no host/process detectors.
    resource: defaultResource().merge(
      resourceFromAttributes({
        "service.name": args.serviceName,
        "deployment.environment.name": "test",
        "promptlog.client": INSTRUMENTATION,
      }),
    ),
    spanProcessors: [new BatchSpanProcessor(exporter)],
  });
  provider.register(); // global tracer provider + AsyncLocalStorage context manager; `ai` uses the global tracer
  return provider;
}

function telemetry(name) {
  const id = DOC.identity;
  return {
    isEnabled: true,
    functionId: `promptlog-${name}`,
    metadata: {
      sessionId: id.session_id,
      userId: id.user_id,
      tags: id.tags,
      ...id.metadata,
    },
  };
}

// ------------------------------------------------------------------------------------ scenarios
function chatSettings(req) {
  const s = {
    temperature: req.temperature,
    maxOutputTokens: req.max_tokens,
    topP: req.top_p,
    seed: req.seed,
    maxRetries: 0,
  };
  if (req.stop) s.stopSequences = req.stop;
  if (req.frequency_penalty != null) s.frequencyPenalty = req.frequency_penalty;
  if (req.presence_penalty != null) s.presencePenalty = req.presence_penalty;
  if (req.openai_user) s.providerOptions = { openai: { user: req.openai_user } };
  return s;
}

function toolsOf(req) {
  const defs = req.tools ?? DOC.scenarios[req.tools_from].request.tools;
  return Object.fromEntries(
    defs.map((t) => [
      t.function.name,
      // No `execute`: the model's tool call is returned to the caller (one step, like the Python clients).
      tool({ description: t.function.description, inputSchema: jsonSchema(t.function.parameters) }),
    ]),
  );
}

function toolResultMessages(req, toolSc) {
  const [call] = toolSc.response.tool_calls;
  const result = req.tool_result;
  return [
    { role: "user", content: req.user },
    {
      role: "assistant",
      content: [{ type: "tool-call", toolCallId: call.id, toolName: call.name, input: JSON.parse(call.arguments) }],
    },
    {
      role: "tool",
      content: [
        {
          type: "tool-result",
          toolCallId: result.tool_call_id,
          toolName: call.name,
          output: { type: "text", value: result.content },
        },
      ],
    },
  ];
}

const eq = (a, b) => JSON.stringify(a) === JSON.stringify(b);
const usageOf = (u) => ({
  input: u.inputTokens,
  output: u.outputTokens,
  total: u.totalTokens,
  cached: u.inputTokenDetails?.cacheReadTokens,
  reasoning: u.outputTokenDetails?.reasoningTokens,
});

async function runChat(name, sc, model, tel) {
  const req = sc.request;
  const opts = { model, system: req.system, ...chatSettings(req), experimental_telemetry: tel };
  if (name === "tool_result") opts.messages = toolResultMessages(req, DOC.scenarios[req.tools_from]);
  else opts.prompt = req.user;
  if (req.tools || req.tools_from) {
    opts.tools = toolsOf(req);
    opts.toolChoice = req.tool_choice;
  }
  const resp = sc.response;
  if (sc.stream) {
    let streamError;
    const result = streamText({ ...opts, onError: ({ error }) => (streamError ??= error) });
    let text = "";
    for await (const piece of result.textStream) text += piece;
    if (streamError) throw streamError;
    const [response, usage, finishReason] = await Promise.all([result.response, result.usage, result.finishReason]);
    const ok = text === resp.content && response.id === resp.id && usage.inputTokens === resp.usage.prompt_tokens &&
      usage.outputTokens === resp.usage.completion_tokens && finishReason === "stop";
    return { ok, id: response.id, model: response.modelId, text, usage: usageOf(usage), finish_reason: finishReason };
  }
  const r = await generateText(opts);
  let ok = r.response.id === resp.id && r.usage.inputTokens === resp.usage.prompt_tokens &&
    r.usage.outputTokens === resp.usage.completion_tokens;
  if (resp.tool_calls) {
    const want = resp.tool_calls.map((c) => ({ id: c.id, name: c.name, input: JSON.parse(c.arguments) }));
    const got = r.toolCalls.map((c) => ({ id: c.toolCallId, name: c.toolName, input: c.input }));
    ok &&= eq(got, want) && r.finishReason === "tool-calls";
  } else {
    ok &&= r.text === resp.content && r.finishReason === "stop";
  }
  return {
    ok,
    id: r.response.id,
    model: r.response.modelId,
    text: r.text,
    tool_calls: r.toolCalls.map((c) => c.toolName),
    usage: usageOf(r.usage),
    finish_reason: r.finishReason,
  };
}

async function runEmbed(sc, provider, tel) {
  const req = sc.request;
  const r = await embedMany({
    model: provider.embeddingModel(req.model),
    values: req.input,
    providerOptions: { openai: { dimensions: req.dimensions } },
    maxRetries: 0,
    experimental_telemetry: tel,
  });
  const ok = r.embeddings.length === req.input.length && r.embeddings.every((e) => e.length === req.dimensions) &&
    r.usage.tokens === sc.response.usage.prompt_tokens;
  return { ok, n: r.embeddings.length, dims: r.embeddings[0]?.length, usage: { input: r.usage.tokens } };
}

async function runScenario(name, provider) {
  const sc = DOC.scenarios[name];
  const tel = telemetry(name);
  if (sc.kind === "embeddings") return runEmbed(sc, provider, tel);
  const model = provider.chatModel(sc.request.model);
  if (!sc.error) return runChat(name, sc, model, tel);
  try {
    const r = await runChat(name, sc, model, tel);
    return { ok: false, unexpected: "no exception", id: r.id };
  } catch (e) {
    const ok = APICallError.isInstance(e) && e.statusCode === sc.error.status && String(e.message).includes(sc.error.message);
    return { ok, exception: e?.name ?? String(e), status: e?.statusCode, message: String(e?.message ?? e).slice(0, 200) };
  }
}

// ------------------------------------------------------------------------------------------ main
async function main() {
  const args = cli();
  const tracerProvider = makeProvider(args);
  const tracer = trace.getTracer("promptlog.client");
  const provider = createOpenAICompatible({
    name: "openai",
    baseURL: args.baseURL,
    apiKey: DOC.api_key,
    includeUsage: true, // stream_options.include_usage, as OpenAI needs for streamed usage
  });
  const results = [];
  for (const name of args.scenarios) {
    // Each scenario in its own trace, under an app span (like the Python clients' `scenario <name>`).
    const t0 = performance.now();
    const attributes = { "promptlog.scenario": name };
    const result = await tracer.startActiveSpan(`scenario ${name}`, { root: true, attributes }, async (span) => {
      try {
        return await runScenario(name, provider);
      } catch (e) {
        span.setStatus({ code: SpanStatusCode.ERROR, message: String(e?.message ?? e) });
        return { ok: false, exception: e?.name ?? String(e), message: String(e?.message ?? e).slice(0, 200) };
      } finally {
        span.end();
      }
    });
    const res = { scenario: name, ...result, seconds: Math.round(performance.now() - t0) / 1000 };
    results.push(res);
    process.stdout.write(`RESULT ${JSON.stringify(res)}\n`);
  }
  await tracerProvider.forceFlush();
  await tracerProvider.shutdown();
  const failed = results.filter((r) => !r.ok).map((r) => r.scenario);
  if (failed.length) process.stderr.write(`vercel_ai.mjs: calls not as scenarios.json says: ${failed.join(", ")}\n`);
  process.exit(failed.length ? 1 : 0);
}

main().catch((e) => {
  process.stderr.write(`vercel_ai.mjs: ${e?.stack ?? e}\n`);
  process.exit(1);
});
