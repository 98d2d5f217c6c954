#!/usr/bin/env python3
"""LangChain (langchain-openai 1.7.4 through an LCEL chain) + OpenInference's LangChain
instrumentation (openinference-instrumentation-langchain 0.1.80). Run with .venvs/langchain/bin/python.

--mode default  LangChainInstrumentor only: per call a CHAIN span (the RunnableSequence) over an
                LLM span (ChatOpenAI); embeddings are not traced by it (OpenAIEmbeddings has no callbacks)
     | double   LangChainInstrumentor + openinference-instrumentation-openai's OpenAIInstrumentor
                underneath: the same call recorded twice (the LangChain LLM span and the openai
                ChatCompletion span), plus the embeddings call once (by the openai instrumentation)
Chain per chat scenario: ChatPromptTemplate(system, human | history placeholder) | ChatOpenAI
(`.bind_tools(...)` for tool/tool_result); `.invoke()`, or `.stream()` for the stream scenario.
Identity: openinference.instrumentation.using_attributes(session_id, user_id, tags, metadata).
"""
import contextlib
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

MODES = ["default", "double"]
DOC = common.DOC


def chat_model(args, name):
    from langchain_openai import ChatOpenAI
    sc = DOC["scenarios"][name]
    r = sc["request"]
    kw = dict(model=r["model"], base_url=args.openai_base_url, api_key=DOC["api_key"], max_retries=0, timeout=30,
              temperature=r["temperature"], max_tokens=r["max_tokens"], top_p=r["top_p"], seed=r["seed"])
    if r.get("stop") is not None:
        kw["stop"] = r["stop"]
    for k in ("frequency_penalty", "presence_penalty"):
        if r.get(k) is not None:
            kw[k] = r[k]
    if r.get("openai_user"):
        kw["model_kwargs"] = {"user": r["openai_user"]}
    if sc.get("stream"):
        # `.stream()` streams without `streaming=True` (as most LCEL code does); the invocation parameters
        # then say `"stream": false` on the streamed call.
        kw["stream_usage"] = True  # stream_options.include_usage
    llm = ChatOpenAI(**kw)
    tools = r.get("tools")
    if tools is None and r.get("tools_from"):
        tools = DOC["scenarios"][r["tools_from"]]["request"]["tools"]
    if tools:
        llm = llm.bind_tools(tools, tool_choice=r.get("tool_choice", "auto"))
    return llm


def chain_and_input(args, name):
    """An LCEL chain prompt | model and the input it is invoked with."""
    from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
    from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder
    r = DOC["scenarios"][name]["request"]
    if "tool_result" in r:
        # The history goes through a placeholder: the tool result's JSON braces are not template syntax.
        prev = DOC["scenarios"]["tool"]["response"]
        calls = [{"id": tc["id"], "name": tc["name"], "args": json.loads(tc["arguments"]),
                  "type": "tool_call"} for tc in prev["tool_calls"]]
        history = [HumanMessage(content=r["user"]), AIMessage(content="", tool_calls=calls),
                   ToolMessage(content=r["tool_result"]["content"], tool_call_id=r["tool_result"]["tool_call_id"])]
        prompt = ChatPromptTemplate.from_messages([("system", r["system"]), MessagesPlaceholder("history")])
        return prompt | chat_model(args, name), {"history": history}
    prompt = ChatPromptTemplate.from_messages([("system", r["system"]), ("human", "{question}")])
    return prompt | chat_model(args, name), {"question": r["user"]}


def run_one(args, name):
    sc = DOC["scenarios"][name]
    res = {"scenario": name, "ok": False}
    t0 = time.time()
    try:
        if sc["kind"] == "embeddings":
            from langchain_openai import OpenAIEmbeddings
            r = sc["request"]
            # check_embedding_ctx_length=False: no tiktoken (it would download its encodings).
            emb = OpenAIEmbeddings(model=r["model"], dimensions=r["dimensions"], base_url=args.openai_base_url,
                                   api_key=DOC["api_key"], max_retries=0, timeout=30,
                                   check_embedding_ctx_length=False)
            vectors = emb.embed_documents(list(r["input"]))
            res.update(n=len(vectors), dims=len(vectors[0]) if vectors else 0)
            res["ok"] = len(vectors) == len(r["input"]) and all(len(v) == r["dimensions"] for v in vectors)
        else:
            chain, inp = chain_and_input(args, name)
            resp = sc.get("response", {})
            if sc.get("stream"):
                msg = None
                for chunk in chain.stream(inp):
                    msg = chunk if msg is None else msg + chunk
                usage = (msg.usage_metadata or {}) if msg is not None else {}
                res.update(text=msg.content if msg else None, total_tokens=usage.get("total_tokens"),
                           id=(msg.response_metadata or {}).get("id") if msg else None)
                res["ok"] = res["text"] == resp["content"] and res["total_tokens"] == resp["usage"]["total_tokens"]
            else:
                out = chain.invoke(inp)
                md = out.response_metadata or {}
                res.update(id=md.get("id"), finish_reason=md.get("finish_reason"),
                           tool_calls=[tc["name"] for tc in out.tool_calls])
                want_calls = [tc["name"] for tc in resp.get("tool_calls", [])]
                res["ok"] = "error" not in sc and md.get("id") == resp["id"] and res["tool_calls"] == want_calls
    except Exception as e:  # noqa: BLE001 - the error scenario expects one
        res.update(exception=type(e).__name__, message=str(e)[:200])
        if "error" in sc:
            # langchain-openai 1.x raises OpenAIInvalidRequestError, a subclass of openai.BadRequestError.
            mro = [c.__name__ for c in type(e).__mro__]
            res["ok"] = sc["error"]["python_exception"] in mro
            res["mro"] = mro[:3]
    res["seconds"] = round(time.time() - t0, 3)
    return res


def main():
    args = common.parse_args("langchain", MODES, "default")
    common.guard_network()
    # LangSmith's own tracing stays off (it would post to its cloud; the guard would block it anyway).
    for k in ("LANGSMITH_TRACING", "LANGCHAIN_TRACING_V2", "LANGCHAIN_TRACING"):
        os.environ.pop(k, None)

    from openinference.instrumentation import using_attributes
    from openinference.instrumentation.langchain import LangChainInstrumentor
    from opentelemetry import trace

    tp = common.make_tracer_provider(args)
    trace.set_tracer_provider(tp)
    instrumentors = [LangChainInstrumentor()]
    if args.mode == "double":
        from openinference.instrumentation.openai import OpenAIInstrumentor
        instrumentors.append(OpenAIInstrumentor())
    for ins in instrumentors:
        ins.instrument(tracer_provider=tp)
    tracer = tp.get_tracer("promptlog.clients")
    ident = DOC["identity"]

    def ctx(name):
        stack = contextlib.ExitStack()
        stack.enter_context(using_attributes(session_id=ident["session_id"], user_id=ident["user_id"],
                                             tags=list(ident["tags"]), metadata=dict(ident["metadata"])))
        stack.enter_context(common.scenario_span(tracer, name))
        return stack

    results = []
    try:
        for name in args.scenarios:
            with ctx(name):
                res = run_one(args, name)
            print("RESULT " + json.dumps(res, sort_keys=True), flush=True)
            results.append(res)
    finally:
        for ins in instrumentors:
            ins.uninstrument()
        common.shutdown(tp)
    common.finish(results)


if __name__ == "__main__":
    main()
