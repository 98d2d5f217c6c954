"""Analyse promptlog's calls in pandas: load a `promptlog export` file, or query ClickHouse directly.

    python examples/pandas_analysis.py calls.parquet            # or calls.jsonl / calls.csv
    python examples/pandas_analysis.py calls.parquet --clickhouse http://127.0.0.1:8123 --database promptlog

Prints a JSON summary (calls, tokens and cost per model, p95 latency) of the file and, with
--clickhouse, the same summary computed from a query sent over ClickHouse's plain HTTP interface
(no client library needed; every value is a query parameter). Needs pandas, plus pyarrow for Parquet.
Run by tests/it/explore_cli.rs against real exports.
"""

import argparse
import io
import json
import urllib.parse
import urllib.request

import pandas as pd


def load_export(path: str) -> pd.DataFrame:
    """A `promptlog export` file as a DataFrame, one row per call, every llm_calls column."""
    if path.endswith(".parquet"):
        return pd.read_parquet(path)
    if path.endswith(".csv"):
        return pd.read_csv(path, parse_dates=["Timestamp"])
    return pd.read_json(path, lines=True, convert_dates=["Timestamp"])


def query(url: str, sql: str, params: dict, database: str = "promptlog", user: str = "default",
          password: str = "") -> pd.DataFrame:
    """Runs `sql` over ClickHouse's HTTP interface; `{name:Type}` in it is filled from `params`."""
    args = {"database": database, "default_format": "JSONEachRow", "output_format_json_quote_64bit_integers": "0"}
    args.update({f"param_{k}": v for k, v in params.items()})
    request = urllib.request.Request(f"{url.rstrip('/')}/?{urllib.parse.urlencode(args)}", data=sql.encode(),
                                     headers={"X-ClickHouse-User": user, "X-ClickHouse-Key": password})
    with urllib.request.urlopen(request) as reply:
        return pd.read_json(io.BytesIO(reply.read()), lines=True)


def summary(calls: pd.DataFrame) -> dict:
    """Calls, tokens and cost per model, and the p95 latency, of the counted calls."""
    counted = calls[~calls["IsRollup"].astype(bool)] if "IsRollup" in calls else calls
    per_model = counted.groupby("RequestModel").agg(
        calls=("SpanId", "count"), input_tokens=("InputTokens", "sum"), cost_usd=("CostUsd", "sum"))
    return {
        "calls": int(len(counted)),
        "input_tokens": int(counted["InputTokens"].sum()),
        "p95_latency_ms": float(counted["Duration"].quantile(0.95) / 1e6) if len(counted) else 0.0,
        "per_model": {m: {"calls": int(r.calls), "input_tokens": int(r.input_tokens), "cost_usd": round(float(r.cost_usd), 9)}
                      for m, r in per_model.iterrows()},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("export", help="a file written by `promptlog export` (.parquet, .jsonl or .csv)")
    ap.add_argument("--clickhouse", help="ClickHouse HTTP URL, to compute the same summary from a query")
    ap.add_argument("--database", default="promptlog")
    ap.add_argument("--service", help="only this service's calls (in the query)")
    args = ap.parse_args()
    out = {"export": summary(load_export(args.export))}
    if args.clickhouse:
        sql = ("SELECT SpanId, RequestModel, InputTokens, CostUsd, Duration, IsRollup FROM llm_calls "
               "WHERE NOT IsRollup AND ({service:String} = '' OR ServiceName = {service:String})")
        out["clickhouse"] = summary(query(args.clickhouse, sql, {"service": args.service or ""}, args.database))
    print(json.dumps(out, sort_keys=True))


if __name__ == "__main__":
    main()
