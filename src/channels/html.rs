//! The little HTML work an email needs: rewriting `<a href>` links (click tracking), adding
//! the open pixel, and deriving the plain-text part from the HTML body.
//!
//! Owns: a forgiving scanner over tags and text (not a full HTML parser: email bodies are
//! written by people and templates, and a scanner that never fails and never reorders text is
//! what these three jobs need).
//! Must not: render templates (that is `template`) or decide whether to track (that is
//! `prepare`).

/// Calls `rewrite` with the URL of every `<a href>` (entities decoded) and replaces the URL
/// with its answer when it returns `Some`. Everything else is kept byte for byte.
pub fn rewrite_links(html: &str, mut rewrite: impl FnMut(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(html.len() + 256);
    let mut rest = html;
    while let Some(start) = rest.find('<') {
        out.push_str(&rest[..start]);
        let tag_text = &rest[start..];
        if !starts_tag(tag_text) {
            out.push('<');
            rest = &tag_text[1..];
            continue;
        }
        let end = tag_end(tag_text);
        let tag = &tag_text[..end];
        if tag_name(tag).eq_ignore_ascii_case("a") {
            if let Some((from, to)) = find_attribute(tag, "href") {
                let url = decode_entities(tag[from..to].trim());
                if let Some(new) = rewrite(&url) {
                    out.push_str(&tag[..from]);
                    out.push_str(&escape_attribute(&new));
                    out.push_str(&tag[to..]);
                    rest = &tag_text[end..];
                    continue;
                }
            }
        }
        out.push_str(tag);
        rest = &tag_text[end..];
    }
    out.push_str(rest);
    out
}

/// Inserts `fragment` before the last `</body>`, or at the end when there is none.
pub fn insert_before_body_end(html: &str, fragment: &str) -> String {
    let lower = html.to_ascii_lowercase();
    match lower.rfind("</body") {
        Some(at) => format!("{}{fragment}{}", &html[..at], &html[at..]),
        None => format!("{html}{fragment}"),
    }
}

/// The plain-text version of an HTML body: tags removed, block elements on their own lines,
/// list items as `- `, links kept as `text (URL)`, `<script>`/`<style>`/`<head>` dropped,
/// entities decoded, runs of blank lines collapsed.
pub fn to_text(html: &str) -> String {
    let mut text = String::new();
    let mut rest = html;
    // The open `<a>`: its URL and where its text starts in `text`.
    let mut link: Option<(String, usize)> = None;
    while !rest.is_empty() {
        let Some(start) = rest.find('<') else {
            push_text(&mut text, rest);
            break;
        };
        push_text(&mut text, &rest[..start]);
        let tag_text = &rest[start..];
        if !starts_tag(tag_text) {
            push_text(&mut text, "<");
            rest = &tag_text[1..];
            continue;
        }
        let end = tag_end(tag_text);
        let tag = &tag_text[..end];
        rest = &tag_text[end..];
        if tag.starts_with("<!--") {
            continue;
        }
        let name = tag_name(tag).to_ascii_lowercase();
        let closing = tag.starts_with("</");
        match name.as_str() {
            "script" | "style" | "head" | "title" if !closing => {
                // Skip to the matching close tag.
                let close = format!("</{name}");
                let lower = rest.to_ascii_lowercase();
                rest = match lower.find(&close) {
                    Some(at) => {
                        let after = &rest[at..];
                        &after[tag_end(after)..]
                    }
                    None => "",
                };
            }
            "a" if !closing => {
                link = find_attribute(tag, "href")
                    .map(|(from, to)| (decode_entities(tag[from..to].trim()), text.len()));
            }
            "a" => {
                if let Some((url, at)) = link.take() {
                    let label = text[at..].trim().to_string();
                    let shown = url.strip_prefix("mailto:").unwrap_or(&url);
                    if !url.is_empty() && !url.starts_with('#') && label != url && label != shown {
                        if label.is_empty() {
                            push_word(&mut text, shown);
                        } else {
                            push_word(&mut text, &format!("({shown})"));
                        }
                    }
                }
            }
            "br" => text.push('\n'),
            "li" if !closing => {
                new_line(&mut text);
                text.push_str("- ");
            }
            "p" | "div" | "h1" | "h2" | "h3" | "h4" | "h5" | "h6" | "ul" | "ol" | "table"
            | "blockquote" | "section" | "article" | "header" | "footer" => {
                new_paragraph(&mut text);
            }
            "tr" | "li" | "hr" => new_line(&mut text),
            "td" | "th"
                if !closing
                    && !text.ends_with('\n')
                    && !text.is_empty()
                    && !text.ends_with(' ') =>
            {
                text.push(' ');
            }
            _ => {}
        }
    }
    tidy(&text)
}

/// `&amp;`, `&lt;`, `&gt;`, `&quot;`, `&#39;`, `&apos;`, `&nbsp;` and numeric references;
/// anything else is kept as written.
pub fn decode_entities(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        let candidate = &rest[at..];
        let Some(semi) = candidate[..candidate.len().min(12)].find(';') else {
            out.push('&');
            rest = &candidate[1..];
            continue;
        };
        let entity = &candidate[1..semi];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            "nbsp" => Some('\u{a0}'),
            _ => entity
                .strip_prefix("#x")
                .or_else(|| entity.strip_prefix("#X"))
                .and_then(|hex| u32::from_str_radix(hex, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &candidate[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &candidate[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Escapes a value for a double-quoted HTML attribute.
pub fn escape_attribute(value: &str) -> String {
    value
        .replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Whether the `<` at the start of `text` opens a tag (`<a`, `</a`, `<!--`), not a literal
/// `<` as in `a < b`.
fn starts_tag(text: &str) -> bool {
    let mut chars = text.chars().skip(1);
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '!' => true,
        Some('/') => chars.next().is_some_and(|c| c.is_ascii_alphabetic()),
        _ => false,
    }
}

/// The length of the tag at the start of `text` (which starts with `<`), through its `>`;
/// quotes are respected; an unclosed tag runs to the end.
fn tag_end(text: &str) -> usize {
    if text.starts_with("<!--") {
        return text.find("-->").map_or(text.len(), |at| at + 3);
    }
    let mut quote = None;
    for (i, c) in text.char_indices().skip(1) {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '>') => return i + 1,
            _ => {}
        }
    }
    text.len()
}

/// `a` for `<a href=...>` and `</a>`.
fn tag_name(tag: &str) -> &str {
    let body = tag.trim_start_matches('<').trim_start_matches('/');
    let end = body
        .find(|c: char| !c.is_ascii_alphanumeric())
        .unwrap_or(body.len());
    &body[..end]
}

/// The byte range of attribute `name`'s value inside `tag` (without quotes).
fn find_attribute(tag: &str, name: &str) -> Option<(usize, usize)> {
    let bytes = tag.as_bytes();
    let mut i = 1 + tag_name(tag).len() + usize::from(tag.starts_with("</"));
    while i < bytes.len() {
        while i < bytes.len() && (bytes[i].is_ascii_whitespace() || bytes[i] == b'/') {
            i += 1;
        }
        let name_start = i;
        while i < bytes.len() && !b" \t\r\n=>/".contains(&bytes[i]) {
            i += 1;
        }
        let attribute = &tag[name_start..i];
        if attribute.is_empty() {
            return None;
        }
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= bytes.len() || bytes[i] != b'=' {
            continue;
        }
        i += 1;
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        let (from, to) = match bytes.get(i) {
            Some(&q @ (b'"' | b'\'')) => {
                let from = i + 1;
                let to = tag[from..]
                    .find(q as char)
                    .map_or(tag.len(), |at| from + at);
                i = to + 1;
                (from, to)
            }
            _ => {
                let from = i;
                while i < bytes.len() && !b" \t\r\n>".contains(&bytes[i]) {
                    i += 1;
                }
                (from, i)
            }
        };
        if attribute.eq_ignore_ascii_case(name) {
            return Some((from, to));
        }
    }
    None
}

/// Appends text content with HTML whitespace rules (runs become one space).
fn push_text(out: &mut String, raw: &str) {
    let decoded = decode_entities(raw);
    for c in decoded.chars() {
        if c.is_whitespace() && c != '\u{a0}' {
            if !out.is_empty() && !out.ends_with(' ') && !out.ends_with('\n') {
                out.push(' ');
            }
        } else if c == '\u{a0}' {
            out.push(' ');
        } else {
            out.push(c);
        }
    }
}

fn push_word(out: &mut String, word: &str) {
    if !out.is_empty() && !out.ends_with(' ') && !out.ends_with('\n') {
        out.push(' ');
    }
    out.push_str(word);
}

fn new_line(out: &mut String) {
    while out.ends_with(' ') {
        out.pop();
    }
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
}

fn new_paragraph(out: &mut String) {
    new_line(out);
    if !out.is_empty() && !out.ends_with("\n\n") {
        out.push('\n');
    }
}

/// Trims each line, drops leading/trailing blank lines, keeps at most one blank line in a row.
fn tidy(text: &str) -> String {
    let mut out = String::new();
    let mut blank = 0;
    for line in text.lines().map(str::trim) {
        if line.is_empty() {
            blank += 1;
            continue;
        }
        if !out.is_empty() {
            out.push_str(if blank > 0 { "\n\n" } else { "\n" });
        }
        blank = 0;
        out.push_str(line);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_only_anchor_hrefs() {
        let html = r#"<p>Hi <a class="x" href="https://a.example/?x=1&amp;y=2">shop</a>
<link href="https://css.example/s.css"><A HREF='http://b.example'>b</A> <a name=top>t</a></p>"#;
        let mut seen = Vec::new();
        let out = rewrite_links(html, |url| {
            seen.push(url.to_string());
            Some(format!("https://t.example/{}", seen.len()))
        });
        assert_eq!(seen, ["https://a.example/?x=1&y=2", "http://b.example"]);
        assert_eq!(
            out,
            r#"<p>Hi <a class="x" href="https://t.example/1">shop</a>
<link href="https://css.example/s.css"><A HREF='https://t.example/2'>b</A> <a name=top>t</a></p>"#
        );
    }

    #[test]
    fn unquoted_and_spaced_attributes() {
        let out = rewrite_links("<a  href = https://x.example/>x</a>", |_| {
            Some("https://t/1?a&b".into())
        });
        assert_eq!(out, "<a  href = https://t/1?a&amp;b>x</a>");
    }

    #[test]
    fn a_none_answer_keeps_the_link() {
        let html = r#"<a href="mailto:x@y">m</a>"#;
        assert_eq!(rewrite_links(html, |_| None), html);
    }

    #[test]
    fn broken_html_does_not_panic() {
        for html in [
            "<a href=\"x",
            "<",
            "a < b and c > d",
            "<a href='x'",
            "<!-- <a href=x>",
        ] {
            let _ = rewrite_links(html, |_| Some("y".into()));
            let _ = to_text(html);
        }
        assert_eq!(to_text("a < b and c > d"), "a < b and c > d");
    }

    #[test]
    fn pixel_goes_before_body_end() {
        assert_eq!(
            insert_before_body_end("<html><BODY>x</BODY></html>", "<img>"),
            "<html><BODY>x<img></BODY></html>"
        );
        assert_eq!(insert_before_body_end("<p>x</p>", "<img>"), "<p>x</p><img>");
    }

    #[test]
    fn text_from_html() {
        let html = r#"<html><head><title>T</title><style>p{color:red}</style></head><body>
<h1>Hello   Ana &amp; co</h1>
<p>Your cart is waiting.<br>Total: 10&nbsp;&euro;</p>
<ul><li>One</li><li>Two</li></ul>
<p><a href="https://shop.example/cart?a=1&amp;b=2">Back to your cart</a>
or <a href="https://shop.example/">https://shop.example/</a>.</p>
<script>alert(1)</script>
<p><a href="mailto:help@shop.example">help@shop.example</a></p>
</body></html>"#;
        assert_eq!(
            to_text(html),
            "Hello Ana & co\n\nYour cart is waiting.\nTotal: 10 &euro;\n\n- One\n- Two\n\n\
             Back to your cart (https://shop.example/cart?a=1&b=2) or https://shop.example/.\n\n\
             help@shop.example"
        );
    }

    #[test]
    fn entities() {
        assert_eq!(
            decode_entities("&lt;&#60;&#x3c;&amp;&unknown;&"),
            "<<<&&unknown;&"
        );
    }
}
