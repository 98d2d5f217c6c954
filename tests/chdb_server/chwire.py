"""Wire-level helpers for the chDB HTTP server: ClickHouse's compressed-block
framing, HTTP content encodings, multipart forms, a small SQL scanner and the
ClickHouse error text format. No chDB import here, so the self-test can use it."""
import bz2
import gzip
import lzma
import re
import struct
import zlib

import lz4.block
import lz4.frame
import zstandard
from clickhouse_cityhash.cityhash import CityHash128

METHOD_NONE, METHOD_LZ4, METHOD_ZSTD = 0x02, 0x82, 0x90
MAX_BLOCK = 1 << 20  # ClickHouse's max_compress_block_size


class ChError(Exception):
    """An error shaped like a ClickHouse exception: code, NAME, message."""

    def __init__(self, code, name, message):
        super().__init__(message)
        self.code, self.name, self.message = int(code), name, message

    def text(self, version):
        return f"Code: {self.code}. DB::Exception: {self.message}. ({self.name}) (version {version} (official build))\n"


_EXC_RE = re.compile(r"Code: (\d+)\. DB::\w*Exception: ")
_SUFFIX_RE = re.compile(r"\s*\(version [^()]*(\([^()]*\))?\)\s*$|\s*\(([A-Z][A-Z0-9_]+)\)\s*$")


def parse_chdb_error(text):
    """Turn chDB's exception text into a ChError. chDB sometimes nests the same exception
    ("Code: 73. DB::Exception: Code: 73. DB::Exception: ..."): keep the innermost message,
    without the "(NAME) (version ...)" suffixes, which are added back by ChError.text()."""
    found = list(_EXC_RE.finditer(text))
    if not found:
        return ChError(1001, "STD_EXCEPTION", text.strip().rstrip("."))
    msg, name = text[found[-1].end():], None
    while True:
        m = _SUFFIX_RE.search(msg)
        if not m or (name and m.group(2) and m.group(2) != name):
            break
        name = name or m.group(2)
        msg = msg[:m.start()].rstrip().rstrip(".")
    return ChError(found[0].group(1), name or "UNKNOWN_EXCEPTION", msg)


# --- ClickHouse native compressed-block framing ------------------------------------

def checksum(block):
    h = CityHash128(bytes(block))
    return struct.pack("<QQ", h >> 64, h & 0xFFFFFFFFFFFFFFFF)


def frame_block(data, method=METHOD_LZ4, level=3):
    if method == METHOD_LZ4:
        payload = lz4.block.compress(data, store_size=False)
    elif method == METHOD_ZSTD:
        payload = zstandard.ZstdCompressor(level=level).compress(data)
    else:
        payload = bytes(data)
    body = struct.pack("<BII", method, 9 + len(payload), len(data)) + payload
    return checksum(body) + body


def compress_frames(data, method=METHOD_LZ4):
    if not data:
        return b""
    return b"".join(frame_block(data[i:i + MAX_BLOCK], method) for i in range(0, len(data), MAX_BLOCK))


def decompress_frames(buf, verify=True):
    out, pos, n = [], 0, len(buf)
    while pos < n:
        if n - pos < 25:
            raise ChError(33, "CANNOT_READ_ALL_DATA", f"Cannot read all data. Bytes read: {n - pos}. Bytes expected: 25")
        method, csize, dsize = struct.unpack_from("<BII", buf, pos + 16)
        if csize < 9 or csize > 0x40000000:
            raise ChError(39, "TOO_LARGE_SIZE_COMPRESSED", f"Too large size_compressed_without_checksum: {csize}. Most likely corrupted data")
        end = pos + 16 + csize
        if end > n:
            raise ChError(33, "CANNOT_READ_ALL_DATA", f"Cannot read all data. Bytes read: {n - pos - 16}. Bytes expected: {csize}")
        body = buf[pos + 16:end]
        if verify and checksum(body) != bytes(buf[pos:pos + 16]):
            ref, act = bytes(buf[pos:pos + 16]), checksum(body)
            raise ChError(40, "CHECKSUM_DOESNT_MATCH",
                          f"Checksum doesn't match: corrupted data. Reference: {_hex128(ref)}. Actual: {_hex128(act)}. Size of compressed block: {csize}")
        payload = bytes(body[9:])
        try:
            if method == METHOD_LZ4:
                data = lz4.block.decompress(payload, uncompressed_size=dsize)
            elif method == METHOD_ZSTD:
                data = zstandard.ZstdDecompressor().decompress(payload, max_output_size=dsize)
            elif method == METHOD_NONE:
                data = payload
            else:
                raise ChError(89, "UNKNOWN_COMPRESSION_METHOD", f"Unknown compression method: {method}")
        except ChError:
            raise
        except Exception as e:
            raise ChError(271, "CANNOT_DECOMPRESS", f"Cannot decompress block with method {method:#x}: {e}")
        if len(data) != dsize:
            raise ChError(271, "CANNOT_DECOMPRESS", f"Cannot decompress: got {len(data)} bytes, expected {dsize}")
        out.append(data)
        pos = end
    return b"".join(out)


def _hex128(b):
    lo, hi = struct.unpack("<QQ", b)
    return f"({lo:#018x}, {hi:#018x})"


# --- HTTP Content-Encoding -----------------------------------------------------------

def decode_content(data, encoding):
    enc = (encoding or "").strip().lower()
    try:
        if enc in ("", "identity", "none"):
            return data
        if enc in ("gzip", "x-gzip"):
            return gzip.decompress(data)
        if enc == "deflate":
            return zlib.decompress(data)
        if enc == "zstd":
            return zstandard.ZstdDecompressor().decompressobj().decompress(data)
        if enc == "lz4":
            return lz4.frame.decompress(data)
        if enc == "xz":
            return lzma.decompress(data)
        if enc in ("bz2", "bzip2"):
            return bz2.decompress(data)
    except Exception as e:
        raise ChError(271, "CANNOT_DECOMPRESS", f"Cannot decompress {enc} request body: {e}")
    raise ChError(89, "UNKNOWN_COMPRESSION_METHOD", f"Unknown HTTP Content-Encoding: {encoding}")


def choose_encoding(accept):
    """ClickHouse's chooseHTTPCompressionMethod order, restricted to what we can produce."""
    accept = (accept or "").lower()
    for name in ("zstd", "lz4", "gzip", "deflate", "xz", "bz2"):
        if name in accept:
            return name
    return None


def encode_content(data, enc, level=3):
    if enc == "zstd":
        return zstandard.ZstdCompressor(level=level).compress(data)
    if enc == "lz4":
        return lz4.frame.compress(data)
    if enc == "gzip":
        return gzip.compress(data, compresslevel=max(1, min(level, 9)))
    if enc == "deflate":
        return zlib.compress(data, max(1, min(level, 9)))
    if enc == "xz":
        return lzma.compress(data)
    return bz2.compress(data)


# --- multipart/form-data (clickhouse-rs sends query + param_* this way) --------------

def parse_multipart(body, content_type):
    m = re.search(r'boundary="?([^";]+)"?', content_type)
    if not m:
        raise ChError(36, "BAD_ARGUMENTS", "multipart/form-data without boundary")
    sep, fields = b"--" + m.group(1).encode(), {}
    for part in body.split(sep)[1:]:
        if part.startswith(b"--"):
            break
        head, _, value = part.partition(b"\r\n\r\n")
        name = re.search(rb'name="([^"]*)"', head)
        if name:
            value = value[:-2] if value.endswith(b"\r\n") else value
            fields[name.group(1).decode()] = value.decode("utf-8", "replace")
    return fields


# --- SQL scanning ---------------------------------------------------------------------

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")
_NUM = re.compile(r"[0-9][0-9A-Za-z_.]*")


def tokens(text, start=0):
    """Yield (kind, value, start, end, depth) for top-level SQL tokens of a latin-1 str.
    Strings, quoted identifiers and comments are skipped as single tokens."""
    i, n, depth = start, len(text), 0
    while i < n:
        c = text[i]
        if c in " \t\r\n\f\v":
            i += 1
        elif text.startswith("--", i) or (c == "#" and text.startswith(("# ", "#!"), i)):
            j = text.find("\n", i)
            i = n if j < 0 else j + 1
        elif text.startswith("/*", i):
            lvl, i = 1, i + 2
            while i < n and lvl:
                if text.startswith("/*", i):
                    lvl, i = lvl + 1, i + 2
                elif text.startswith("*/", i):
                    lvl, i = lvl - 1, i + 2
                else:
                    i += 1
        elif c in "'\"`":
            j = i + 1
            while j < n:
                if text[j] == "\\":
                    j += 2
                elif text[j] == c:
                    if j + 1 < n and text[j + 1] == c:
                        j += 2
                    else:
                        break
                else:
                    j += 1
            yield ("str" if c == "'" else "qid"), text[i:j + 1], i, min(j + 1, n), depth
            i = j + 1
        else:
            m = _WORD.match(text, i) or _NUM.match(text, i)
            if m:
                yield ("word" if m.re is _WORD else "num"), m.group(0), i, m.end(), depth
                i = m.end()
                continue
            if c in "([{":
                depth += 1
            yield "punct", c, i, i + 1, depth
            if c in ")]}":
                depth = max(0, depth - 1)
            i += 1


def _is(tok, word):
    return tok is not None and tok[0] == "word" and tok[1].upper() == word


def first_word(text):
    for t in tokens(text):
        return t[1].upper() if t[0] == "word" else ""
    return ""


def split_insert(raw):
    """For `INSERT ... FORMAT fmt <data>` / `INSERT ... VALUES <data>` return
    (header_sql, fmt, data_offset) with header ending before FORMAT/VALUES; None if the
    INSERT is plain SQL (INSERT ... SELECT). `raw` is the latin-1 decoded request text."""
    prev = None
    it = tokens(raw)
    for t in it:
        if t[4] == 0 and t[0] == "word":
            w = t[1].upper()
            if w in ("SELECT", "WITH") and prev is not None:
                return None
            if w == "VALUES":
                return raw[:t[2]], "Values", t[3]
            if w == "FORMAT" and not (_is(prev, "INTO") or _is(prev, "TABLE") or (prev and prev[1] == ".")):
                fmt = next(it, None)
                if fmt is None or fmt[0] != "word":
                    raise ChError(62, "SYNTAX_ERROR", f"Syntax error: failed at position {t[3] + 1}: expected format name")
                pos = fmt[3]
                if raw.startswith(";", pos):
                    raise ChError(62, "SYNTAX_ERROR", "You have excessive ';' symbol before data for INSERT")
                while pos < len(raw) and raw[pos] in " \t\f":
                    pos += 1
                if raw.startswith("\r", pos):
                    pos += 1
                if raw.startswith("\n", pos):
                    pos += 1
                return raw[:t[2]], fmt[1], pos
        prev = t
    return None


def check_single_statement(text):
    toks = list(tokens(text))
    for k, t in enumerate(toks):
        if t[1] == ";" and t[0] == "punct" and k + 1 < len(toks):
            raise ChError(62, "SYNTAX_ERROR",
                          f"Syntax error (Multi-statements are not allowed): failed at position {t[2] + 1} (end of query): "
                          f"{text[t[2]:t[2] + 40]}")
    return toks


def output_format(toks):
    """The FORMAT clause of a (non-INSERT) query: `... FORMAT name [SETTINGS ...] [;]`."""
    toks = [t for t in toks if t[1] != ";"]
    for k in range(len(toks) - 2, -1, -1):
        if _is(toks[k], "FORMAT") and toks[k][4] == 0 and toks[k + 1][0] == "word" and \
                (k + 2 == len(toks) or _is(toks[k + 2], "SETTINGS")):
            return toks[k + 1][1]
    return None


def sql_string(value):
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def content_type(fmt):
    f = fmt.lower()
    if f.startswith(("tabseparated", "tsv")):
        return "text/tab-separated-values; charset=UTF-8"
    if f.startswith("csv"):
        return "text/csv; charset=UTF-8; header=" + ("present" if "withnames" in f else "absent")
    if f == "jsoneachrow":
        return "application/x-ndjson; charset=UTF-8"
    if f.startswith("json"):
        return "application/json; charset=UTF-8"
    if f.startswith(("rowbinary", "native", "parquet", "arrow", "orc", "avro", "msgpack", "protobuf")):
        return "application/octet-stream"
    return "text/plain; charset=UTF-8"
