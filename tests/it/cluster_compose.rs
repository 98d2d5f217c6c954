//! `compose.cluster.yaml` (issue 16) cannot run here (no Docker, no Keeper): this checks that every
//! file it mounts is in the repo, and that its services are wired to each other and to the config
//! files they mount: ClickHouse nodes ↔ `cluster/clickhouse/cluster.xml` shards and Keeper nodes,
//! Keeper services ↔ `cluster/keeper/keeper.xml` raft members, collectors ↔ the cluster name and
//! `cluster/nginx/nginx.conf` upstreams, Grafana ↔ every variable its provisioning files read.

use std::collections::BTreeSet;

use serde_yaml_ng::Value as Yaml;

/// Every `<tag>value</tag>` in `xml`, in order.
fn tags<'a>(xml: &'a str, tag: &str) -> Vec<&'a str> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    xml.split(open.as_str()).skip(1).filter_map(|s| s.split_once(close.as_str())).map(|(v, _)| v.trim()).collect()
}

fn str_of<'a>(v: &'a Yaml, what: &str) -> &'a str {
    v.as_str().unwrap_or_else(|| panic!("{what}: expected a string, got {v:?}"))
}

#[test]
fn cluster_compose_mounts_existing_files_and_wires_every_service() {
    let root = promptlog_testkit::repo_root();
    let read = |p: &str| std::fs::read_to_string(root.join(p)).unwrap_or_else(|e| panic!("{p}: {e}"));
    let mut doc: Yaml = serde_yaml_ng::from_str(&read("compose.cluster.yaml")).expect("compose.cluster.yaml parses");
    doc.apply_merge().expect("merge keys");
    let services = doc["services"].as_mapping().unwrap();
    let names: BTreeSet<&str> = services.keys().map(|k| str_of(k, "service name")).collect();
    let with_prefix = |p: &str| names.iter().copied().filter(|n| n.starts_with(p)).collect::<BTreeSet<_>>();
    let (keepers, nodes, collectors) = (with_prefix("keeper-"), with_prefix("clickhouse-"), with_prefix("collector-"));
    assert_eq!((keepers.len(), nodes.len(), collectors.len()), (3, 4, 2), "{names:?}");
    for (name, svc) in services {
        let name = str_of(name, "service");
        assert!(svc["image"].is_string(), "{name}: image");
        assert!(svc["healthcheck"]["test"].is_sequence(), "{name}: healthcheck");
        for v in svc["volumes"].as_sequence().into_iter().flatten() {
            let spec = str_of(v, "volume");
            let src = spec.split(':').next().unwrap();
            if src.starts_with("./") {
                assert!(root.join(src).exists(), "{name} mounts {src}, which is not in the repo");
                assert!(spec.ends_with(":ro"), "{spec}: configuration is mounted read-only");
            } else {
                assert!(doc["volumes"].get(src).is_some(), "{name}: named volume {src} is not declared");
            }
        }
        for dep in svc["depends_on"].as_mapping().into_iter().flat_map(|m| m.keys()) {
            assert!(names.contains(str_of(dep, "depends_on")), "{name} depends on unknown service {dep:?}");
        }
        assert_eq!(svc["hostname"].as_str().unwrap_or(name), name, "{name}: hostname is the service name");
    }
    let env = |svc: &str, var: &str| -> String {
        let v = &doc["services"][svc]["environment"][var];
        v.as_str().map(str::to_owned).or_else(|| v.as_u64().map(|n| n.to_string())).unwrap_or_default()
    };

    // Keeper: the raft members and the nodes' <zookeeper> list are exactly the keeper services.
    let keeper_xml = read("cluster/keeper/keeper.xml");
    let raft: BTreeSet<&str> = tags(&keeper_xml, "hostname").into_iter().collect();
    assert_eq!(raft, keepers, "keeper.xml raft members");
    let ids: BTreeSet<String> = keepers.iter().map(|k| env(k, "KEEPER_SERVER_ID")).collect();
    assert_eq!(ids, tags(&keeper_xml, "id").into_iter().map(str::to_owned).collect(), "each keeper's server id");
    assert!(keeper_xml.contains(r#"<server_id from_env="KEEPER_SERVER_ID"/>"#));

    // ClickHouse: 2 shards x 2 replicas, each node's macros match the shard it is listed in.
    let cluster_xml = read("cluster/clickhouse/cluster.xml");
    let zookeeper = tags(&cluster_xml, "zookeeper")[0];
    let zk: BTreeSet<&str> = tags(zookeeper, "host").into_iter().collect();
    assert_eq!(zk, keepers, "cluster.xml <zookeeper> nodes");
    let cluster_name = env("collector-1", "PROMPTLOG_CLICKHOUSE_CLUSTER");
    let remote = tags(&cluster_xml, &cluster_name);
    assert_eq!(remote.len(), 1, "remote_servers defines the cluster {cluster_name}");
    let shards = tags(remote[0], "shard");
    assert_eq!(shards.len(), 2, "two shards");
    let mut listed = BTreeSet::new();
    for shard in &shards {
        assert!(shard.contains("<internal_replication>true</internal_replication>"), "{shard}");
        let hosts = tags(shard, "host");
        assert_eq!(hosts.len(), 2, "two replicas per shard: {hosts:?}");
        let shard_ids: BTreeSet<String> = hosts.iter().map(|h| env(h, "CLICKHOUSE_SHARD")).collect();
        assert_eq!(shard_ids.len(), 1, "{hosts:?} share a {{shard}} macro");
        for h in hosts {
            assert!(nodes.contains(h), "cluster.xml lists {h}, not a service");
            assert_eq!(env(h, "CLICKHOUSE_REPLICA"), h, "{h}: {{replica}} macro");
            listed.insert(h);
        }
    }
    assert_eq!(listed, nodes, "every ClickHouse service is in the cluster");
    assert!(cluster_xml.contains(r#"<shard from_env="CLICKHOUSE_SHARD"/>"#));
    assert!(cluster_xml.contains(r#"<replica from_env="CLICKHOUSE_REPLICA"/>"#));

    // Collectors: cluster mode, own instance id and spool volume, a ClickHouse node to talk to.
    let mut instances = BTreeSet::new();
    for c in &collectors {
        assert_eq!(env(c, "PROMPTLOG_CLICKHOUSE_CLUSTER"), cluster_name, "{c}");
        let url = env(c, "PROMPTLOG_CLICKHOUSE_URL");
        let host = url.trim_start_matches("http://").split(':').next().unwrap().to_owned();
        assert!(nodes.contains(host.as_str()), "{c} writes to {url}");
        instances.insert(env(c, "PROMPTLOG_INSTANCE"));
        let volumes = doc["services"][*c]["volumes"].as_sequence().unwrap();
        assert!(volumes.iter().any(|v| str_of(v, "volume").ends_with(":/var/lib/promptlog")), "{c}: spool volume");
        assert!(doc["services"][*c]["ports"].is_null(), "{c}: reached through the load balancer only");
    }
    assert_eq!(instances.len(), collectors.len(), "distinct instance ids: {instances:?}");

    // Load balancer: its upstreams are exactly the collectors' OTLP ports.
    let nginx = read("cluster/nginx/nginx.conf");
    for port in [4317, 4318] {
        let upstream: BTreeSet<String> = nginx
            .lines()
            .filter_map(|l| l.trim().strip_prefix("server "))
            .filter_map(|s| s.split_whitespace().next())
            .filter(|s| s.trim_end_matches(';').ends_with(&format!(":{port}")))
            .map(|s| s.trim_end_matches(';').trim_end_matches(&format!(":{port}")).to_owned())
            .collect();
        assert_eq!(upstream, collectors.iter().map(|c| c.to_string()).collect(), "nginx upstream for {port}");
        let published = doc["services"]["loadbalancer"]["ports"].as_sequence().unwrap();
        assert!(published.iter().any(|p| str_of(p, "port") == format!("{port}:{port}")), "{port} published");
    }
    assert!(nginx.contains("grpc_pass grpc://collectors_grpc;") && nginx.contains("listen 4317 http2;"));

    // .env.example documents every variable the file reads; a secret is left empty there.
    let vars = crate::privilege::check_env_example("compose.cluster.yaml");
    assert!(vars.contains("PROMPTLOG_CLUSTER_SECRET"), "{vars:?}");

    // Grafana: reads a ClickHouse node, and gets every variable the provisioning files read.
    let host = env("grafana", "PROMPTLOG_CLICKHOUSE_HOST");
    let host = host.trim_start_matches("${PROMPTLOG_CLICKHOUSE_HOST:-").trim_end_matches('}');
    assert!(nodes.contains(host), "Grafana reads {host}");
    for file in ["provisioning/datasources/clickhouse.yaml", "provisioning/alerting/contact-points.yaml"] {
        for var in crate::grafana::env_refs(&read(&format!("grafana/{file}"))) {
            assert!(!env("grafana", &var).is_empty(), "grafana env lacks {var} ({file})");
        }
    }
}
