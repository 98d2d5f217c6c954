#!/usr/bin/env python3
"""Rollup benchmark: every aggregating panel of the Overview dashboard, on raw llm_calls rows vs on the
llm_calls_1m rollup (the SQL the dashboard runs), against the chDB test server.

    .venv/bin/python scripts/bench-rollups.py [--rows 3000000] [--runs 3] [--hours 6] [--users 500]
                                              [--correlated] [--table llm_calls_1m|llm_calls_1h]

Starts tests/chdb_server/server.py on a fresh data directory, applies the collector's migrations (rendered
as src/storage/clickhouse/schema.rs does, 30-day TTL), inserts --rows synthetic calls spread over the last
--hours (so the dashboard's default 6 h range covers them all; the materialized views fill the rollups
on insert), then runs each panel's rollup query and its raw equivalent (the same query with the rollup
vocabulary mapped back to raw columns: sum(Calls) -> count(), quantilesMerge -> quantiles, ...) --runs
times each and prints the median wall time. Figures are printed, never asserted.

By default every dimension is drawn independently (each call's service, model, prompt and user at random:
nearly every call is its own rollup key per minute, the worst case for a minute rollup keyed by user).
--correlated ties them as applications do: a user stays on one service and environment, a prompt version
on one model. --table times the hour rollup instead (time series at a 1 h step)."""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MIGRATIONS = os.path.join(ROOT, "src/storage/clickhouse/migrations")

# Rollup vocabulary -> raw llm_calls equivalent (the panels are written in this vocabulary only).
RAW = [
    ("FROM $rollup", "FROM llm_calls"),
    ("sum(Calls)", "count()"),
    ("sum(Errors)", "countIf(StatusCode = 'Error')"),
    ("quantilesMerge(0.5, 0.95, 0.99)(Duration)", "quantiles(0.5, 0.95, 0.99)(Duration)"),
    ("quantilesIfMerge(0.5, 0.95, 0.99)(TimeToFirstToken)", "quantiles(0.5, 0.95, 0.99)(TimeToFirstToken)"),
    ("TtftCalls > 0", "TimeToFirstToken IS NOT NULL"),
    ("max(LastSeen)", "max(Timestamp)"),
    ("toStartOfInterval(Timestamp,", "toStartOfInterval(toDateTime(Timestamp),"),
]


def sql(url, query, settings=""):
    req = urllib.request.Request(f"{url}/?{settings}", data=query.encode(), method="POST")
    with urllib.request.urlopen(req, timeout=3600) as r:
        return r.read().decode()


def statements(text):
    out, cur = [], []
    for line in text.splitlines():
        code = line.rstrip()
        if code.endswith(";") and not code.lstrip().startswith("--"):
            cur.append(code[:-1])
            out.append("\n".join(cur))
            cur = []
        else:
            cur.append(line)
    out.append("\n".join(cur))
    return [s for s in out if any(ln.strip() and not ln.strip().startswith("--") for ln in s.splitlines())]


def migrate(url, db):
    sql(url, f"CREATE DATABASE IF NOT EXISTS `{db}`")
    for name in sorted(os.listdir(MIGRATIONS)):
        text = open(os.path.join(MIGRATIONS, name)).read()
        text = (text.replace("{db}", f"`{db}`").replace("{table_settings}", "")
                .replace("{ttl_start}", "TTL toDateTime(Start) + toIntervalDay(30)")
                .replace("{ttl}", "TTL toDateTime(Timestamp) + toIntervalDay(30)"))
        for s in statements(text):
            sql(url, s)


def load(url, db, rows, hours, users, correlated):
    span = hours * 3600
    u = f"rand(9) % {users}"
    svc, model = ("number % 8", "number % 6") if not correlated else (f"({u}) % 8", "(number % 4) + (number % 4) % 2")
    # 8 services x 2 environments x 6 models x 500 users x 4 prompt versions; 3 % errors; 1 in 10
    # streamed (TTFT); 1 in 50 an agent roll-up (excluded everywhere).
    sql(url, f"""INSERT INTO `{db}`.llm_calls (ProjectId, Timestamp, Duration, TraceId, SpanId, ServiceName, Environment,
        Operation, Provider, RequestModel, ResponseModel, InputTokens, OutputTokens, TotalTokens, CostUsd, IsRollup,
        StatusCode, UserId, TimeToFirstToken, FinishReasons, PromptName, PromptVersion, InputText)
      SELECT 'default', now64(9) - toIntervalMillisecond(rand(1) % {span * 1000}), 200000000 + rand(2) % 4000000000,
        hex(rand64(3)), hex(rand64(4)), concat('svc-', toString({svc})), if(({svc}) % 3 = 0, 'staging', 'prod'),
        if(number % 50 = 0, 'invoke_agent', 'chat'), if({model} < 3, 'openai', 'anthropic'),
        ['gpt-4o', 'gpt-4o-mini', 'o3', 'claude-sonnet-4', 'claude-haiku-4', 'claude-opus-4'][{model} + 1],
        '', 100 + rand(5) % 2000, 20 + rand(6) % 800, 0, (rand(7) % 1000) / 1e6, number % 50 = 0,
        if(rand(8) % 100 < 3, 'Error', 'Ok'), concat('user-', toString({u})),
        if(number % 10 = 0, (rand(10) % 3000) / 1000, NULL), ['stop'],
        ['', 'support-answer', 'summarise', 'triage'][number % 4 + 1], toString(if({int(correlated)}, 1, number % 3 + 1)),
        concat('prompt text ', toString(number))
      FROM numbers({rows})""", "max_insert_block_size=1000000")
    for t in ("llm_calls_1m", "llm_calls_1h"):
        sql(url, f"OPTIMIZE TABLE `{db}`.{t} FINAL")


def render(q, db, from_s, to_s, interval_s, step):
    q = re.sub(r"\$__conditionalAll\((?:[^()]|\([^()]*\))*\)", "1=1", q)
    q = re.sub(r"\$__timeFilter\(([^)]*)\)", rf"\1 >= toDateTime({from_s}) AND \1 <= toDateTime({to_s})", q)
    q = q.replace("$__interval_s", str(interval_s)).replace("$rollup_s", str(step))
    return q


def timed(url, db, q, runs):
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        sql(url, q, f"database={db}")
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=3_000_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--hours", type=int, default=6)
    ap.add_argument("--users", type=int, default=500)
    ap.add_argument("--correlated", action="store_true")
    ap.add_argument("--table", default="llm_calls_1m", choices=["llm_calls_1m", "llm_calls_1h"])
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="bench-rollups-")
    server = subprocess.Popen([sys.executable, os.path.join(ROOT, "tests/chdb_server/server.py"), "--port", "0",
                               "--data-dir", os.path.join(tmp, "chdb"), "--parent-pid", str(os.getpid())],
                              stdout=subprocess.PIPE, text=True)
    try:
        url = server.stdout.readline().strip().removeprefix("READY ")
        db = "promptlog"
        migrate(url, db)
        t = time.perf_counter()
        load(url, db, args.rows, args.hours, args.users, args.correlated)
        tables = ("llm_calls", "llm_calls_1m", "llm_calls_1h")
        counts = {tb: int(sql(url, f"SELECT count() FROM `{db}`.{tb}")) for tb in tables}
        print(f"loaded {args.rows:,} calls over {args.hours} h ({args.users} users, "
              f"{'correlated' if args.correlated else 'independent'} keys) in {time.perf_counter() - t:.1f} s; rows: "
              + ", ".join(f"{tb} {n:,}" for tb, n in counts.items()) + f"; timing {args.table}")
        step = 60 if args.table == "llm_calls_1m" else 3600
        dash = json.load(open(os.path.join(ROOT, "grafana/dashboards/overview.json")))
        now = int(time.time())
        print(f"\n{'panel':45} {'raw ms':>9} {'rollup ms':>10} {'speed-up':>9}")
        for p in dash["panels"]:
            if p["type"] == "row":
                continue
            q = p["targets"][0]["rawSql"]
            if "FROM $rollup" not in q:
                continue
            rolled = render(q, db, now - 6 * 3600, now, 20, step).replace("$rollup", args.table)
            raw = q
            for a, b in RAW:
                raw = raw.replace(a, b)
            raw = render(raw, db, now - 6 * 3600, now, 20, step).replace("WHERE ", "WHERE NOT IsRollup AND ", 1)
            r, u = timed(url, db, raw, args.runs), timed(url, db, rolled, args.runs)
            print(f"{p['title'][:45]:45} {r:9.1f} {u:10.1f} {r / u:8.1f}x")
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
