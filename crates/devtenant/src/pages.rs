//! The shared look of the hosted pages (login, MFA, enrollment) and HTML escaping.

/// Escapes text for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Wraps `body` (trusted HTML) in the tenant's page layout with an escaped `title`.
pub fn layout(title: &str, body: &str) -> String {
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · Dev tenant</title>
<style>
:root {{ color-scheme: light dark; font-family: system-ui, sans-serif; }}
body {{ margin: 0; min-height: 100vh; display: grid; place-items: center; background: Canvas; }}
main {{ width: min(26rem, 92vw); padding: 2rem; border-radius: 12px; box-shadow: 0 2px 16px rgb(0 0 0 / 15%); }}
h1 {{ font-size: 1.4rem; margin-top: 0; }}
label {{ display: block; margin: .8rem 0 .3rem; }}
input {{ width: 100%; box-sizing: border-box; padding: .6rem; font-size: 1rem; }}
button {{ margin-top: 1rem; width: 100%; padding: .7rem; font-size: 1rem; border: 0; border-radius: 6px; background: #3b5bdb; color: white; cursor: pointer; }}
button.secondary {{ background: transparent; color: LinkText; }}
.error {{ color: #c92a2a; }}
.banner {{ font-size: .8rem; opacity: .7; text-align: center; margin-top: 1.5rem; }}
</style>
</head>
<body>
<main>
{body}
<p class="banner">Passkey Companion dev tenant: local, for development only.</p>
</main>
</body>
</html>"#,
        title = escape(title),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_neutralises_markup() {
        assert_eq!(
            escape(r#"<script>"a"&'b'"#),
            "&lt;script&gt;&quot;a&quot;&amp;&#39;b&#39;"
        );
    }
}
