//! The explorer over plain HTTP: the security headers on every response, the key requirements and
//! project scoping with API keys on, and the `Host` check with them off.

use serde_json::json;

use super::{BETA_READ_FEEDBACK, send_beta_call, start_stack, start_stack_with_keys, stored_scores};
use crate::support::keys::{self, BETA, BETA_INGEST, BETA_READ_ONLY};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explorer_sends_a_strict_csp_and_needs_a_read_key_scoped_to_its_project() {
    let dir = tempfile::tempdir().unwrap();
    let stack = start_stack_with_keys(dir.path()).await;
    let ui = stack.ui_url();
    let client = reqwest::Client::new();
    let get = |path: &str, key: Option<&str>| {
        let mut request = client.get(format!("{ui}{path}"));
        if let Some(key) = key {
            request = request.header("authorization", format!("Bearer {key}"));
        }
        request.send()
    };

    // The page and its assets need no key, and carry the headers.
    for path in ["/", "/explorer.js", "/explorer.css", "/api/info"] {
        let reply = get(path, None).await.unwrap();
        assert_eq!(reply.status(), 200, "{path}");
        let h = reply.headers();
        assert_eq!(h["content-security-policy"], promptlog_csp(), "{path}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
    }
    let info: serde_json::Value = get("/api/info", None).await.unwrap().json().await.unwrap();
    assert_eq!(info["auth"], json!(true));

    // Reads: 401 without or with an unknown key, 403 with an ingest-only key, 200 with a read key.
    let calls = "/api/calls?since=1h";
    for (key, status) in [(None, 401), (Some(keys::WRONG), 401), (Some(BETA_INGEST), 403), (Some(BETA_READ_ONLY), 200)]
    {
        let reply = get(calls, key).await.unwrap();
        assert_eq!(reply.status(), status, "{key:?}");
        // Errors are JSON and carry the same headers.
        assert_eq!(reply.headers()["content-security-policy"], promptlog_csp());
    }

    // Reads are the key's project only: its call is listed with its project, and a `project=`
    // filter naming another project is refused.
    let (trace, span_id) = send_beta_call(&stack).await;
    let listed: serde_json::Value = get(calls, Some(BETA_READ_ONLY)).await.unwrap().json().await.unwrap();
    assert_eq!(listed["calls"].as_array().map(Vec::len), Some(1), "{listed}");
    assert_eq!(listed["calls"][0]["project"], json!(BETA));
    let other = get(&format!("{calls}&project=default"), Some(BETA_READ_ONLY)).await.unwrap();
    assert_eq!(other.status(), 403);
    let other: serde_json::Value = other.json().await.unwrap();
    assert!(other["error"].as_str().unwrap().contains("restricted to project \"beta\""), "{other}");

    // Thumbs: the read-only key is refused (403), a read+feedback key is accepted and stamped `beta`.
    let feedback = format!("{ui}/api/calls/{trace}/{span_id}/feedback");
    let thumbs = |key: &'static str| {
        client
            .post(&feedback)
            .header("authorization", format!("Bearer {key}"))
            .header("content-type", "application/json")
            .body(r#"{"value": false, "comment": "no"}"#)
            .send()
    };
    assert_eq!(thumbs(BETA_READ_ONLY).await.unwrap().status(), 403);
    let ok = thumbs(BETA_READ_FEEDBACK).await.unwrap();
    assert_eq!(ok.status(), 200);
    let stored = stored_scores(&stack, "ProjectId, Value", &format!("SpanId = '{span_id}'")).await;
    assert_eq!(stored.len(), 1);
    assert_eq!((stored[0]["ProjectId"].as_str(), stored[0]["Value"].as_f64()), (Some(BETA), Some(0.0)));
    // A form post (not JSON) is refused even with a key.
    let form = client
        .post(&feedback)
        .header("authorization", format!("Bearer {BETA_READ_FEEDBACK}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("value=false")
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explorer_without_keys_answers_only_loopback_names_and_ip_literals() {
    let stack = start_stack(|_| {}).await;
    let client = reqwest::Client::new();
    let url = format!("{}/api/info", stack.ui_url());
    let ok = client.get(&url).send().await.unwrap();
    assert_eq!(ok.status(), 200);
    // A DNS-rebinding page would reach the explorer with its own name in `Host`.
    let rebound = client.get(&url).header("host", "attacker.example:4319").send().await.unwrap();
    assert_eq!(rebound.status(), 421);
    let local = client.get(&url).header("host", "localhost:4319").send().await.unwrap();
    assert_eq!(local.status(), 200);
}

/// The policy the explorer must send (written out here, not taken from the crate, so a weakened
/// constant fails the test).
fn promptlog_csp() -> &'static str {
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; \
     frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
}
