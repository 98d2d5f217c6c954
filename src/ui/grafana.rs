//! Links from a call to its trace in Grafana. The link is the one the provisioned dashboards use
//! (taken from `grafana/dashboards/overview.json` at build time), so the explorer and the dashboards
//! open the same Explore view and cannot drift apart.

use std::sync::LazyLock;

/// The Overview dashboard, which links trace ids to Grafana's trace view.
const OVERVIEW_DASHBOARD: &str = include_str!("../../grafana/dashboards/overview.json");
/// Where a dashboard link puts the clicked trace id.
const TRACE_ID_PLACEHOLDER: &str = "${__value.raw}";

/// The dashboards' Explore link for a trace, with [`TRACE_ID_PLACEHOLDER`] in it.
static TRACE_LINK: LazyLock<Option<String>> = LazyLock::new(|| {
    let dashboard: serde_json::Value = serde_json::from_str(OVERVIEW_DASHBOARD).ok()?;
    find_trace_link(&dashboard)
});

fn find_trace_link(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::Object(map) => {
            if let Some(serde_json::Value::String(url)) = map.get("url")
                && url.starts_with("/explore")
                && url.contains(TRACE_ID_PLACEHOLDER)
            {
                return Some(url.clone());
            }
            map.values().find_map(find_trace_link)
        }
        serde_json::Value::Array(items) => items.iter().find_map(find_trace_link),
        _ => None,
    }
}

/// The URL of `trace_id`'s trace in the Grafana at `base` (e.g. `http://localhost:3000`); `None`
/// when no Grafana is configured or the id is not a 32-digit hex trace id (so nothing but hex digits
/// is ever put into the link).
pub(super) fn trace_url(base: &str, trace_id: &str) -> Option<String> {
    let hex = trace_id.len() == 32 && trace_id.bytes().all(|b| b.is_ascii_hexdigit());
    if base.is_empty() || !hex {
        return None;
    }
    let link = TRACE_LINK.as_ref()?;
    Some(format!("{}{}", base.trim_end_matches('/'), link.replace(TRACE_ID_PLACEHOLDER, trace_id)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trace_link_is_the_dashboards_explore_link_with_the_trace_id() {
        let trace = "0af7651916cd43dd8448eb211c80319c";
        let url = trace_url("http://grafana.local:3000/", trace).expect("the overview dashboard links traces");
        assert!(url.starts_with("http://grafana.local:3000/explore?"), "{url}");
        assert!(url.contains(&format!("WITH%20%27{trace}%27%20AS%20trace_id")), "{url}");
        assert!(!url.contains("${"), "{url}");
        assert_eq!(trace_url("", trace), None);
        assert_eq!(trace_url("http://g", "not-a-trace-id'%27"), None);
    }
}
