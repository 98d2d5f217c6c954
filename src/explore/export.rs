//! `export`: the calls matching a filter, every `llm_calls` column, in a file format ClickHouse
//! itself produces (JSONEachRow, CSVWithNames, Parquet), streamed from the HTTP body to disk.
//!
//! Memory stays bounded: the body is read chunk by chunk and written through one buffer of
//! `buffer_bytes` (a chunk at least that large is written directly), so at most one buffer plus one
//! chunk is held whatever the export's size. The file appears only when complete: the data goes to
//! a temporary file next to it (`.<name>.<random>.partial`, same directory so the final rename is
//! atomic), which is synced and renamed over the target on success and deleted on any error or
//! when the export is dropped (Ctrl-C); an existing file of that name stays as it was until then.

use std::path::{Path, PathBuf};

use promptlog_ingest::Table;
use tokio::io::AsyncWriteExt;

use super::filter::CallFilter;
use super::{ExploreError, Reader};

/// Bytes buffered before a write to the file, by default.
pub const DEFAULT_EXPORT_BUFFER_BYTES: usize = 1 << 20;

/// An export file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExportFormat {
    /// One JSON object per line (ClickHouse `JSONEachRow`, 64-bit integers as numbers).
    Jsonl,
    /// CSV with a header line (`CSVWithNames`).
    Csv,
    /// Apache Parquet (`Parquet`).
    Parquet,
}

impl ExportFormat {
    /// The ClickHouse output format.
    pub const fn clickhouse_format(self) -> &'static str {
        match self {
            ExportFormat::Jsonl => "JSONEachRow",
            ExportFormat::Csv => "CSVWithNames",
            ExportFormat::Parquet => "Parquet",
        }
    }

    /// `jsonl`, `csv` or `parquet`.
    pub fn parse(text: &str) -> Result<ExportFormat, ExploreError> {
        match text.trim().to_ascii_lowercase().as_str() {
            "jsonl" | "json" | "ndjson" => Ok(ExportFormat::Jsonl),
            "csv" => Ok(ExportFormat::Csv),
            "parquet" => Ok(ExportFormat::Parquet),
            _ => Err(ExploreError::BadFilter {
                field: "format",
                reason: format!("{text:?} is not jsonl, csv or parquet"),
            }),
        }
    }
}

/// What an export wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ExportStats {
    /// Calls matching the filter when the export started (the rows exported).
    pub rows: u64,
    /// Bytes written.
    pub bytes: u64,
    /// Body chunks received.
    pub chunks: u64,
    /// The largest chunk, bytes (what is held besides the buffer).
    pub largest_chunk: usize,
    /// Writes to the file.
    pub writes: u64,
    /// Most bytes held in the buffer at once (at most the buffer size).
    pub peak_buffered: usize,
}

/// Buffers chunks up to `capacity` bytes between writes to `out`.
struct Sink<W> {
    out: W,
    buf: Vec<u8>,
    capacity: usize,
    stats: ExportStats,
}

impl<W: tokio::io::AsyncWrite + Unpin> Sink<W> {
    async fn put(&mut self, chunk: &[u8]) -> std::io::Result<()> {
        self.stats.chunks += 1;
        self.stats.largest_chunk = self.stats.largest_chunk.max(chunk.len());
        self.stats.bytes += chunk.len() as u64;
        if self.buf.len() + chunk.len() > self.capacity {
            self.flush().await?;
        }
        if chunk.len() >= self.capacity {
            self.stats.writes += 1;
            return self.out.write_all(chunk).await;
        }
        self.buf.extend_from_slice(chunk);
        self.stats.peak_buffered = self.stats.peak_buffered.max(self.buf.len());
        Ok(())
    }

    async fn flush(&mut self) -> std::io::Result<()> {
        if !self.buf.is_empty() {
            self.stats.writes += 1;
            self.out.write_all(&self.buf).await?;
            self.buf.clear();
        }
        Ok(())
    }
}

impl Reader {
    /// The calls matching `filter` (oldest first; `filter.limit` caps them, no cursor), every
    /// column, as `format`, written to `out` through a `buffer_bytes` buffer; `progress` is called
    /// with the bytes written so far after each chunk.
    pub async fn export_to<W: tokio::io::AsyncWrite + Unpin>(
        &self,
        filter: &CallFilter,
        format: ExportFormat,
        out: W,
        buffer_bytes: usize,
        mut progress: impl FnMut(u64),
    ) -> Result<ExportStats, ExploreError> {
        let filter = CallFilter { cursor: None, ..filter.clone() };
        let c = self.conditions(&filter)?;
        let table = Table::LlmCalls.name();
        let limit = filter.limit.map(|l| format!(" LIMIT {l}")).unwrap_or_default();
        let count_sql = format!("SELECT count() FROM (SELECT 1 FROM {table} {}{limit})", c.where_clause());
        let rows: u64 = c.bind(self.client().query(&count_sql)).fetch_one().await?;
        let sql = format!("SELECT * FROM {table} {} ORDER BY Timestamp, TraceId, SpanId{limit}", c.where_clause());
        let mut cursor = c
            .bind(self.client().query(&sql))
            .with_setting("output_format_json_quote_64bit_integers", "0")
            .fetch_bytes(format.clickhouse_format())?;
        let capacity = buffer_bytes.max(1);
        let mut sink = Sink { out, buf: Vec::with_capacity(capacity), capacity, stats: ExportStats::default() };
        let io = |source| ExploreError::Io { path: PathBuf::from("<export>"), source };
        while let Some(chunk) = cursor.next().await? {
            sink.put(&chunk).await.map_err(io)?;
            progress(sink.stats.bytes);
        }
        sink.flush().await.map_err(io)?;
        sink.out.flush().await.map_err(io)?;
        Ok(ExportStats { rows, ..sink.stats })
    }

    /// [`Reader::export_to`] into `path`, atomically (see the module docs).
    pub async fn export_file(
        &self,
        filter: &CallFilter,
        format: ExportFormat,
        path: &Path,
        buffer_bytes: usize,
        progress: impl FnMut(u64),
    ) -> Result<ExportStats, ExploreError> {
        let io = |source| ExploreError::Io { path: path.to_owned(), source };
        let name = path.file_name().ok_or_else(|| io(std::io::Error::other("not a file name")))?;
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let temp = tempfile::Builder::new()
            .prefix(&format!(".{}.", name.to_string_lossy()))
            .suffix(".partial")
            .tempfile_in(dir)
            .map_err(io)?;
        let file = tokio::fs::File::from_std(temp.as_file().try_clone().map_err(io)?);
        let mut stats = self.export_to(filter, format, file, buffer_bytes, progress).await;
        if let Err(ExploreError::Io { path: p, .. }) = &mut stats {
            *p = temp.path().to_owned();
        }
        let stats = stats?;
        temp.as_file().sync_all().map_err(io)?;
        temp.persist(path).map_err(|e| io(e.error))?;
        Ok(stats)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_buffer_bounds_what_is_held_and_every_byte_is_written_in_order() {
        let mut out = Vec::new();
        let mut sink = Sink { out: &mut out, buf: Vec::new(), capacity: 10, stats: ExportStats::default() };
        let chunks: [&[u8]; 5] = [b"abcd", b"efgh", b"ijkl", b"0123456789abcdef", b"z"];
        for c in chunks {
            sink.put(c).await.unwrap();
        }
        sink.flush().await.unwrap();
        let stats = sink.stats.clone();
        assert_eq!(out, chunks.concat());
        assert_eq!((stats.chunks, stats.bytes), (5, 29));
        assert!(stats.peak_buffered <= 10, "{stats:?}");
        // abcdefgh | ijkl | the 16-byte chunk directly | z
        assert_eq!(stats.writes, 4, "{stats:?}");
    }

    #[test]
    fn formats() {
        assert_eq!(ExportFormat::parse("JSONL").unwrap().clickhouse_format(), "JSONEachRow");
        assert_eq!(ExportFormat::parse("csv").unwrap(), ExportFormat::Csv);
        assert!(ExportFormat::parse("xlsx").is_err());
    }
}
