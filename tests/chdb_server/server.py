#!/usr/bin/env python3
"""A ClickHouse-HTTP-compatible server on top of chDB (ClickHouse in process), for tests.

    python server.py --host 127.0.0.1 --port 0 --data-dir DIR [--parent-pid PID] [--insert-delay-ms N]
                     [--config-file FILE | --users-xml FILE --as-user NAME] [--tls-cert PEM --tls-key PEM]
                     [--verbose]

Prints exactly one line `READY http://HOST:PORT` (`https://` with --tls-cert) on stdout once it
serves; logs go to stderr.
See README.md beside this file for what is supported."""
import argparse
import json
import os
import re
import signal
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import chwire  # noqa: E402
from chwire import ChError  # noqa: E402

# URL parameters the ClickHouse HTTP handler consumes itself; everything else is a setting.
RESERVED = {"query", "compress", "decompress", "user", "password", "quota_key", "query_id", "stacktrace",
            "role", "buffer_size", "wait_end_of_query", "session_id", "session_timeout", "session_check",
            "client_protocol_version", "close_session", "database", "default_format"}
# Settings that cannot be applied to the shared chDB session and reset afterwards.
IGNORED_SETTINGS = {"readonly"}
STATUS_BY_NAME = {}
for _status, _names in {
    401: "REQUIRED_PASSWORD",
    403: "UNKNOWN_USER WRONG_PASSWORD AUTHENTICATION_FAILED SET_NON_GRANTED_ROLE ACCESS_DENIED READONLY",
    400: "BAD_ARGUMENTS CANNOT_COMPILE_REGEXP CANNOT_PARSE_TEXT CANNOT_PARSE_ESCAPE_SEQUENCE "
         "CANNOT_PARSE_QUOTED_STRING CANNOT_PARSE_DATE CANNOT_PARSE_DATETIME CANNOT_PARSE_NUMBER "
         "CANNOT_PARSE_DOMAIN_VALUE_FROM_STRING CANNOT_PARSE_IPV4 CANNOT_PARSE_IPV6 "
         "CANNOT_PARSE_INPUT_ASSERTION_FAILED CANNOT_PARSE_UUID DUPLICATE_COLUMN ILLEGAL_COLUMN "
         "UNKNOWN_ELEMENT_IN_AST UNKNOWN_TYPE_OF_AST_NODE THERE_IS_NO_COLUMN TOO_DEEP_AST TOO_BIG_AST "
         "UNEXPECTED_AST_STRUCTURE SYNTAX_ERROR INCORRECT_DATA TYPE_MISMATCH VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE",
    404: "UNKNOWN_TABLE UNKNOWN_FUNCTION UNKNOWN_IDENTIFIER UNKNOWN_TYPE UNKNOWN_STORAGE UNKNOWN_DATABASE "
         "UNKNOWN_SETTING UNKNOWN_DIRECTION_OF_SORTING UNKNOWN_AGGREGATE_FUNCTION UNKNOWN_FORMAT "
         "UNKNOWN_DATABASE_ENGINE UNKNOWN_TYPE_OF_QUERY UNKNOWN_ROLE",
    413: "QUERY_IS_TOO_LARGE", 501: "NOT_IMPLEMENTED", 503: "SOCKET_TIMEOUT CANNOT_OPEN_FILE CANNOT_SCHEDULE_TASK",
    411: "HTTP_LENGTH_REQUIRED", 408: "TIMEOUT_EXCEEDED", 415: "UNSUPPORTED_MEDIA_TYPE",
}.items():
    STATUS_BY_NAME.update(dict.fromkeys(_names.split(), _status))

VERBOSE = False
# --as-user: the one account this server serves, and how to check its password (None: no checks).
ACCOUNT = {"name": None, "sha256": None, "plain": None}
# Fault injection for tests: every INSERT waits this long before it runs (outside the engine lock, so
# concurrent inserts overlap as on a slow server). Set by --insert-delay-ms or POST /__control/delay?ms=N.
INSERT_DELAY_MS = [0]


def prepare_account(users_xml, name, work_dir):
    """chDB can neither create users (its only access storage is a read-only users.xml) nor switch
    user (EXECUTE AS is disabled), and its session always logs in as `default` with no password. So
    the served account `name` of `users_xml` becomes that `default` user (its grants, profile, row
    filters), without password; this server checks the password. Returns the config file to load."""
    import xml.etree.ElementTree as ET
    tree = ET.parse(users_xml)
    root = tree.getroot()
    users = root.find("users")
    user = users.find(name) if users is not None else None
    if user is None:
        raise SystemExit(f"--as-user {name}: no such user in {users_xml}")
    for child in list(users):
        users.remove(child)
    for tag in ("password", "password_sha256_hex", "password_double_sha1_hex"):
        for el in user.findall(tag):
            ACCOUNT["sha256" if tag == "password_sha256_hex" else "plain" if tag == "password" else "other"] = \
                (el.text or "").strip()
            user.remove(el)
    ET.SubElement(user, "password").text = ""
    user.tag = "default"
    users.append(user)
    profiles = root.find("profiles")
    if profiles is None:
        profiles = ET.SubElement(root, "profiles")
    if profiles.find("default") is None:
        ET.SubElement(profiles, "default")
    ACCOUNT["name"] = name
    derived = os.path.join(work_dir, "users.xml")
    tree.write(derived)
    config = os.path.join(work_dir, "config.xml")
    with open(config, "w") as f:
        # (chDB ignores custom_settings_prefixes: SQL_* settings stay unknown, as without this server.)
        f.write(f"<clickhouse><user_directories><users_xml><path>{derived}</path></users_xml></user_directories>"
                "</clickhouse>")
    return config


def authenticate(user, password):
    """Raises ClickHouse's AUTHENTICATION_FAILED unless `user`/`password` is the served account."""
    import hashlib
    import hmac
    if ACCOUNT["name"] is None:
        return
    ok = user == ACCOUNT["name"]
    if ACCOUNT["sha256"] is not None:
        ok = ok and hmac.compare_digest(hashlib.sha256(password.encode()).hexdigest(), ACCOUNT["sha256"].lower())
    elif ACCOUNT["plain"] is not None:
        ok = ok and hmac.compare_digest(password.encode(), ACCOUNT["plain"].encode())
    else:
        ok = False
    if not ok:
        raise ChError(516, "AUTHENTICATION_FAILED",
                      f"{user}: Authentication failed: password is incorrect, or there is no user with such name")


def log(msg):
    sys.stderr.write(f"[chdb_server] {msg}\n")
    sys.stderr.flush()


class Engine:
    """One chDB session shared by all requests; every call holds the lock."""

    def __init__(self, data_dir, config_file=None):
        from chdb.state import sqlitelike
        os.makedirs(data_dir, exist_ok=True)
        self.lock = threading.Lock()
        target = os.path.abspath(data_dir)
        if config_file:
            # chDB passes connection-string parameters to its embedded clickhouse-local as start-up
            # arguments: --config-file loads a server config (disks, storage policies, ...).
            config_file = os.path.abspath(config_file)
            if not os.path.isfile(config_file) or any(c in config_file + target for c in "?&=%"):
                raise SystemExit(f"--config-file {config_file!r}: not a file, or a path with ?&=%")
            target = f"file:{target}?config-file={config_file}"
        self.conn = sqlitelike.Connection(target)
        self.version = self._q("SELECT version()").strip()
        self.timezone = self._q("SELECT timezone()").strip()
        self.http_compression_default = self._q("SELECT getSetting('enable_http_compression')").strip() in ("1", "true")

    def _q(self, sql, fmt="TabSeparated", params=None):
        try:
            return self.conn.query(sql, fmt, params=params or {}).bytes().decode()
        except Exception as e:
            raise chwire.parse_chdb_error(str(e)) from None

    def run(self, text, database, settings, params, default_format):
        """Executes one HTTP query. `text` is latin-1 decoded bytes (query + inline data).
        Returns (body_bytes, output_format, summary_dict)."""
        started = time.monotonic()
        first = chwire.first_word(text)
        ins = chwire.split_insert(text) if first == "INSERT" else None
        sql = (ins[0] if ins else text).encode("latin-1").decode("utf-8", "replace")
        toks = chwire.check_single_statement(sql)
        # Without a session a SET or USE statement lasts one query: undo it afterwards.
        reset_db = bool(database) or first == "USE"
        stmt_settings = [t[1] for t, nxt in zip(toks, toks[1:]) if first == "SET" and t[0] == "word"
                         and t[4] == 0 and nxt[1] == "=" and nxt[0] == "punct"]
        fmt = default_format if ins else (chwire.output_format(toks) or default_format)
        summary = dict.fromkeys(("read_rows", "read_bytes", "written_rows", "written_bytes", "total_rows_to_read",
                                 "result_rows", "result_bytes", "elapsed_ns", "memory_usage"), 0)
        with self.lock:
            applied = []
            try:
                if database:
                    try:
                        self._q(f"USE `{database.replace('`', '``')}`")
                    except ChError as e:
                        # ClickHouse's HTTP `database` parameter needs no grant (USE needs SHOW
                        # DATABASES): a user restricted to other databases may still name it.
                        if e.name != "ACCESS_DENIED":
                            raise
                        if VERBOSE:
                            log(f"database={database}: {e.message} (ignored, as ClickHouse does)")
                for k, v in settings.items():
                    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", k):
                        raise ChError(115, "UNKNOWN_SETTING", f"Unknown setting '{k}'")
                    self._q(f"SET {k} = {chwire.sql_string(v)}")
                    applied.append(k)
                applied += stmt_settings
                if ins:
                    data = text[ins[2]:].encode("latin-1")
                    try:
                        inserter = self.conn.send_insert(sql, ins[1])
                    except Exception as e:
                        raise chwire.parse_chdb_error(str(e)) from None
                    try:
                        if data:
                            inserter.append(data)
                        res = inserter.finish()
                    except Exception as e:
                        try:
                            inserter.cancel()
                        except Exception:
                            pass
                        raise chwire.parse_chdb_error(str(e)) from None
                    body = b""
                    summary.update(written_rows=res.rows_written, written_bytes=res.bytes_written)
                else:
                    try:
                        res = self.conn.query(sql, fmt, params=params)
                    except Exception as e:
                        raise chwire.parse_chdb_error(str(e)) from None
                    body = res.bytes()
                    summary.update(read_rows=res.storage_rows_read(), read_bytes=res.storage_bytes_read(),
                                   written_rows=res.rows_written(), written_bytes=res.bytes_written(),
                                   result_rows=res.rows_read(), result_bytes=len(body))
            finally:
                if applied:
                    try:
                        self._q("SET " + ", ".join(f"{k} = DEFAULT" for k in applied))
                    except ChError:  # e.g. a SET statement naming an unknown setting
                        for k in applied:
                            try:
                                self._q(f"SET {k} = DEFAULT")
                            except ChError:
                                pass
                if reset_db:
                    try:
                        self._q("USE default")
                    except ChError as e:
                        if VERBOSE or e.name != "ACCESS_DENIED":  # an account restricted to other databases
                            log(f"could not reset database: {e.message}")
        summary["elapsed_ns"] = int((time.monotonic() - started) * 1e9)
        return body, fmt, {k: str(v) for k, v in summary.items()}

    def close(self):
        with self.lock:
            try:
                self.conn.close()
            except Exception as e:
                log(f"close: {e}")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "chdb-http"
    engine = None  # set in main()

    def log_message(self, fmt, *args):
        if VERBOSE:
            log("%s - %s" % (self.address_string(), fmt % args))

    def do_GET(self):
        self.handle_any()

    do_POST = do_PUT = do_HEAD = do_GET

    def read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts = []
            while True:
                line = self.rfile.readline(65537)
                if not line:
                    raise ConnectionError("client closed the connection mid-body")
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(parts)
                chunk = self.rfile.read(size)
                if len(chunk) != size:
                    raise ConnectionError("client closed the connection mid-chunk")
                parts.append(chunk)
                self.rfile.readline(65537)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if len(body) != length:
            raise ConnectionError("client closed the connection mid-body")
        return body

    def send(self, status, body, headers=()):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            try:
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                # The client gave up (e.g. its timeout passed during an injected delay); the query ran.
                self.close_connection = True

    def handle_any(self):
        url = urlsplit(self.path)
        try:
            body = self.read_body()
        except (ConnectionError, ValueError) as e:
            log(f"bad request body: {e}")
            self.close_connection = True
            return
        params = parse_qsl(url.query, keep_blank_values=True)
        ctype = self.headers.get("Content-Type", "")
        if ctype.lower().startswith("multipart/form-data"):
            try:
                params += list(chwire.parse_multipart(body, ctype).items())
            except ChError as e:
                return self.fail(e, str(uuid.uuid4()))
            body = b""
        p = dict(params)
        if VERBOSE:
            shown = {k: (v if len(v) < 300 else v[:300] + "...") for k, v in p.items()}
            log(f"{self.command} {url.path} params={shown} body={len(body)}B "
                f"ce={self.headers.get('Content-Encoding')} ae={self.headers.get('Accept-Encoding')}")
        if url.path in ("/ping", "/") and "query" not in p and not body:
            return self.send(200, b"Ok.\n", [("Content-Type", "text/html; charset=UTF-8")])
        if url.path == "/__control/delay":
            return self.control_delay(p)
        if url.path not in ("/", "/query"):
            return self.send(404, f"There is no handle {url.path}\n\nUse / or /ping for health checks.\n".encode(),
                             [("Content-Type", "text/plain; charset=UTF-8")])
        query_id = p.get("query_id") or self.headers.get("X-ClickHouse-Query-Id") or str(uuid.uuid4())
        try:
            authenticate(*self.credentials(p))
        except ChError as e:
            return self.fail(e, query_id)
        settings = {k: v for k, v in params if k not in RESERVED and not k.startswith("param_")}
        for k in IGNORED_SETTINGS & settings.keys():
            log(f"ignoring setting {k}={settings.pop(k)} (would stick to the shared chDB session)")
        try:
            body = chwire.decode_content(body, self.headers.get("Content-Encoding"))
            if p.get("decompress", "0") not in ("0", "", "false"):
                verify = settings.get("http_native_compression_disable_checksumming_on_decompress", "0") in ("0", "false")
                body = chwire.decompress_frames(memoryview(body), verify)
            query = p.get("query", "").encode()
            text = ((query + b"\n" if query else b"") + body).decode("latin-1")
            if not text.strip():
                raise ChError(62, "SYNTAX_ERROR", "Empty query")
            default_format = p.get("default_format") or self.headers.get("X-ClickHouse-Format") or "TabSeparated"
            database = p.get("database") or self.headers.get("X-ClickHouse-Database")
            qparams = {k[6:]: v for k, v in params if k.startswith("param_")}
            delay = INSERT_DELAY_MS[0]
            if delay > 0 and chwire.first_word(text) == "INSERT":
                time.sleep(delay / 1000)
            out, fmt, summary = self.engine.run(text, database, settings, qparams, default_format)
        except ChError as e:
            return self.fail(e, query_id)
        except Exception as e:  # a bug here must still answer like a server would
            log(f"internal error: {e!r}")
            return self.fail(ChError(1001, "STD_EXCEPTION", repr(e)), query_id)
        headers = [("Content-Type", chwire.content_type(fmt)), ("X-ClickHouse-Query-Id", query_id),
                   ("X-ClickHouse-Format", fmt), ("X-ClickHouse-Timezone", self.engine.timezone),
                   ("X-ClickHouse-Server-Display-Name", "chdb"), ("X-ClickHouse-Summary", json.dumps(summary))]
        if p.get("compress", "0") not in ("0", "", "false"):
            out = chwire.compress_frames(out)
        enable = settings.get("enable_http_compression")
        enable = self.engine.http_compression_default if enable is None else enable.lower() in ("1", "true")
        enc = chwire.choose_encoding(self.headers.get("Accept-Encoding")) if enable else None
        if enc and out:
            level = int(settings.get("http_zlib_compression_level", "3") or 3)
            out = chwire.encode_content(out, enc, level)
            headers.append(("Content-Encoding", enc))
        self.send(200, out, headers)

    def credentials(self, p):
        """The user and password as ClickHouse reads them: URL parameters, X-ClickHouse-User/Key
        headers (what clickhouse-rs sends), or Basic auth; no user means `default`."""
        import base64
        user = p.get("user") or self.headers.get("X-ClickHouse-User")
        password = p.get("password") or self.headers.get("X-ClickHouse-Key")
        auth = self.headers.get("Authorization", "")
        if user is None and auth[:6].lower() == "basic ":
            try:
                user, _, password = base64.b64decode(auth[6:].strip()).decode().partition(":")
            except ValueError:
                pass
        return user or "default", password or ""

    def control_delay(self, p):
        """`POST /__control/delay?ms=N` sets the insert delay; any method without `ms` reads it."""
        if "ms" in p:
            try:
                INSERT_DELAY_MS[0] = max(0, int(p["ms"]))
            except ValueError:
                return self.send(400, b"ms must be an integer\n", [("Content-Type", "text/plain")])
            log(f"insert delay set to {INSERT_DELAY_MS[0]} ms")
        return self.send(200, b"%d\n" % INSERT_DELAY_MS[0], [("Content-Type", "text/plain")])

    def fail(self, err, query_id):
        status = STATUS_BY_NAME.get(err.name, 500)
        if VERBOSE:
            log(f"-> {status} Code {err.code} {err.name}: {err.message[:300]}")
        self.send(status, err.text(self.engine.version).encode(), [
            ("Content-Type", "text/plain; charset=UTF-8"), ("X-ClickHouse-Query-Id", query_id),
            ("X-ClickHouse-Exception-Code", str(err.code)), ("X-ClickHouse-Server-Display-Name", "chdb")])


def watchdog(pid):
    while True:
        try:
            os.kill(pid, 0)
            with open(f"/proc/{pid}/stat", "rb") as f:
                if f.read().rsplit(b")", 1)[1].split()[0] == b"Z":
                    raise ProcessLookupError
        except (ProcessLookupError, FileNotFoundError):
            log(f"parent pid {pid} is gone; exiting")
            os._exit(0)
        except PermissionError:
            pass
        time.sleep(0.2)


def main():
    global VERBOSE
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--parent-pid", type=int)
    ap.add_argument("--insert-delay-ms", type=int, default=0, help="delay every INSERT (fault injection)")
    ap.add_argument("--config-file", help="ClickHouse server config (XML) for the engine, e.g. disks and "
                    "storage policies; `from_env` attributes read this process's environment")
    ap.add_argument("--users-xml", help="ClickHouse users.xml; with --as-user, the engine runs as that user")
    ap.add_argument("--as-user", help="the one account served: requests must authenticate as it (URL user/"
                    "password, X-ClickHouse-User/Key or Basic auth) and run with its grants, profile and row filters")
    ap.add_argument("--verbose", action="store_true")
    ap.add_argument("--tls-cert", help="serve HTTPS with this PEM certificate chain (needs --tls-key)")
    ap.add_argument("--tls-key", help="PEM private key of --tls-cert")
    args = ap.parse_args()
    if bool(args.tls_cert) != bool(args.tls_key):
        ap.error("--tls-cert and --tls-key go together")
    VERBOSE = args.verbose
    if bool(args.users_xml) != bool(args.as_user) or (args.users_xml and args.config_file):
        ap.error("--users-xml and --as-user go together, and not with --config-file")
    if args.users_xml:
        import tempfile
        args.config_file = prepare_account(args.users_xml, args.as_user, tempfile.mkdtemp(prefix="chdb-account-"))
    INSERT_DELAY_MS[0] = max(0, args.insert_delay_ms)
    # Keep the real stdout for the READY line only; anything chDB prints goes to stderr.
    ready_out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    if args.parent_pid:
        threading.Thread(target=watchdog, args=(args.parent_pid,), daemon=True).start()
    Handler.engine = engine = Engine(args.data_dir, args.config_file)
    httpd = ThreadingHTTPServer((args.host, args.port), Handler)
    httpd.daemon_threads = True
    scheme = "http"
    if args.tls_cert:
        import ssl
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(args.tls_cert, args.tls_key)
        # The handshake runs in the request's thread (on first read), so a client that fails it
        # holds up no other; its error is logged to stderr and the connection closed.
        httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True, do_handshake_on_connect=False)
        scheme = "https"
        plain_handle_error = httpd.handle_error

        def handle_error(request, client_address):
            error = sys.exc_info()[1]
            if isinstance(error, (ssl.SSLError, ConnectionError)):
                log(f"TLS handshake with {client_address[0]}:{client_address[1]} failed: {error}")
            else:
                plain_handle_error(request, client_address)

        httpd.handle_error = handle_error
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    host, port = httpd.server_address[:2]
    log(f"chDB {engine.version} serving {os.path.abspath(args.data_dir)} on {scheme}://{host}:{port}")
    ready_out.write(f"READY {scheme}://{host}:{port}\n")
    ready_out.flush()
    while not stop.wait(0.5):
        pass
    log("shutting down")
    httpd.shutdown()
    engine.close()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
