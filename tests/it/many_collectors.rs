//! Many collectors on one database (issue 16): two collector processes, each with its own spool and
//! instance id, started at once (they race for the migration lock) behind a round-robin load
//! balancer ([`RoundRobin`], one connection per request); each is SIGKILLed once while two clients
//! send through the balancer. Afterwards `otel_traces` and `llm_calls` hold exactly the acknowledged
//! spans, none twice, and `collector_stats` (the Collector health dashboard) shows both instances.
//! Single-server ClickHouse (chDB): the cluster itself cannot run here.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::faults::{self, Collector, Ledger};
use crate::support::grafana::{QueryCtx, VarValue, Vars, dashboards, json_str, now_ms, render_dashboard_sql};
use crate::support::proxy::RoundRobin;

const REQUESTS_PER_CLIENT: u32 = 60;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_collectors_behind_a_balancer_each_sigkilled_once_store_every_acknowledged_span_once() {
    let _alone = promptlog_testkit::gate::exclusive().await;
    let dir = tempfile::tempdir().unwrap();
    let db = faults::database("two_collectors");
    let ch = faults::clickhouse(dir.path());
    let (dir_a, dir_b) = (dir.path().join("a"), dir.path().join("b"));
    std::fs::create_dir_all(&dir_a).unwrap();
    std::fs::create_dir_all(&dir_b).unwrap();
    let (mut a, mut b) = tokio::join!(
        Collector::start(&ch, &db, &dir_a, &[("PROMPTLOG_INSTANCE", "collector-a")]),
        Collector::start(&ch, &db, &dir_b, &[("PROMPTLOG_INSTANCE", "collector-b")]),
    );
    let balancer = RoundRobin::start(vec![a.http_addr(), b.http_addr()]).await;
    // No pooled connections: every request is a new connection, so the balancer alternates per request.
    let client = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let senders: Vec<_> = (1..=2)
        .map(|tag| {
            let pace = Duration::from_millis(40);
            tokio::spawn(faults::send_via(
                client.clone(),
                balancer.url(),
                tag,
                REQUESTS_PER_CLIENT,
                pace,
                ledger.clone(),
            ))
        })
        .collect();
    for victim in [&mut a, &mut b] {
        tokio::time::sleep(Duration::from_millis(900)).await;
        victim.kill();
        tokio::time::sleep(Duration::from_millis(400)).await;
        victim.restart().await;
    }
    for s in senders {
        s.await.expect("sender");
    }
    let ledger = std::mem::take(&mut *ledger.lock().unwrap());
    assert_eq!(
        ledger.acked.len() as u64 + ledger.unknown.len() as u64,
        2 * u64::from(REQUESTS_PER_CLIENT) * faults::SPANS_PER_REQUEST
    );
    let served = balancer.served();
    assert!(served.iter().all(|&n| n > 5), "both collectors took requests: {served:?}");
    a.wait_drained(&ch, &db, &ledger).await;
    b.wait_drained(&ch, &db, &ledger).await;
    faults::assert_exact(&ch, &a, &db, &ledger, "two collectors").await;
    assert_eq!(b.dead_letters(), 0, "nothing may be dead-lettered");
    // The Collector health dashboard's "Instances" table, as Grafana sends it, lists both instances.
    let sql = faults::sql(&ch, &db);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        // Rendered again each time: the panel's range ends now, and stats rows come every 10 s.
        let rows = sql.rows(&instances_panel_sql()).await;
        let mut instances: Vec<String> = rows.iter().map(|r| json_str(&r["instance"])).collect();
        instances.sort();
        if instances == ["collector-a", "collector-b"] {
            break;
        }
        assert!(Instant::now() < deadline, "the Instances panel shows {instances:?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    println!("two collectors: balancer connections per collector {served:?}");
}

/// The SQL of the Collector health dashboard's "Instances" panel over the last hour, every variable
/// at "All".
fn instances_panel_sql() -> String {
    let (_, dash) = dashboards().into_iter().find(|(file, _)| file == "collector.json").expect("collector.json");
    let mut vars = Vars::default();
    for v in dash["templating"]["list"].as_array().unwrap() {
        vars.values.insert(v["name"].as_str().unwrap().to_owned(), VarValue::All);
    }
    let panel = dash["panels"].as_array().unwrap().iter().find(|p| p["title"] == "Instances").expect("Instances panel");
    let raw = panel["targets"][0]["rawSql"].as_str().unwrap();
    render_dashboard_sql(raw, &vars, QueryCtx::last(3600, now_ms(), 60_000))
}
