//! Set-up in one call from the standard OpenTelemetry environment: OTLP span and log exporters (gRPC
//! or HTTP/protobuf, headers, a private CA, retries on), tracer and logger providers with batch
//! processors, a `tracing-opentelemetry` layer so GenAI spans nest under the app's own `tracing` spans,
//! and a [`Guard`] that flushes and shuts down on drop.
//!
//! Call [`init`] inside a multi-threaded Tokio runtime (the exporters' connections live on it), and
//! drop the guard before the runtime ends.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::tonic_types::metadata::MetadataMap;
use opentelemetry_otlp::tonic_types::transport::{Certificate, ClientTlsConfig};
use opentelemetry_otlp::{LogExporter, RetryPolicy, SpanExporter, WithExportConfig, WithHttpConfig, WithTonicConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::logs::SdkLoggerProvider;
use opentelemetry_sdk::trace::SdkTracerProvider;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject as _;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer as _};

use crate::{Capture, Error, Instrument};

/// `OTEL_EXPORTER_OTLP_ENDPOINT`: base URL of the collector.
pub const ENDPOINT_ENV: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";
/// `OTEL_EXPORTER_OTLP_PROTOCOL`: `grpc` or `http/protobuf`.
pub const PROTOCOL_ENV: &str = "OTEL_EXPORTER_OTLP_PROTOCOL";
/// `OTEL_EXPORTER_OTLP_HEADERS`: `key=value,key2=value2` (values URL-encoded).
pub const HEADERS_ENV: &str = "OTEL_EXPORTER_OTLP_HEADERS";
/// `OTEL_EXPORTER_OTLP_CERTIFICATE`: PEM file of the CA(s) to trust for an `https` endpoint.
pub const CERTIFICATE_ENV: &str = "OTEL_EXPORTER_OTLP_CERTIFICATE";
/// Default endpoint for gRPC (the spec's).
pub const DEFAULT_GRPC_ENDPOINT: &str = "http://localhost:4317";
/// Default endpoint for HTTP/protobuf (the spec's).
pub const DEFAULT_HTTP_ENDPOINT: &str = "http://localhost:4318";
/// How long one export may take.
pub const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// The OTLP transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// OTLP/gRPC.
    Grpc,
    /// OTLP/HTTP with protobuf bodies (the spec's default).
    HttpProtobuf,
}

/// Everything [`init_with`] needs; [`Settings::from_env`] reads it from the standard variables.
/// `OTEL_SERVICE_NAME` and `OTEL_RESOURCE_ATTRIBUTES` are read by the SDK's resource detectors.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Base URL of the collector (without `/v1/traces`).
    pub endpoint: String,
    /// Transport.
    pub protocol: Protocol,
    /// Extra request headers (authentication, say).
    pub headers: Vec<(String, String)>,
    /// CA file for `https` endpoints; the public web roots when unset.
    pub certificate: Option<PathBuf>,
    /// Content capture.
    pub capture: Capture,
    /// Install a global `tracing` subscriber with the OpenTelemetry layer (turn off when the app
    /// builds its own: then add [`Guard::tracing_layer`] to it).
    pub install_subscriber: bool,
}

impl Settings {
    /// Reads the OTLP variables; a value that cannot be used is an error, never silently ignored.
    pub fn from_env() -> Result<Settings, Error> {
        Settings::from_lookup(|k| std::env::var(k).ok())
    }

    /// [`Settings::from_env`] over any lookup (tests pass a map).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Settings, Error> {
        let protocol = match get(PROTOCOL_ENV).as_deref().map(str::trim) {
            None | Some("") | Some("http/protobuf") => Protocol::HttpProtobuf,
            Some("grpc") => Protocol::Grpc,
            Some(other) => {
                return Err(Error::Env {
                    var: PROTOCOL_ENV,
                    value: other.to_owned(),
                    expected: "grpc or http/protobuf",
                });
            }
        };
        let endpoint = match get(ENDPOINT_ENV).filter(|e| !e.trim().is_empty()) {
            Some(e) if e.starts_with("http://") || e.starts_with("https://") => e.trim_end_matches('/').to_owned(),
            Some(e) => {
                return Err(Error::Env { var: ENDPOINT_ENV, value: e, expected: "an http:// or https:// URL" });
            }
            None if protocol == Protocol::Grpc => DEFAULT_GRPC_ENDPOINT.to_owned(),
            None => DEFAULT_HTTP_ENDPOINT.to_owned(),
        };
        let headers = match get(HEADERS_ENV) {
            Some(h) => parse_headers(&h)?,
            None => Vec::new(),
        };
        Ok(Settings {
            endpoint,
            protocol,
            headers,
            certificate: get(CERTIFICATE_ENV).filter(|c| !c.is_empty()).map(PathBuf::from),
            capture: Capture::from_lookup(&get)?,
            install_subscriber: true,
        })
    }
}

/// `k=v,k2=v2` with percent-encoded values (the spec's format).
fn parse_headers(raw: &str) -> Result<Vec<(String, String)>, Error> {
    let bad =
        || Error::Env { var: HEADERS_ENV, value: raw.to_owned(), expected: "key=value pairs separated by commas" };
    let mut out = Vec::new();
    for pair in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').ok_or_else(bad)?;
        let k = k.trim();
        if k.is_empty() {
            return Err(bad());
        }
        out.push((k.to_owned(), percent_decode(v.trim()).ok_or_else(bad)?));
    }
    Ok(out)
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Keeps the providers alive; dropping it flushes and shuts them down.
pub struct Guard {
    tracer_provider: SdkTracerProvider,
    logger_provider: SdkLoggerProvider,
    instrument: Instrument,
}

impl Guard {
    /// The tracer provider (to make more tracers).
    pub fn tracer_provider(&self) -> &SdkTracerProvider {
        &self.tracer_provider
    }

    /// The logger provider (no global one exists in OpenTelemetry 0.33).
    pub fn logger_provider(&self) -> &SdkLoggerProvider {
        &self.logger_provider
    }

    /// The installed instrument.
    pub fn instrument(&self) -> &Instrument {
        &self.instrument
    }

    /// A `tracing-opentelemetry` layer on these providers, for apps that build their own subscriber.
    pub fn tracing_layer<S>(&self) -> tracing_opentelemetry::OpenTelemetryLayer<S, opentelemetry_sdk::trace::SdkTracer>
    where
        S: tracing::Subscriber + for<'s> tracing_subscriber::registry::LookupSpan<'s>,
    {
        tracing_opentelemetry::layer().with_tracer(self.tracer_provider.tracer("promptlog-instrument.tracing"))
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        // Errors here can only be reported: the app is going away.
        for (what, r) in [
            ("flush spans", self.tracer_provider.force_flush()),
            ("flush logs", self.logger_provider.force_flush()),
            ("shut down spans", self.tracer_provider.shutdown()),
            ("shut down logs", self.logger_provider.shutdown()),
        ] {
            if let Err(e) = r {
                eprintln!("promptlog-instrument: {what}: {e}");
            }
        }
    }
}

/// Installs ring as rustls' process-wide crypto provider unless one is set (async-openai is built
/// with `rustls-no-provider`, so that aws-lc-rs stays out of the build).
pub fn install_ring_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// [`init_with`] the settings of the environment.
pub fn init() -> Result<Guard, Error> {
    init_with(Settings::from_env()?)
}

/// Builds exporters and providers from `settings`, installs them (global tracer provider, the global
/// [`Instrument`], and unless turned off a `tracing` subscriber), and returns the flush guard.
pub fn init_with(settings: Settings) -> Result<Guard, Error> {
    install_ring_provider();
    let handle = tokio::runtime::Handle::try_current().map_err(|_| Error::NoRuntime)?;
    let (spans, logs) = exporters(&settings, &handle)?;
    let resource = Resource::builder().build();
    let tracer_provider =
        SdkTracerProvider::builder().with_resource(resource.clone()).with_batch_exporter(spans).build();
    let logger_provider = SdkLoggerProvider::builder().with_resource(resource).with_batch_exporter(logs).build();
    opentelemetry::global::set_tracer_provider(tracer_provider.clone());
    let instrument = Instrument::new(&tracer_provider, Some(&logger_provider), settings.capture);
    instrument.install();
    let guard = Guard { tracer_provider, logger_provider, instrument };
    if settings.install_subscriber {
        // Only the app's own spans (info and up, or RUST_LOG), not the exporters' transport internals.
        let filter = EnvFilter::builder()
            .with_default_directive(tracing::level_filters::LevelFilter::INFO.into())
            .from_env()
            .map_err(|e| Error::Env { var: "RUST_LOG", value: e.to_string(), expected: "tracing directives" })?;
        tracing_subscriber::registry().with(guard.tracing_layer().with_filter(filter)).try_init()?;
    }
    Ok(guard)
}

fn exporters(s: &Settings, handle: &tokio::runtime::Handle) -> Result<(SpanExporter, LogExporter), Error> {
    let https = s.endpoint.starts_with("https://");
    let ca_pem = match &s.certificate {
        Some(path) => Some(
            std::fs::read(path)
                .map_err(|e| Error::Certificate { path: path.display().to_string(), reason: e.to_string() })?,
        ),
        None => None,
    };
    match s.protocol {
        Protocol::Grpc => {
            let mut metadata = MetadataMap::new();
            for (k, v) in &s.headers {
                let key =
                    k.parse::<tonic::metadata::MetadataKey<tonic::metadata::Ascii>>().map_err(|_| header_error(k))?;
                metadata.insert(key, v.parse().map_err(|_| header_error(k))?);
            }
            let tls = https.then(|| match &ca_pem {
                Some(pem) => ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pem)),
                None => ClientTlsConfig::new().with_webpki_roots(),
            });
            let spans = {
                let b = SpanExporter::builder()
                    .with_tonic()
                    .with_endpoint(s.endpoint.clone())
                    .with_timeout(EXPORT_TIMEOUT)
                    .with_metadata(metadata.clone())
                    .with_retry_policy(RetryPolicy::recommended());
                match &tls {
                    Some(t) => b.with_tls_config(t.clone()).build()?,
                    None => b.build()?,
                }
            };
            let logs = {
                let b = LogExporter::builder()
                    .with_tonic()
                    .with_endpoint(s.endpoint.clone())
                    .with_timeout(EXPORT_TIMEOUT)
                    .with_metadata(metadata)
                    .with_retry_policy(RetryPolicy::recommended());
                match tls {
                    Some(t) => b.with_tls_config(t).build()?,
                    None => b.build()?,
                }
            };
            Ok((spans, logs))
        }
        Protocol::HttpProtobuf => {
            let client: Arc<dyn HttpClient> =
                Arc::new(RuntimeHttpClient { client: http_client(ca_pem.as_deref(), s)?, handle: handle.clone() });
            let headers: HashMap<String, String> = s.headers.iter().cloned().collect();
            let spans = SpanExporter::builder()
                .with_http()
                .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
                .with_endpoint(format!("{}/v1/traces", s.endpoint))
                .with_timeout(EXPORT_TIMEOUT)
                .with_headers(headers.clone())
                .with_shared_http_client(client.clone())
                .with_retry_policy(RetryPolicy::recommended())
                .build()?;
            let logs = LogExporter::builder()
                .with_http()
                .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
                .with_endpoint(format!("{}/v1/logs", s.endpoint))
                .with_timeout(EXPORT_TIMEOUT)
                .with_headers(headers)
                .with_shared_http_client(client)
                .with_retry_policy(RetryPolicy::recommended())
                .build()?;
            Ok((spans, logs))
        }
    }
}

fn header_error(k: &str) -> Error {
    Error::Env { var: HEADERS_ENV, value: k.to_owned(), expected: "header names and values valid in gRPC metadata" }
}

/// The OTLP/HTTP client: reqwest with rustls on ring, trusting the given CA or else the web roots.
fn http_client(ca_pem: Option<&[u8]>, s: &Settings) -> Result<reqwest_otlp::Client, Error> {
    let cert_error = |reason: String| Error::Certificate {
        path: s.certificate.as_ref().map(|p| p.display().to_string()).unwrap_or_default(),
        reason,
    };
    let mut roots = rustls::RootCertStore::empty();
    match ca_pem {
        Some(pem) => {
            for cert in CertificateDer::pem_slice_iter(pem) {
                let cert = cert.map_err(|e| cert_error(e.to_string()))?;
                roots.add(cert).map_err(|e| cert_error(e.to_string()))?;
            }
            if roots.is_empty() {
                return Err(cert_error("no PEM certificate in the file".into()));
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| cert_error(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    reqwest_otlp::Client::builder()
        .timeout(EXPORT_TIMEOUT)
        .tls_backend_preconfigured(tls)
        .build()
        .map_err(|e| cert_error(format!("HTTP client: {e}")))
}

/// Runs each OTLP/HTTP request on the app's Tokio runtime: the SDK's batch processors export from
/// their own threads, where reqwest would find no reactor.
#[derive(Debug)]
struct RuntimeHttpClient {
    client: reqwest_otlp::Client,
    handle: tokio::runtime::Handle,
}

#[async_trait::async_trait]
impl HttpClient for RuntimeHttpClient {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let client = self.client.clone();
        self.handle.spawn(async move { client.send_bytes(request).await }).await?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| pairs.iter().find(|(key, _)| *key == k).map(|(_, v)| (*v).to_owned())
    }

    #[test]
    fn defaults_follow_the_spec() {
        let s = Settings::from_lookup(lookup(&[])).unwrap();
        assert_eq!((s.protocol, s.endpoint.as_str()), (Protocol::HttpProtobuf, DEFAULT_HTTP_ENDPOINT));
        let s = Settings::from_lookup(lookup(&[(PROTOCOL_ENV, "grpc")])).unwrap();
        assert_eq!((s.protocol, s.endpoint.as_str()), (Protocol::Grpc, DEFAULT_GRPC_ENDPOINT));
    }

    #[test]
    fn variables_are_read_and_bad_ones_refused() {
        let s = Settings::from_lookup(lookup(&[
            (ENDPOINT_ENV, "https://collector:4318/"),
            (HEADERS_ENV, "authorization=Bearer%20k1, x-tenant=acme"),
            (CERTIFICATE_ENV, "/etc/ca.pem"),
        ]))
        .unwrap();
        assert_eq!(s.endpoint, "https://collector:4318");
        assert_eq!(s.headers, [("authorization".into(), "Bearer k1".into()), ("x-tenant".into(), "acme".into())]);
        assert_eq!(s.certificate, Some(PathBuf::from("/etc/ca.pem")));
        for bad in [
            &[(PROTOCOL_ENV, "http/xml")][..],
            &[(ENDPOINT_ENV, "collector:4317")][..],
            &[(HEADERS_ENV, "novalue")][..],
            &[(HEADERS_ENV, "k=%zz")][..],
        ] {
            let bad: &'static [(&str, &str)] = Box::leak(bad.to_vec().into_boxed_slice());
            assert!(Settings::from_lookup(lookup(bad)).is_err(), "{bad:?}");
        }
    }
}
