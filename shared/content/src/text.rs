//! A readable plain-text part derived from the HTML, for templates without a
//! written `.txt`.

/// Strips the markup: drops `<head>`, `<style>` and comments, turns block
/// ends into line breaks and links into `text (url)`, decodes the common
/// entities and collapses blank runs.
pub fn html_to_text(html: &str) -> String {
    let body = html.find("<body").map_or(html, |i| &html[i..]);
    let mut out = String::with_capacity(body.len() / 4);
    let mut rest = body;
    let mut href: Option<String> = None;
    while let Some(lt) = rest.find('<') {
        out.push_str(&rest[..lt]);
        let after = &rest[lt..];
        if let Some(stripped) = after.strip_prefix("<!--") {
            rest = stripped.find("-->").map_or("", |e| &stripped[e + 3..]);
            continue;
        }
        let Some(gt) = after.find('>') else { break };
        let tag = &after[1..gt];
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase();
        rest = &after[gt + 1..];
        match name.as_str() {
            "style" | "script" | "title" if !tag.starts_with('/') => {
                let close = format!("</{name}");
                rest = rest.find(&close).map_or("", |e| &rest[e..]);
            }
            "br" | "p" | "div" | "tr" | "h1" | "h2" | "h3" | "li" | "table" if tag.starts_with('/') || name == "br" => {
                out.push('\n')
            }
            "td" | "th" if tag.starts_with('/') => out.push_str("   "),
            "a" if !tag.starts_with('/') => {
                href = tag.split("href=\"").nth(1).and_then(|h| h.split('"').next()).map(str::to_owned);
            }
            "a" => {
                if let Some(h) = href.take().filter(|h| !h.is_empty() && !out.trim_end().ends_with(h.as_str())) {
                    out.push_str(&format!(" ({h})"));
                }
            }
            _ => {}
        }
    }
    out.push_str(rest);
    let decoded = out
        .replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&#x2f;", "/")
        .replace("&#47;", "/")
        .replace("&amp;", "&");
    let mut text = String::new();
    let mut blank = 0;
    for line in decoded.lines().map(|l| l.split_whitespace().collect::<Vec<_>>().join(" ")) {
        if line.is_empty() {
            blank += 1;
            if blank == 1 && !text.is_empty() {
                text.push('\n');
            }
        } else {
            blank = 0;
            text.push_str(&line);
            text.push('\n');
        }
    }
    text.trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_becomes_readable_text_with_links_spelled_out() {
        let html = "<html><head><style>p{}</style></head><body><!-- x --><p>Hello&nbsp;Ada</p><p><a href=\"https://s.example/r\">Resume checkout</a></p><table><tr><td>Shoe</td><td>$1</td></tr></table></body></html>";
        assert_eq!(html_to_text(html), "Hello Ada\nResume checkout (https://s.example/r)\nShoe $1");
    }
}
