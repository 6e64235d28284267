//! The browser and operating system of an open or a click, read from its user agent.

/// `(browser, os)` in words people know; "—" when the agent does not say.
pub fn browser_and_os(user_agent: &str) -> (&'static str, &'static str) {
    let ua = user_agent.to_ascii_lowercase();
    let browser = [
        ("micromessenger", "WeChat"),
        ("qqbrowser", "QQ Browser"),
        ("ucbrowser", "UC Browser"),
        ("edg/", "Edge"),
        ("opr/", "Opera"),
        ("microsoft outlook", "Outlook"),
        ("microsoft office", "Outlook"),
        ("thunderbird", "Thunderbird"),
        ("googleimageproxy", "Gmail image proxy"),
        ("yahoomailproxy", "Yahoo image proxy"),
        ("firefox/", "Firefox"),
        ("chrome/", "Chrome"),
        ("crios/", "Chrome"),
        ("version/", "Safari"),
        ("applewebkit", "Apple Mail"),
    ]
    .iter()
    .find(|(needle, _)| ua.contains(needle))
    .map(|(_, name)| *name)
    .unwrap_or("—");
    let os = [
        ("iphone", "iOS"),
        ("ipad", "iPadOS"),
        ("android", "Android"),
        ("harmonyos", "HarmonyOS"),
        ("windows", "Windows"),
        ("mac os x", "macOS"),
        ("macintosh", "macOS"),
        ("cros", "ChromeOS"),
        ("linux", "Linux"),
    ]
    .iter()
    .find(|(needle, _)| ua.contains(needle))
    .map(|(_, name)| *name)
    .unwrap_or("—");
    (browser, os)
}

#[cfg(test)]
mod tests {
    use super::browser_and_os;

    #[test]
    fn reads_common_agents() {
        assert_eq!(
            browser_and_os("Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 Chrome/120.0 Mobile Safari/537.36 MicroMessenger/8.0.47"),
            ("WeChat", "Android")
        );
        assert_eq!(
            browser_and_os("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36"),
            ("Chrome", "Windows")
        );
        assert_eq!(browser_and_os("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148"), ("Apple Mail", "iOS"));
        assert_eq!(browser_and_os(""), ("—", "—"));
    }
}
