//! Untrusted text made safe for where it is shown: terminals, Markdown, XML, and URLs that may
//! hold credentials.
//!
//! Values from flag files, backends and git (actor ids, descriptions, flag names a backend
//! lists, commit messages, author names, server messages) reach every output.
//! The schema gate refuses control characters in the registry's own files, but what a backend
//! or git returns was never checked, so every printer escapes whatever it is handed.
//! It is pure: it is handed text and returns text.

use std::borrow::Cow;

/// Whether `character` is a control character: C0, DEL or C1 (Unicode's `Cc` category).
pub fn is_control(character: char) -> bool {
    character.is_control()
}

/// `text` with every control character but line feeds and tabs written as a visible `\u001b`.
///
/// Used on everything written to a terminal, so that no value can move the cursor, change
/// colours, set the window title or hide what comes before it.
/// The escape is also valid inside a JSON string: only C1 controls and DEL appear raw in
/// `serde_json`'s output, always inside strings, and `\u0085` means the same character there.
pub fn terminal(text: &str) -> Cow<'_, str> {
    escape_controls(text, |character| matches!(character, '\n' | '\t'))
}

/// `text` on one line: every control character, line feeds and tabs included, as `\u000a`.
pub fn one_line(text: &str) -> Cow<'_, str> {
    escape_controls(text, |_| false)
}

/// `text` as inline Markdown that renders as the text itself.
///
/// Control characters (line breaks included) become visible escapes, so a value cannot start a
/// new line, table row or block; every character that can open or close inline Markdown is
/// backslash-escaped, so a value cannot open emphasis, a link, a code span, math, an HTML
/// comment or tag, or end a table cell.
/// The text is never at the start of a line, so the characters that only matter there
/// (`-`, `+`, `1.`) are left alone.
pub fn markdown(text: &str) -> String {
    let flat = one_line(text);
    let mut out = String::with_capacity(flat.len() + 8);
    for character in flat.chars() {
        if "\\`*_[]<>|~&$#!".contains(character) {
            out.push('\\');
        }
        out.push(character);
    }
    out
}

/// `text` as a Markdown code span that renders as the text itself, or as escaped text
/// (`markdown`) when it holds what a code span cannot hold safely.
///
/// Inside a code span nothing can be escaped: a backtick would end it, a pipe would still end
/// a table cell, and a control character or `<` would be shown raw to whatever reads the
/// Markdown source (a `<!--` there is inert for GitLab, but not for a script looking for the
/// note's marker).
pub fn markdown_code(text: &str) -> String {
    if text
        .chars()
        .any(|character| is_control(character) || "`|<\\".contains(character))
    {
        markdown(text)
    } else {
        format!("`{text}`")
    }
}

/// `text` with every character XML 1.0 does not allow replaced by U+FFFD.
///
/// XML 1.0 allows tab, line feed, carriage return and everything from U+0020 except the
/// surrogates, U+FFFE and U+FFFF; any other character makes the document not well-formed, and
/// no escape (`&#x1b;` included) is allowed for it.
pub fn xml(text: &str) -> Cow<'_, str> {
    if text.chars().all(allowed_in_xml) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(
        text.chars()
            .map(|character| {
                if allowed_in_xml(character) {
                    character
                } else {
                    '\u{fffd}'
                }
            })
            .collect(),
    )
}

/// `url` with any user name and password, and the value of any query parameter that carries a
/// credential (`private_token=`, `access_token=`, `api_key=`, ...: [`is_secret_parameter`]),
/// replaced by `***`, so a credential written into a backend's or an environment's URL is never
/// printed.
///
/// Only the user-info part between `://` and the first `@` of the authority and those values
/// are touched; a URL without either is returned as it is.
pub fn redact_url(url: &str) -> Cow<'_, str> {
    let Some(scheme_end) = url.find("://") else {
        return Cow::Borrowed(url);
    };
    let authority_start = scheme_end + 3;
    let rest = &url[authority_start..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let mut out = match rest[..authority_end].rfind('@') {
        Some(at) => Cow::Owned(format!("{}***{}", &url[..authority_start], &rest[at..])),
        None => Cow::Borrowed(url),
    };
    let Some(query_start) = out.find('?').map(|at| at + 1) else {
        return out;
    };
    let query_end = out[query_start..].find('#').map_or(out.len(), |at| query_start + at);
    let query = &out[query_start..query_end];
    if !query
        .split('&')
        .any(|pair| pair.split_once('=').is_some_and(|(name, _)| is_secret_parameter(name)))
    {
        return out;
    }
    let redacted: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, _)) if is_secret_parameter(name) => format!("{name}=***"),
            _ => pair.to_string(),
        })
        .collect();
    out = Cow::Owned(format!(
        "{}{}{}",
        &out[..query_start],
        redacted.join("&"),
        &out[query_end..]
    ));
    out
}

/// Whether a URL's query parameter `name` carries a credential: a name holding `token`,
/// `secret`, `password`, `passwd`, `apikey`, `api_key` or `access_key` (in any case, `-` read as
/// `_`), or one of `key`, `sig`, `signature` and `auth`.
pub fn is_secret_parameter(name: &str) -> bool {
    let name = name.to_ascii_lowercase().replace('-', "_");
    [
        "token",
        "secret",
        "password",
        "passwd",
        "apikey",
        "api_key",
        "access_key",
    ]
    .iter()
    .any(|word| name.contains(word))
        || matches!(name.as_str(), "key" | "sig" | "signature" | "auth")
}

/// Replaces every URL with credentials in `text` (a message that may quote one) by its
/// redacted form.
pub fn redact_urls(text: &str) -> Cow<'_, str> {
    if !text.contains("://") {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(found) = rest.find("://") {
        // The scheme starts at the last character before `://` that cannot be in a scheme.
        let scheme_start = rest[..found]
            .rfind(|character: char| !(character.is_ascii_alphanumeric() || "+-.".contains(character)))
            .map_or(0, |at| at + 1);
        let url_end = found
            + rest[found..]
                .find(|character: char| character.is_whitespace() || "\"'`<>".contains(character))
                .unwrap_or(rest.len() - found);
        out.push_str(&rest[..scheme_start]);
        out.push_str(&redact_url(&rest[scheme_start..url_end]));
        rest = &rest[url_end..];
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// What any text becomes before it is printed: credentials in URLs redacted, control
/// characters but line feeds and tabs escaped.
pub fn shown(text: &str) -> Cow<'_, str> {
    match redact_urls(text) {
        Cow::Borrowed(text) => terminal(text),
        Cow::Owned(text) => Cow::Owned(terminal(&text).into_owned()),
    }
}

/// Whether `text` is a URL (`scheme://...`) that names a user or a password before its host, or
/// carries a credential in its query (`?private_token=...`).
pub fn has_credentials(text: &str) -> bool {
    let scheme = text.split("://").next().unwrap_or_default();
    let is_scheme = scheme.starts_with(|character: char| character.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|character| character.is_ascii_alphanumeric() || "+-.".contains(character));
    is_scheme && text.len() > scheme.len() && matches!(redact_url(text), Cow::Owned(_))
}

fn allowed_in_xml(character: char) -> bool {
    matches!(character, '\t' | '\n' | '\r' | '\u{20}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' | '\u{10000}'..)
}

fn escape_controls(text: &str, keep: impl Fn(char) -> bool) -> Cow<'_, str> {
    if !text.chars().any(|character| is_control(character) && !keep(character)) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for character in text.chars() {
        if is_control(character) && !keep(character) {
            out.push_str(&format!("\\u{:04x}", u32::from(character)));
        } else {
            out.push(character);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_escapes_controls_but_keeps_lines() {
        assert_eq!(
            terminal("a\u{1b}[31mb\nc\td\r\u{9b}"),
            "a\\u001b[31mb\nc\td\\u000d\\u009b"
        );
        assert!(matches!(terminal("plain"), Cow::Borrowed(_)));
        let json = serde_json::to_string("x\u{85}\u{7f}").unwrap();
        let escaped = terminal(&json);
        assert_eq!(serde_json::from_str::<String>(&escaped).unwrap(), "x\u{85}\u{7f}");
    }

    #[test]
    fn markdown_cannot_start_a_line_or_a_comment() {
        let escaped = markdown("a\n**No production changes**<!-- | x");
        assert!(!escaped.contains('\n'));
        assert!(!escaped.contains("<!"));
        assert!(!escaped.contains("**"));
        assert!(!escaped.replace("\\|", "").contains('|'));
    }

    #[test]
    fn xml_replaces_what_xml_forbids() {
        assert_eq!(xml("a\u{1b}b\u{0}\tc\u{fffe}"), "a\u{fffd}b\u{fffd}\tc\u{fffd}");
    }

    #[test]
    fn redact_url_hides_credentials_in_queries() {
        assert_eq!(
            redact_url("https://prom/api?private_token=glpat-1&query=up#x"),
            "https://prom/api?private_token=***&query=up#x"
        );
        assert_eq!(
            redact_url("https://h/?X-Api-Key=k&key=v&author=ada"),
            "https://h/?X-Api-Key=***&key=***&author=ada"
        );
        assert_eq!(
            redact_url("https://h/?q=token&keyword=a"),
            "https://h/?q=token&keyword=a"
        );
        assert!(has_credentials("https://h/?access_token=a"));
        assert!(!has_credentials("https://h/?sort=desc"));
        assert_eq!(
            redact_urls("failed: GET http://h/q?apikey=s3cret (timeout)"),
            "failed: GET http://h/q?apikey=*** (timeout)"
        );
    }

    #[test]
    fn redact_url_hides_user_info_only() {
        assert_eq!(redact_url("https://user:pass@host/a@b"), "https://***@host/a@b");
        assert_eq!(redact_url("https://host/a@b"), "https://host/a@b");
        assert_eq!(redact_url("postgres://u:p@db:5432/x"), "postgres://***@db:5432/x");
        assert_eq!(redact_url("not a url"), "not a url");
        assert!(has_credentials("http://token@host"));
        assert!(!has_credentials("http://host/?who=a@b"));
        assert_eq!(
            redact_urls("GET https://u:p@h/api failed; see http://x/y"),
            "GET https://***@h/api failed; see http://x/y"
        );
    }
}
