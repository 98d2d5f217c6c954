#!/usr/bin/env python3
"""Self-test of the chDB ClickHouse-HTTP server: starts it as a subprocess on a free port
and talks to it the way clickhouse-rs 0.15 and curl do. Last line: `N passed, N failed`."""
import gzip
import http.client
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import uuid
from urllib.parse import urlencode

import lz4.frame
import zstandard

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import chwire  # noqa: E402

SERVER = os.path.join(HERE, "server.py")
RESULTS = {"passed": 0, "failed": 0}


class Server:
    def __init__(self, data_dir, parent_pid=None, config_file=None, env=None, account=None):
        cmd = [sys.executable, SERVER, "--host", "127.0.0.1", "--port", "0", "--data-dir", data_dir]
        if config_file:
            cmd += ["--config-file", config_file]
        if account:
            cmd += ["--users-xml", account[0], "--as-user", account[1]]
        if parent_pid:
            cmd += ["--parent-pid", str(parent_pid)]
        if os.environ.get("CHDB_SERVER_VERBOSE"):
            cmd.append("--verbose")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=None, text=True,
                                     env=None if env is None else {**os.environ, **env})
        box = []
        reader = threading.Thread(target=lambda: box.append(self.proc.stdout.readline()), daemon=True)
        reader.start()
        reader.join(60)
        line = box[0] if box else ""
        m = re.fullmatch(r"READY http://127\.0\.0\.1:(\d+)\n", line)
        if not m:
            self.proc.kill()
            raise RuntimeError(f"server did not print READY: {line!r}")
        self.port = int(m.group(1))
        self.conn = None

    def request(self, method="POST", path="/", params=None, body=b"", headers=None, chunked=False):
        url = path + ("?" + urlencode(params) if params else "")
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            try:
                if chunked:
                    self.conn.putrequest(method, url)
                    for k, v in (headers or {}).items():
                        self.conn.putheader(k, v)
                    self.conn.putheader("Transfer-Encoding", "chunked")
                    self.conn.endheaders()
                    for i in range(0, len(body), 1000):
                        part = body[i:i + 1000]
                        self.conn.send(b"%x\r\n%s\r\n" % (len(part), part))
                    self.conn.send(b"0\r\n\r\n")
                else:
                    self.conn.request(method, url, body=body, headers=headers or {})
                r = self.conn.getresponse()
                return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.conn.close()
                self.conn = None
                if attempt:
                    raise

    def q(self, sql, params=None, **kw):
        """POST the SQL in the body; returns body bytes, asserting HTTP 200."""
        status, headers, body = self.request(params=params, body=sql.encode(), **kw)
        assert status == 200, f"{status}: {body[:500]!r}"
        return body

    def stop(self, sig=signal.SIGTERM):
        if self.conn:
            self.conn.close()
        self.proc.send_signal(sig)
        return self.proc.wait(30)


def check(name, fn):
    try:
        fn()
        RESULTS["passed"] += 1
        print(f"ok   {name}", flush=True)
    except Exception:
        RESULTS["failed"] += 1
        print(f"FAIL {name}\n{traceback.format_exc()}", flush=True)


def eq(a, b):
    assert a == b, f"{a!r} != {b!r}"


# --- RowBinary encoding for the test schema ----------------------------------------------

def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def rb_str(s):
    b = s.encode() if isinstance(s, str) else s
    return varint(len(b)) + b


COLUMNS = [("ts", "DateTime64(9)"), ("svc", "LowCardinality(String)"),
           ("attrs", "Map(LowCardinality(String), String)"), ("stamps", "Array(DateTime64(9))"),
           ("cost", "Nullable(Float64)"), ("n", "UInt64"),
           ("Events.Timestamp", "Array(DateTime64(9))"), ("Events.Name", "Array(LowCardinality(String))")]
COLS_SQL = ", ".join(f"`{c}`" for c, _ in COLUMNS)
TS0 = 1_700_000_000_123_456_789  # ns


def encode_row(i):
    attrs = {"k": f"v{i}", "ключ": "значение\t\n"}
    out = struct.pack("<q", TS0 + i) + rb_str(f"svc{i % 2}")
    out += varint(len(attrs)) + b"".join(rb_str(k) + rb_str(v) for k, v in attrs.items())
    out += varint(2) + struct.pack("<qq", TS0, TS0 + 999_999_999)
    out += b"\x01" if i % 3 == 0 else b"\x00" + struct.pack("<d", i * 0.25)
    out += struct.pack("<Q", 2**64 - 1 - i)
    out += varint(1) + struct.pack("<q", TS0 + 7) + varint(1) + rb_str(f"event{i}")
    return out


def rbwnat_header(cols):
    return varint(len(cols)) + b"".join(rb_str(c) for c, _ in cols) + b"".join(rb_str(t) for _, t in cols)


def parse_rbwnat_header(buf):
    pos = 0

    def read_varint():
        nonlocal pos
        shift = val = 0
        while True:
            b = buf[pos]
            pos += 1
            val |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return val

    def read_str():
        nonlocal pos
        n = read_varint()
        s = buf[pos:pos + n].decode()
        pos += n
        return s

    n = read_varint()
    names = [read_str() for _ in range(n)]
    types = [read_str() for _ in range(n)]
    return list(zip(names, types)), pos


def count(srv, table, where=""):
    return int(srv.q(f"SELECT count() FROM {table} {where}").strip())


# --- tests ------------------------------------------------------------------------------

def run_all(srv, data_dir):
    def ping():
        for path in ("/ping", "/"):
            status, _, body = srv.request("GET", path)
            eq((status, body), (200, b"Ok.\n"))
    check("ping", ping)

    def select_url_and_body():
        eq(srv.request("GET", "/", {"query": "SELECT 1 + 1"})[2], b"2\n")
        eq(srv.q("SELECT 'a\tb', 3"), b"a\\tb\t3\n")  # TabSeparated is the HTTP default
        status, h, body = srv.request(params={"query": "SELECT 1 AS a,"}, body=b"2 AS b FORMAT TSVWithNames")
        eq((status, body, h["x-clickhouse-format"]), (200, b"a\tb\n1\t2\n", "TSVWithNames"))
        eq(srv.q("SELECT 1;"), b"1\n")
    check("SELECT in URL, in body, URL+body concatenation", select_url_and_body)

    def default_format():
        status, h, body = srv.request(params={"default_format": "JSONEachRow"}, body=b"SELECT 1 AS x")
        eq((body, h["x-clickhouse-format"]), (b'{"x":1}\n', "JSONEachRow"))
        status, h, body = srv.request(params={"default_format": "JSONEachRow"}, body=b"SELECT 1 AS x FORMAT CSV")
        eq((body, h["x-clickhouse-format"]), (b"1\n", "CSV"))
        status, h, _ = srv.request(body=b"SELECT 1")
        eq(h["x-clickhouse-format"], "TabSeparated")
        assert h["x-clickhouse-query-id"] and json.loads(h["x-clickhouse-summary"])["read_rows"] == "1"
        eq(srv.request(params={"query_id": "my-q"}, body=b"SELECT 1")[1]["x-clickhouse-query-id"], "my-q")
    check("default_format, FORMAT clause, X-ClickHouse-* headers", default_format)

    def params():
        p = {"param_s": "it's\\ta", "param_arr": "['x','y''z']", "param_d": "2024-01-02 03:04:05.123456789",
             "param_n": "42"}
        eq(srv.q("SELECT {s:String}, {arr:Array(String)}, toString({d:DateTime64(9)}), {n:UInt64} + 1",
                 p, headers={}), b"it\\'s\\ta\t['x','y\\'z']\t2024-01-02 03:04:05.123456789\t43\n")
        # clickhouse-rs 0.15.3 sends query + param_* as multipart/form-data
        boundary = "clickhouse-rs-boundary-abc"
        fields = [("query", "SELECT {a:String} || '!', {b:Int32} * 2"), ("param_a", "hi"), ("param_b", "-21")]
        mp = "".join(f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n' for k, v in fields)
        status, _, body = srv.request(body=(mp + f"--{boundary}--\r\n").encode(), headers={
            "Content-Type": f"multipart/form-data; boundary={boundary}"})
        eq((status, body), (200, b"hi!\t-42\n"))
        status, h, body = srv.request(params={"param_n": "x"}, body=b"SELECT {n:UInt8}")
        eq((status, h["x-clickhouse-exception-code"]), (500, "457"))
    check("param_ substitution (URL and multipart)", params)

    def settings():
        eq(srv.q("SELECT getSetting('max_threads'), getSetting('date_time_input_format')",
                 {"max_threads": "3", "date_time_input_format": "best_effort", "wait_end_of_query": "1",
                  "session_id": "s1", "user": "default", "password": "", "max_execution_time": "30"}),
           b"3\tbest_effort\n")
        assert srv.q("SELECT getSetting('max_threads')") != b"3\n", "settings leaked into the next query"
        status, h, body = srv.request(params={"no_such_setting": "1"}, body=b"SELECT 1")
        eq((status, h["x-clickhouse-exception-code"]), (404, "115"))
        assert b"(UNKNOWN_SETTING)" in body, body
        eq(srv.q("SELECT 1 SETTINGS max_threads = 1"), b"1\n")
        srv.q("SET max_threads = 5, max_block_size = 77")  # sessionless SET lasts one query
        srv.q("USE system")
        eq(srv.request(body=b"SET max_threads = 6, nope_setting = 1")[0], 404)
        eq(srv.q("SELECT getSetting('max_threads') NOT IN (5, 6), getSetting('max_block_size') != 77, currentDatabase()"),
           b"1\t1\tdefault\n")
        status, h, _ = srv.request(params={"max_threads=1; DROP DATABASE pl; SELECT 1": "x"}, body=b"SELECT 1")
        eq((status, h["x-clickhouse-exception-code"]), (404, "115"))
        eq(srv.q("SELECT toUInt64(18446744073709551615) AS x FORMAT JSONEachRow",
                 {"output_format_json_quote_64bit_integers": "1"}), b'{"x":"18446744073709551615"}\n')
    check("settings pass-through and reset", settings)

    def ddl():
        srv.q("CREATE DATABASE IF NOT EXISTS pl")
        srv.q("""CREATE TABLE pl.spans (
                ts DateTime64(9), svc LowCardinality(String), attrs Map(LowCardinality(String), String),
                stamps Array(DateTime64(9)), cost Nullable(Float64), n UInt64,
                Events Nested(Timestamp DateTime64(9), Name LowCardinality(String)),
                note String DEFAULT concat('n=', toString(n)))
            ENGINE = MergeTree ORDER BY (svc, ts) SETTINGS non_replicated_deduplication_window = 1000""")
        srv.q("""CREATE MATERIALIZED VIEW pl.per_svc ENGINE = SummingMergeTree ORDER BY svc
                 AS SELECT svc, count() AS c FROM pl.spans GROUP BY svc""")
        desc = srv.q("DESCRIBE TABLE spans", {"database": "pl", "describe_include_subcolumns": "0"}).decode()
        got = [tuple(line.split("\t")[:2]) for line in desc.splitlines()]
        eq(got, COLUMNS + [("note", "String")])
        eq(srv.q("EXISTS TABLE pl.per_svc"), b"1\n")
    check("CREATE DATABASE / TABLE (Map, Array, Nested, DateTime64(9), LowCardinality, Nullable) / MV", ddl)

    def describe_like_crate():
        status, h, body = srv.request(params={"default_format": "RowBinaryWithNamesAndTypes", "database": "pl",
                                              "describe_include_subcolumns": "0"},
                                      body=b"DESCRIBE TABLE `spans`", headers={"Accept-Encoding": "lz4"})
        eq((status, h.get("content-encoding")), (200, "lz4"))
        raw = lz4.frame.decompress(body)
        cols, _ = parse_rbwnat_header(raw)
        eq([c for c, _ in cols], ["name", "type", "default_type", "default_expression", "comment",
                                  "codec_expression", "ttl_expression"])
        assert b"Map(LowCardinality(String), String)" in raw
    check("DESCRIBE in RowBinaryWithNamesAndTypes with Accept-Encoding: lz4 (clickhouse-rs schema fetch)",
          describe_like_crate)

    rows = [encode_row(i) for i in range(5)]

    def insert_rowbinary_lz4():
        body = chwire.frame_block(b"".join(rows[:2]))
        status, h, resp = srv.request(params={"database": "pl", "decompress": "1",
                                              "query": f"INSERT INTO `spans`({COLS_SQL}) FORMAT RowBinary"}, body=body)
        eq((status, resp), (200, b""))
        # like ClickHouse, written_rows also counts the rows the materialized view wrote
        assert int(json.loads(h["x-clickhouse-summary"])["written_rows"]) >= 2, h["x-clickhouse-summary"]
        eq(count(srv, "pl.spans"), 2)
    check("INSERT RowBinary, decompress=1, LZ4 block framing", insert_rowbinary_lz4)

    def insert_rbwnat_chunked_multiframe():
        data = rbwnat_header(COLUMNS) + b"".join(rows[2:4])
        body = chwire.frame_block(data[:100]) + chwire.frame_block(data[100:])
        status, _, resp = srv.request(params={"database": "pl", "decompress": "1",
                                              "query": f"INSERT INTO `spans`({COLS_SQL}) FORMAT RowBinaryWithNamesAndTypes"},
                                      body=body, chunked=True, headers={"X-ClickHouse-User": "default",
                                                                        "X-ClickHouse-Key": "x"})
        eq((status, resp), (200, b""))
        eq(count(srv, "pl.spans"), 4)
    check("INSERT RowBinaryWithNamesAndTypes, chunked body, two LZ4 frames (clickhouse-rs insert)",
          insert_rbwnat_chunked_multiframe)

    def insert_zstd():
        # query in the body is compressed together with the data
        full = f"INSERT INTO pl.spans ({COLS_SQL}) FORMAT RowBinary\n".encode() + rows[4]
        status, _, resp = srv.request(params={"decompress": "1"},
                                      body=chwire.frame_block(full, chwire.METHOD_ZSTD))
        eq((status, resp), (200, b""))
        eq(count(srv, "pl.spans"), 5)
    check("INSERT with ZSTD block framing (query and data in the compressed body)", insert_zstd)

    def roundtrip():
        q = f"SELECT {COLS_SQL} FROM pl.spans ORDER BY ts FORMAT RowBinary"
        eq(srv.q(q), b"".join(rows))
        out = srv.q(f"SELECT {COLS_SQL} FROM pl.spans ORDER BY ts",
                    {"default_format": "RowBinaryWithNamesAndTypes"})
        cols, pos = parse_rbwnat_header(out)
        eq(cols, COLUMNS)
        eq(out[pos:], b"".join(rows))
        eq(srv.q("SELECT note FROM pl.spans ORDER BY ts LIMIT 1"), b"n=18446744073709551615\n")
        eq(srv.q("SELECT svc, sum(c) FROM pl.per_svc GROUP BY svc ORDER BY svc"), b"svc0\t3\nsvc1\t2\n")
    check("exact round-trip of every type (RowBinary and RowBinaryWithNamesAndTypes), defaults, MV", roundtrip)

    def bad_checksum():
        frame = bytearray(chwire.frame_block(rows[0]))
        frame[-1] ^= 0x40
        status, h, body = srv.request(params={"decompress": "1",
                                              "query": f"INSERT INTO pl.spans ({COLS_SQL}) FORMAT RowBinary"},
                                      body=bytes(frame))
        eq((status, h["x-clickhouse-exception-code"]), (500, "40"))
        assert re.match(rb"Code: 40\. DB::Exception: Checksum doesn't match.*\(CHECKSUM_DOESNT_MATCH\) "
                        rb"\(version 26\.", body), body
        eq(count(srv, "pl.spans"), 5)
    check("bad checksum -> Code 40 CHECKSUM_DOESNT_MATCH, nothing inserted", bad_checksum)

    def compressed_responses():
        plain = srv.q("SELECT number, toString(number) FROM numbers(100000)")
        status, h, body = srv.request(params={"compress": "1"}, body=b"SELECT number, toString(number) FROM numbers(100000)")
        assert len(body) < len(plain) and body[16] == 0x82, body[:32]
        eq(chwire.decompress_frames(body), plain)
        for enc, dec in (("lz4", lz4.frame.decompress), ("gzip", gzip.decompress),
                         ("zstd", lambda b: zstandard.ZstdDecompressor().decompressobj().decompress(b))):
            status, h, body = srv.request(body=b"SELECT number FROM numbers(1000)", headers={"Accept-Encoding": enc})
            eq(h.get("content-encoding"), enc)
            eq(dec(body), srv.q("SELECT number FROM numbers(1000)"))
        status, h, body = srv.request(params={"enable_http_compression": "0"}, body=b"SELECT 1",
                                      headers={"Accept-Encoding": "lz4"})
        eq((h.get("content-encoding"), body), (None, b"1\n"))
    check("compress=1 (LZ4 block framing) and Accept-Encoding responses", compressed_responses)

    def body_content_encoding():
        srv.q("CREATE TABLE pl.kv (k String, v UInt32) ENGINE = MergeTree ORDER BY k")
        for enc, fn in (("gzip", gzip.compress), ("zstd", zstandard.ZstdCompressor().compress),
                        ("lz4", lz4.frame.compress)):
            data = b"".join(b'{"k":"%s","v":%d}\n' % (enc.encode(), i) for i in range(3))
            status, _, body = srv.request(params={"query": "INSERT INTO pl.kv FORMAT JSONEachRow"}, body=fn(data),
                                          headers={"Content-Encoding": enc})
            eq((status, body), (200, b""))
        eq(count(srv, "pl.kv"), 9)
    check("Content-Encoding gzip/zstd/lz4 request bodies", body_content_encoding)

    def other_formats():
        srv.q("INSERT INTO pl.kv FORMAT TabSeparated\nt1\t1\nt2\t2\n")
        srv.request(params={"query": "INSERT INTO pl.kv (k, v) FORMAT CSV"}, body=b'"c,1",1\nc2,2\n')
        srv.q("INSERT INTO pl.kv (k, v) VALUES ('val;ue', 7), ('v2', 8)")
        native = srv.q("SELECT k, v FROM pl.kv WHERE k LIKE 't%' FORMAT Native")
        srv.request(params={"query": "INSERT INTO pl.kv FORMAT Native"}, body=native)
        eq(srv.q("SELECT k, v FROM pl.kv WHERE k NOT IN ('gzip','zstd','lz4') ORDER BY k, v FORMAT CSV"),
           b'"c,1",1\n"c2",2\n"t1",1\n"t1",1\n"t2",2\n"t2",2\n"v2",8\n"val;ue",7\n')
        out = srv.q("SELECT k, v FROM pl.kv WHERE k = 'v2' FORMAT JSON").decode()
        eq(json.loads(out)["data"], [{"k": "v2", "v": 8}])
    check("INSERT TabSeparated/CSV/Values/Native, SELECT JSON/CSV", other_formats)

    def errors():
        status, h, body = srv.request(body=b"SELEC 1")
        eq((status, h["x-clickhouse-exception-code"]), (400, "62"))
        assert re.fullmatch(rb"Code: 62\. DB::Exception: Syntax error.*\. \(SYNTAX_ERROR\) \(version 26\.[0-9.]+ "
                            rb"\(official build\)\)\n", body, re.S), body
        status, h, body = srv.request(body=b"SELECT * FROM pl.nope")
        eq((status, h["x-clickhouse-exception-code"]), (404, "60"))
        assert body.startswith(b"Code: 60. DB::Exception: ") and b"(UNKNOWN_TABLE) (version 26." in body, body
        status, h, body = srv.request(params={"query": "INSERT INTO pl.nope FORMAT RowBinary"}, body=b"\x01")
        eq((status, h["x-clickhouse-exception-code"]), (404, "60"))
        status, h, _ = srv.request(params={"database": "no_such_db"}, body=b"SELECT 1")
        eq((status, h["x-clickhouse-exception-code"]), (404, "81"))
        status, h, body = srv.request(body=b"SELECT 1; SELECT 2")
        eq((status, h["x-clickhouse-exception-code"]), (400, "62"))
        status, h, body = srv.request(params={"query": "INSERT INTO pl.kv FORMAT JSONEachRow"}, body=b'{"k":1,"v":"x"}')
        assert status in (400, 500) and b"DB::Exception" in body, (status, body)
        eq(srv.q("SELECT 1"), b"1\n")  # the session is still usable
    check("error status, body format and X-ClickHouse-Exception-Code", errors)

    def dedup():
        srv.q("CREATE TABLE pl.dd (id UInt32, s String) ENGINE = MergeTree ORDER BY id "
              "SETTINGS non_replicated_deduplication_window = 100")
        block = chwire.frame_block(b"".join(struct.pack("<I", i) + rb_str(f"r{i}") for i in range(10)))
        for token in ("batch-1", "batch-1", "batch-2"):
            status, _, body = srv.request(params={"query": "INSERT INTO pl.dd (id, s) FORMAT RowBinary",
                                                  "decompress": "1", "insert_deduplication_token": token}, body=block)
            eq((status, body), (200, b""))
        eq(count(srv, "pl.dd"), 20)
        srv.q("INSERT INTO pl.dd SETTINGS insert_deduplication_token = 'batch-1' VALUES (99, 'x')")
        eq(count(srv, "pl.dd"), 20)
    check("insert_deduplication_token dedups identical blocks (non_replicated_deduplication_window)", dedup)

    def async_insert():
        srv.request(params={"query": "INSERT INTO pl.kv FORMAT JSONEachRow", "async_insert": "1",
                            "wait_for_async_insert": "1"}, body=b'{"k":"async","v":1}\n')
        eq(count(srv, "pl.kv", "WHERE k = 'async'"), 1)
    check("async_insert=1 with wait_for_async_insert=1", async_insert)

    def concurrent():
        errs = []

        def worker(k):
            try:
                s = Server.__new__(Server)
                s.port, s.conn = srv.port, None
                for i in range(10):
                    eq(s.q(f"SELECT {k} * 100 + {i}", {"max_threads": str(1 + i % 3)}), b"%d\n" % (k * 100 + i))
            except Exception as e:
                errs.append(e)
        ts = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
        [t.start() for t in ts]
        [t.join() for t in ts]
        assert not errs, errs
    check("concurrent clients (keep-alive connections)", concurrent)

    def insert_delay():
        eq(srv.request("GET", "/__control/delay")[::2], (200, b"0\n"))
        eq(srv.request("POST", "/__control/delay", params={"ms": "400"})[::2], (200, b"400\n"))
        t0 = time.monotonic()
        srv.q("INSERT INTO pl.kv FORMAT JSONEachRow\n" + '{"k":"slow","v":1}')
        slow = time.monotonic() - t0
        t0 = time.monotonic()
        eq(srv.q("SELECT 1"), b"1\n")
        select = time.monotonic() - t0
        eq(srv.request("POST", "/__control/delay", params={"ms": "0"})[::2], (200, b"0\n"))
        assert slow >= 0.4 and select < 0.4, (slow, select)
        eq(count(srv, "pl.kv", "WHERE k = 'slow'"), 1)
        eq(srv.request("POST", "/__control/delay", params={"ms": "x"})[0], 400)
    check("POST /__control/delay?ms=N delays INSERTs only (fault injection)", insert_delay)


def main():
    tmp = tempfile.mkdtemp(prefix="chdb_selftest_")
    data_dir = os.path.join(tmp, "data")  # does not exist yet: the server creates it
    try:
        srv = Server(data_dir)
        try:
            run_all(srv, data_dir)
        finally:
            code = srv.stop()

        check("SIGTERM exits cleanly", lambda: eq(code, 0))

        def restart():
            s2 = Server(data_dir)
            try:
                eq(count(s2, "pl.spans"), 5)
                eq(count(s2, "pl.dd"), 20)
                block = chwire.frame_block(b"".join(struct.pack("<I", i) + rb_str(f"r{i}") for i in range(10)))
                s2.request(params={"query": "INSERT INTO pl.dd (id, s) FORMAT RowBinary", "decompress": "1",
                                   "insert_deduplication_token": "batch-2"}, body=block)
                eq(count(s2, "pl.dd"), 20)  # the dedup log survives a restart too
            finally:
                eq(s2.stop(signal.SIGINT), 0)
        check("restart on the same data dir keeps data (and SIGINT exits cleanly)", restart)

        def watchdog():
            parent = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
            s3 = Server(os.path.join(tmp, "wd"), parent_pid=parent.pid)
            eq(s3.q("SELECT 1"), b"1\n")
            parent.kill()
            parent.wait()
            t0 = time.monotonic()
            try:
                s3.proc.wait(5)
            except subprocess.TimeoutExpired:
                s3.proc.kill()
                raise AssertionError("server still running 5 s after its parent died")
            assert time.monotonic() - t0 < 2.5, time.monotonic() - t0
        check("--parent-pid watchdog exits after the parent dies", watchdog)

        def config_file_encrypted_disk():
            disk = os.path.join(tmp, "encdisk")
            cfg = os.path.join(tmp, "enc.xml")
            with open(cfg, "w") as f:
                f.write(f"""<clickhouse><storage_configuration><disks>
                  <plain><type>local</type><path>{disk}/</path></plain>
                  <enc><type>encrypted</type><disk>plain</disk><path>e/</path><algorithm>AES_256_CTR</algorithm>
                       <key_hex from_env="SELFTEST_DISK_KEY"/></enc></disks>
                  <policies><encp><volumes><main><disk>enc</disk></main></volumes></encp></policies>
                  </storage_configuration></clickhouse>""")
            s4 = Server(os.path.join(tmp, "cfg"), config_file=cfg, env={"SELFTEST_DISK_KEY": "ab" * 32})
            try:
                s4.q("CREATE TABLE default.e (s String) ENGINE = MergeTree ORDER BY s SETTINGS storage_policy = 'encp'")
                s4.q("INSERT INTO default.e VALUES ('selftest-plaintext-marker')")
                eq(s4.q("SELECT s FROM default.e"), b"selftest-plaintext-marker\n")
                eq(s4.q("SELECT disk_name FROM system.parts WHERE table = 'e' AND active"), b"enc\n")
            finally:
                eq(s4.stop(), 0)
            for root, _, files in os.walk(disk):
                for name in files:
                    with open(os.path.join(root, name), "rb") as f:
                        assert b"selftest-plaintext-marker" not in f.read(), name
        check("--config-file: a storage policy on an encrypted disk (key from the environment)",
              config_file_encrypted_disk)

        def users_xml_account():
            import base64
            import hashlib
            d = os.path.join(tmp, "acct")
            s5 = Server(d)
            s5.q("CREATE DATABASE acl")
            s5.q("CREATE TABLE acl.t (p String) ENGINE = MergeTree ORDER BY p")
            s5.q("INSERT INTO acl.t VALUES ('a'), ('b')")
            s5.stop()
            users = os.path.join(tmp, "users.xml")
            with open(users, "w") as f:
                f.write(f"""<clickhouse><profiles><ro><readonly>2</readonly></ro></profiles><users>
                  <reader><password_sha256_hex>{hashlib.sha256(b"s3cret").hexdigest()}</password_sha256_hex>
                    <networks><ip>::/0</ip></networks><profile>ro</profile>
                    <grants><query>GRANT SELECT ON acl.*</query></grants>
                    <databases><acl><t><filter>p = 'a'</filter></t></acl></databases></reader>
                  <other><password>x</password></other></users></clickhouse>""")
            s6 = Server(d, account=(users, "reader"))
            try:
                eq(s6.request("GET", "/ping")[0], 200)
                basic = "Basic " + base64.b64encode(b"reader:s3cret").decode()
                for how in [dict(params={"user": "reader", "password": "s3cret"}),
                            dict(headers={"X-ClickHouse-User": "reader", "X-ClickHouse-Key": "s3cret"}),
                            dict(headers={"Authorization": basic})]:
                    eq(s6.q("SELECT p FROM acl.t", **how), b"a\n")  # the row filter applies
                for params in [{"user": "reader", "password": "wrong"}, {"user": "other", "password": "x"}, {}]:
                    status, headers, body = s6.request(params=params, body=b"SELECT 1")
                    eq(status, 403)
                    assert b"AUTHENTICATION_FAILED" in body, body
                ok = {"user": "reader", "password": "s3cret"}
                status, _, body = s6.request(params=ok, body=b"INSERT INTO acl.t VALUES ('c')")
                assert status == 403 and b"ACCESS_DENIED" in body, (status, body)
                eq(s6.q("SELECT getSetting('readonly')", params=ok), b"2\n")
            finally:
                eq(s6.stop(), 0)
        check("--users-xml/--as-user: password checked (URL, X-ClickHouse-*, Basic), grants, profile and "
              "row filter enforced", users_xml_account)
    except Exception:
        RESULTS["failed"] += 1
        traceback.print_exc()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{RESULTS['passed']} passed, {RESULTS['failed']} failed")
    sys.exit(1 if RESULTS["failed"] else 0)


if __name__ == "__main__":
    main()
