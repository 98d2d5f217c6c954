"""Shared code of the non-OpenAI real clients (anthropic_client.py, google_genai_client.py).

Same contract as common.py (which this reuses for the offline guard, exporters, providers and
shutdown): a scenario file is the single source of truth, one `RESULT {...}` line per call on
stdout, exit 0 when every call behaved as the scenario file says.

    <venv>/bin/python tests/clients/<client> --otlp-endpoint http://127.0.0.1:4318 --protocol http|grpc \
        --base-url http://127.0.0.1:PORT --scenario plain|...|<comma list>|all --mode M [--service-name S]
"""
import argparse
import contextlib
import json
import os

import common  # noqa: F401  (also aliases httpx -> httpx2 before any instrumentation imports httpx)
from common import guard_network, make_logger_provider, make_tracer_provider, shutdown  # noqa: F401

HERE = os.path.dirname(os.path.abspath(__file__))


def load(name):
    with open(os.path.join(HERE, name), encoding="utf-8") as f:
        return json.load(f)


def parse_args(instrumentation, doc, modes):
    ap = argparse.ArgumentParser(description="promptlog real client: %s" % instrumentation)
    ap.add_argument("--otlp-endpoint", required=True)
    ap.add_argument("--protocol", choices=["http", "grpc"], default="http")
    ap.add_argument("--base-url", required=True, help="the fake provider, e.g. http://127.0.0.1:PORT")
    ap.add_argument("--scenario", default="all")
    ap.add_argument("--mode", choices=modes, default=modes[0])
    ap.add_argument("--service-name", default=None)
    args = ap.parse_args()
    args.instrumentation = "%s-%s" % (instrumentation, args.mode)
    if args.service_name is None:
        args.service_name = "client-" + args.instrumentation
    if args.scenario == "all":
        args.scenarios = list(doc["run_order"])
    else:
        args.scenarios = [s.strip() for s in args.scenario.split(",") if s.strip()]
        bad = [s for s in args.scenarios if s not in doc["scenarios"]]
        if bad:
            ap.error("unknown scenario(s) %s; known: %s, all" % (bad, ",".join(doc["run_order"])))
    args.otlp_endpoint = args.otlp_endpoint.rstrip("/")
    return args


def run_scenarios(args, tracer, run_one):
    """Runs every scenario in its own trace under an app span `scenario <name>`; prints RESULT lines."""
    results = []
    for name in args.scenarios:
        with tracer.start_as_current_span("scenario %s" % name, attributes={"promptlog.scenario": name}):
            res = run_one(name)
        print("RESULT " + json.dumps(res, sort_keys=True), flush=True)
        results.append(res)
    return results


@contextlib.contextmanager
def env(**values):
    """Sets environment variables for the duration (instrumentations read some at import or instrument time)."""
    old = {k: os.environ.get(k) for k in values}
    os.environ.update({k: v for k, v in values.items()})
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
