//! HTML building blocks: escaping and the page layout every page shares.

use crate::auth::Principal;

/// `text` safe inside HTML text and quoted attributes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            other => out.push(other),
        }
    }
    out
}

/// A whole page: `title` in the tab and the header, `body` inside `<main>`. Script and
/// styles are files, never inline. With a `viewer` the header has the navigation and a
/// sign-out button, and the page carries the session's form token for the script.
pub fn page(viewer: Option<&Principal>, title: &str, body: &str) -> String {
    let (meta, nav) = match viewer {
        Some(viewer) => (
            format!(r#"<meta name="csrf-token" content="{}">"#, escape(viewer.csrf())),
            format!(
                r#"<nav aria-label="Main"><a href="/">Upload</a> <a href="/jobs">Recent jobs</a> <a href="/settings">Settings</a></nav><form method="post" action="/logout" class="signout"><input type="hidden" name="csrf" value="{csrf}"><span class="who">{name}</span> <button type="submit" class="link" id="signout">Sign out</button></form>"#,
                csrf = escape(viewer.csrf()),
                name = escape(&viewer.user.display_name),
            ),
        ),
        None => (String::new(), String::new()),
    };
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
{meta}
<title>{title} · minutes</title>
<link rel="stylesheet" href="/static/app.css">
<script src="/static/app.js" defer></script>
</head>
<body>
<header class="top"><a href="/" class="brand">minutes</a>{nav}</header>
<main>
{body}
</main>
</body>
</html>
"#,
        title = escape(title),
    )
}

/// The hidden form-token field every form of a signed-in page starts with.
pub fn csrf_field(viewer: &Principal) -> String {
    format!(r#"<input type="hidden" name="csrf" value="{}">"#, escape(viewer.csrf()))
}

/// `1.5 MB`, `320 KB`.
pub fn size(bytes: i64) -> String {
    let bytes = bytes.max(0) as f64;
    if bytes >= 1e9 {
        format!("{:.1} GB", bytes / 1e9)
    } else if bytes >= 1e6 {
        format!("{:.1} MB", bytes / 1e6)
    } else {
        format!("{:.0} KB", (bytes / 1e3).max(1.0))
    }
}

/// `1:02:05` / `3:07`.
pub fn clock(seconds: f64) -> String {
    let total = seconds.max(0.0) as u64;
    match (total / 3600, total % 3600 / 60, total % 60) {
        (0, m, s) => format!("{m}:{s:02}"),
        (h, m, s) => format!("{h}:{m:02}:{s:02}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_is_escaped() {
        assert_eq!(
            escape(r#"<script>"x" & 'y'</script>"#),
            "&lt;script&gt;&quot;x&quot; &amp; &#39;y&#39;&lt;/script&gt;"
        );
        assert_eq!(size(1_500_000), "1.5 MB");
        assert_eq!(clock(3725.0), "1:02:05");
    }
}
