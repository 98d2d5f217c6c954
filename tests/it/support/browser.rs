//! Debian's chromium, headless, driven over the DevTools protocol (`chromiumoxide`), for the
//! explorer's browser test. `scripts/setup.sh` installs chromium; `PROMPTLOG_CHROMIUM` names another
//! binary. Nothing here needs the network: the browser only talks to the test's own explorer.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chromiumoxide::browser::{Browser, BrowserConfig};
use chromiumoxide::page::{Page, ScreenshotParams};
use futures::StreamExt;

/// Where Debian puts chromium.
const DEFAULT_CHROMIUM: &str = "/usr/bin/chromium";
/// Longest a page may take to reach the state a test waits for.
pub const PAGE_TIMEOUT: Duration = Duration::from_secs(20);

/// A running headless chromium; closed (and its profile removed) on drop.
pub struct Chromium {
    pub browser: Browser,
    handler: tokio::task::JoinHandle<()>,
    _profile: tempfile::TempDir,
}

impl Chromium {
    /// Starts chromium with a fresh profile and a laptop-sized window (1440×900).
    pub async fn launch() -> Chromium {
        let binary = std::env::var("PROMPTLOG_CHROMIUM").unwrap_or_else(|_| DEFAULT_CHROMIUM.to_owned());
        assert!(
            Path::new(&binary).exists(),
            "chromium not found at {binary}: run scripts/setup.sh (installs Debian's chromium) or set PROMPTLOG_CHROMIUM"
        );
        let profile = tempfile::tempdir().unwrap();
        let config = BrowserConfig::builder()
            .chrome_executable(&binary)
            .new_headless_mode()
            // Tests run as root, where chromium's sandbox cannot start.
            .no_sandbox()
            .user_data_dir(profile.path())
            .window_size(1440, 900)
            .viewport(None)
            .launch_timeout(Duration::from_secs(60))
            .request_timeout(Duration::from_secs(30))
            .args(["disable-gpu", "disable-dev-shm-usage", "no-first-run", "hide-scrollbars"])
            .build()
            .expect("chromium config");
        let (browser, mut events) = Browser::launch(config).await.expect("launch chromium");
        // The protocol's event loop; it ends when the browser goes away.
        let handler = tokio::spawn(async move { while events.next().await.is_some() {} });
        Chromium { browser, handler, _profile: profile }
    }

    /// Opens `url` in a new tab.
    pub async fn open(&self, url: &str) -> Page {
        let page = self.browser.new_page(url).await.unwrap_or_else(|e| panic!("open {url}: {e}"));
        page.wait_for_navigation().await.expect("navigation");
        page
    }

    /// Stops the browser and waits for it.
    pub async fn close(mut self) {
        let _ = self.browser.close().await;
        let _ = self.browser.wait().await;
        self.handler.abort();
    }
}

/// Evaluates `expression` in `page` and returns its JSON value.
pub async fn eval(page: &Page, expression: &str) -> serde_json::Value {
    let result = page.evaluate(expression).await.unwrap_or_else(|e| panic!("evaluate {expression}: {e}"));
    result.value().cloned().unwrap_or(serde_json::Value::Null)
}

/// Waits until `expression` is truthy in `page`; fails with `what` and the page's text otherwise.
pub async fn wait_until(page: &Page, expression: &str, what: &str) {
    let started = Instant::now();
    loop {
        let value = eval(page, &format!("Boolean({expression})")).await;
        if value == serde_json::Value::Bool(true) {
            return;
        }
        if started.elapsed() > PAGE_TIMEOUT {
            let text = eval(page, "document.body.innerText").await;
            panic!("timed out waiting for {what} ({expression}); the page shows:\n{}", text.as_str().unwrap_or(""));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Clicks the element `selector` selects, then waits until `expression` is truthy.
pub async fn click_then(page: &Page, selector: &str, expression: &str, what: &str) {
    page.find_element(selector).await.unwrap_or_else(|e| panic!("{selector}: {e}")).click().await.unwrap();
    wait_until(page, expression, what).await;
}

/// The folder this run's screenshots go to (printed, so a failing run can be looked at).
pub fn screenshot_dir(test: &str) -> PathBuf {
    let base = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    let dir = base.join("explorer-screenshots").join(test);
    std::fs::create_dir_all(&dir).unwrap();
    eprintln!("[explorer_ui] screenshots of {test} in {}", dir.display());
    dir
}

/// Saves a PNG of the page as `dir/name.png` (the whole page when `full`, else the window) and
/// returns its path.
pub async fn screenshot(page: &Page, dir: &Path, name: &str, full: bool) -> PathBuf {
    let path = dir.join(format!("{name}.png"));
    let params = ScreenshotParams::builder().full_page(full).build();
    page.save_screenshot(params, &path).await.unwrap_or_else(|e| panic!("screenshot {name}: {e}"));
    assert!(std::fs::metadata(&path).unwrap().len() > 1000, "{} is empty", path.display());
    path
}
