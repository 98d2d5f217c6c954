//! The explorer's static files, embedded in the binary: no build step, nothing read from disk.

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

/// The one page; every view is rendered into it by the script.
const INDEX_HTML: &str = include_str!("assets/index.html");
/// The page's script (no dependencies; writes stored values with `textContent` only).
const EXPLORER_JS: &str = include_str!("assets/explorer.js");
/// The page's stylesheet.
const EXPLORER_CSS: &str = include_str!("assets/explorer.css");
/// The tab icon (so the browser's automatic `/favicon.ico` request finds one).
const FAVICON_SVG: &str = include_str!("assets/favicon.svg");

/// Every file: its path, content type and body.
const FILES: [(&str, &str, &str); 4] = [
    ("/", "text/html; charset=utf-8", INDEX_HTML),
    ("/explorer.js", "text/javascript; charset=utf-8", EXPLORER_JS),
    ("/explorer.css", "text/css; charset=utf-8", EXPLORER_CSS),
    ("/favicon.ico", "image/svg+xml", FAVICON_SVG),
];

/// `GET` of each of [`FILES`].
pub(super) fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    FILES.iter().fold(Router::new(), |router, &(path, content_type, body)| {
        router.route(path, get(move || async move { ([(header::CONTENT_TYPE, content_type)], body).into_response() }))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_has_no_inline_script_or_style_and_the_script_never_writes_html() {
        // The CSP would block them anyway; this keeps the page working under it.
        assert!(!INDEX_HTML.contains("<script>"), "inline script");
        let handler = INDEX_HTML.split(" on").skip(1).any(|rest| {
            let name: String = rest.chars().take_while(char::is_ascii_lowercase).collect();
            !name.is_empty() && rest[name.len()..].starts_with('=')
        });
        assert!(!handler, "inline event handler attribute");
        assert!(!INDEX_HTML.contains("style="), "inline style");
        assert!(INDEX_HTML.contains(r#"<script src="/explorer.js" defer></script>"#));
        for sink in ["innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"] {
            assert!(!EXPLORER_JS.contains(sink), "explorer.js uses {sink}");
        }
    }
}
