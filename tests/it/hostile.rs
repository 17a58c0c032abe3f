//! Hostile text through every field a reader sees, in every output that shows it: the site's
//! pages (parsed as a browser parses HTML), the Atom feed (parsed as XML), `flags.json` and
//! `search.json` (parsed as JSON) and the merge-request plan note (parsed as Markdown).
//!
//! The text holds no control characters, which validation refuses (`hardening_text.rs`): it is
//! what passes validation and must still come out as inert text.

use std::path::Path;

use scraper::{Html, Selector};
use serde_json::Value;

use crate::harness::{Registry, flag};

/// Markup, a script, an attribute break-out, an entity, a CDATA end, an HTML comment and
/// Markdown emphasis, a table cell end and a `javascript:` link, all at once.
const PAYLOAD: &str = "<script>alert(1)</script>\"'><img src=x onerror=alert(2)>&amp;]]><!--*|[x](javascript:alert(3))";

/// A link's break-out: a quote ending the attribute, then markup.
const URL: &str = "https://e.com/\"><script>alert(5)</script>?x='><svg/onload=alert(6)>";

/// The resolution time of the test's rollout step and site.
const AT: &str = "2026-11-25T12:00:00Z";

/// A registry whose config and flag files carry the payload in every free-text field that
/// passes validation, committed in git with the payload in a commit message too.
fn hostile_registry() -> Registry {
    let registry = Registry::new();
    let quoted = serde_json::to_string(PAYLOAD).unwrap();
    let config = registry
        .read("flagops.yml")
        .replace("  title: GitLab feature flags", &format!("  title: {quoted}"))
        .replace(
            "    description: Hides unfinished code from anyone; becomes gitlab_com_derisk or beta once complete.",
            &format!("    description: {quoted}"),
        )
        .replace(
            "    description: dev.gitlab.org, GitLab's own development instance.\n    url: https://dev.gitlab.org",
            &format!(
                "    description: {quoted}\n    url: {}",
                serde_json::to_string(&URL.replace("e.com", "dev.example.com")).unwrap()
            ),
        );
    registry.write("flagops.yml", config);
    // A URL holds no spaces, but may hold quotes and angle brackets.
    let url = serde_json::to_string(URL).unwrap();
    let hostile = flag(
        "hostile",
        &format!(
            "feature_issue_url: {url}\nenvironments:\n  dev:\n    actors:\n      project: [{quoted}]\n  production: true\nrollout:\n  - at: \"2026-11-24T09:00:00Z\"\n    note: {quoted}\n    dev: true\n  - at: \"2026-11-26T09:00:00Z\"\n    production:\n      percentage_of_actors: 50\n      actors:\n        project: [{quoted}]\noverrides:\n  promotion-order: {quoted}\n"
        ),
    )
    .replace("group: group::test", &format!("group: {quoted}"))
    .replace("description: A flag for tests.", &format!("description: {quoted}"));
    registry.write("flags/wip/hostile.yml", &hostile);
    registry.write(
        "flags/wip/dependant.yml",
        flag("dependant", "requires: [hostile]\nenvironments:\n  dev: true\n"),
    );
    registry.init_git();
    registry.write(
        "flags/wip/hostile.yml",
        hostile.replace(
            "  production: true\n",
            &format!("  production:\n    percentage_of_actors: 25\n    actors:\n      project: [{quoted}]\n"),
        ),
    );
    registry.commit(&format!("Roll out {PAYLOAD}"));
    registry
}

/// Every `.html` file under `dir`.
fn pages(dir: &Path) -> Vec<(String, String)> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .map(Result::unwrap)
        .filter(|entry| entry.path().extension().is_some_and(|ext| ext == "html"))
        .map(|entry| {
            let name = entry.path().strip_prefix(dir).unwrap().to_string_lossy().into_owned();
            (name, std::fs::read_to_string(entry.path()).unwrap())
        })
        .collect()
}

/// Asserts that a parsed page holds nothing the payload could have injected: no script but the
/// site's own, no element the payload names, no event-handler attribute, no link or source
/// that is not http(s) or relative.
#[track_caller]
fn assert_inert(name: &str, html: &Html) {
    let any = Selector::parse("*").unwrap();
    for element in html.select(&any) {
        let tag = element.value().name();
        assert!(
            !matches!(tag, "img" | "iframe" | "object" | "embed"),
            "{name}: an injected <{tag}>"
        );
        if tag == "script" {
            assert_eq!(
                element.value().attr("src"),
                Some("static/search.js"),
                "{name}: a script that is not the site's own"
            );
            assert_eq!(element.inner_html(), "", "{name}: an inline script");
        }
        for (attribute, value) in element.value().attrs() {
            // The one handler the site's own templates write: the filter form never submits.
            let own = tag == "form" && attribute == "onsubmit" && value == "return false";
            assert!(
                own || !attribute.to_ascii_lowercase().starts_with("on"),
                "{name}: an event handler `{attribute}=\"{value}\"` on <{tag}>"
            );
            if matches!(attribute, "href" | "src") {
                let scheme = value
                    .split_once(':')
                    .map(|(scheme, _)| scheme)
                    .filter(|s| !s.contains('/'));
                assert!(
                    scheme.is_none_or(|scheme| scheme == "http" || scheme == "https"),
                    "{name}: `{attribute}=\"{value}\"` on <{tag}>"
                );
            }
        }
    }
    let comments = html.tree.values().filter(|node| node.is_comment()).count();
    assert_eq!(comments, 0, "{name}: an injected comment");
}

/// The texts of the elements `selector` picks, with white space as it is.
fn texts(html: &Html, selector: &str) -> Vec<String> {
    let selector = Selector::parse(selector).unwrap();
    html.select(&selector)
        .map(|element| element.text().collect::<String>())
        .collect()
}

// Every page parses to markup of the site's own, and the payload shows as text, whole, in each
// field that carries it: the site title, an environment's description, a type's description,
// the flag's description, group, actor, rollout note and override reason, and an emergency
// hold's reason.
#[test]
fn hostile_fields_are_inert_text_on_every_page() {
    let registry = hostile_registry();
    // An emergency hold's reason reaches the flag page and the environment page.
    let emergency = registry.run(&[
        "set",
        "hostile",
        "false",
        "--production",
        "--emergency",
        "--reason",
        PAYLOAD,
    ]);
    assert_eq!(emergency.code, 0, "{emergency:?}");
    registry.git(&["checkout", "--", "flags/"]);
    let built = registry.run(&["site", "--at", AT]);
    assert_eq!(built.code, 0, "{built:?}");
    let public = registry.path().join("public");
    let pages = pages(&public);
    assert!(pages.len() > 5, "{pages:?}");
    for (name, text) in &pages {
        let html = Html::parse_document(text);
        assert_inert(name, &html);
        assert!(!text.contains("<script>alert"), "{name}: the payload's markup is live");
        // The site's title on every page, as text.
        assert!(
            texts(&html, "title").iter().any(|title| title.contains(PAYLOAD)),
            "{name}: {:?}",
            texts(&html, "title")
        );
    }
    let flag_page = Html::parse_document(&registry.read("public/flags/hostile.html"));
    let body = texts(&flag_page, "main").concat();
    // Description, group, actor, note and override reason: five times at least, and the
    // feature issue link keeps its whole URL as one attribute.
    assert!(body.matches(PAYLOAD).count() >= 5, "{body}");
    let links: Vec<String> = flag_page
        .select(&Selector::parse("a[href]").unwrap())
        .map(|a| a.value().attr("href").unwrap().to_string())
        .collect();
    assert!(links.iter().any(|href| href == URL), "{links:?}");
    let held = texts(&flag_page, "ul.holds li").concat();
    assert!(
        held.contains("held by an emergency change: ") && held.contains(PAYLOAD),
        "{held}"
    );
    let environment = Html::parse_document(&registry.read("public/environments/dev.html"));
    assert!(texts(&environment, "main").concat().contains(PAYLOAD));
    let production = Html::parse_document(&registry.read("public/environments/production.html"));
    assert!(texts(&production, "td .note").concat().contains(PAYLOAD));
    let type_page = Html::parse_document(&registry.read("public/types/wip.html"));
    assert!(texts(&type_page, "main").concat().contains(PAYLOAD));
}

// The feed parses as XML, and the payload in a commit title, a flag's description and the site
// title comes back from the parser as the same text.
#[test]
fn hostile_fields_round_trip_through_the_feed_and_json() {
    let registry = hostile_registry();
    assert_eq!(registry.run(&["site", "--at", AT]).code, 0);

    let feed = registry.read("public/feed.xml");
    let mut reader = quick_xml::Reader::from_str(&feed);
    let mut texts = Vec::new();
    let mut depth = 0_i32;
    loop {
        match reader.read_event() {
            Ok(quick_xml::events::Event::Start(_)) => depth += 1,
            Ok(quick_xml::events::Event::End(_)) => depth -= 1,
            Ok(quick_xml::events::Event::Text(text)) => texts.push(text.decode().unwrap().into_owned()),
            Ok(quick_xml::events::Event::GeneralRef(reference)) => match reference.resolve_char_ref() {
                Ok(Some(character)) => texts.push(character.to_string()),
                _ => {
                    let name = reference.decode().unwrap().into_owned();
                    let resolved = quick_xml::escape::resolve_xml_entity(&name)
                        .unwrap_or_else(|| panic!("an unknown entity &{name}; in the feed"));
                    texts.push(resolved.to_string());
                }
            },
            Ok(quick_xml::events::Event::CData(_)) => panic!("a CDATA section in the feed:\n{feed}"),
            Ok(quick_xml::events::Event::Eof) => break,
            Ok(_) => {}
            Err(error) => panic!("the feed is not XML: {error}\n{feed}"),
        }
    }
    assert_eq!(depth, 0, "{feed}");
    let text = texts.concat();
    assert!(text.contains(&format!("Roll out {PAYLOAD}")), "{text}");

    let listing: Value = serde_json::from_str(&registry.read("public/flags.json")).unwrap();
    let hostile = listing["flags"]
        .as_array()
        .unwrap()
        .iter()
        .find(|flag| flag["name"] == "hostile")
        .unwrap();
    assert_eq!(hostile["description"], PAYLOAD);
    assert_eq!(hostile["group"], PAYLOAD);
    let search: Value = serde_json::from_str(&registry.read("public/search.json")).unwrap();
    assert!(
        search
            .to_string()
            .contains(&serde_json::to_string(PAYLOAD).unwrap()[1..20])
    );
}

// The Markdown plan note of a merge request that changes the hostile flag parses to one table
// of plain cells: no HTML, no emphasis, no link, and one row per change.
#[test]
fn hostile_fields_are_plain_text_in_the_plan_note() {
    use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};

    let registry = hostile_registry();
    let hostile = registry.read("flags/wip/hostile.yml");
    let production = format!(
        "  production:\n    percentage_of_actors: 25\n    actors:\n      project: [{}]\n",
        serde_json::to_string(PAYLOAD).unwrap()
    );
    assert!(hostile.contains(&production), "{hostile}");
    registry.write(
        "flags/wip/hostile.yml",
        hostile.replace(
            &production,
            &format!(
                "{production}      user: [{}]\n",
                serde_json::to_string(&format!("{PAYLOAD}|b")).unwrap()
            ),
        ),
    );
    let output = registry.run(&["plan", "--base", "HEAD", "--format", "markdown", "--at", AT]);
    assert_eq!(output.code, 0, "{output:?}");
    let note = &output.stdout;
    let mut rows = 0;
    let mut html = Vec::new();
    let mut cells_text = String::new();
    let mut in_cell = false;
    for event in Parser::new_ext(note, Options::ENABLE_TABLES) {
        match event {
            Event::Start(Tag::TableRow) | Event::Start(Tag::TableHead) => rows += 1,
            Event::Start(Tag::TableCell) => in_cell = true,
            Event::End(TagEnd::TableCell) => in_cell = false,
            Event::Html(text) | Event::InlineHtml(text) => html.push(text.to_string()),
            Event::Start(
                tag @ (Tag::Emphasis | Tag::Strong | Tag::Link { .. } | Tag::Image { .. } | Tag::Heading { .. }),
            ) if in_cell => {
                panic!("{tag:?} inside a table cell:\n{note}")
            }
            Event::Text(text) | Event::Code(text) if in_cell => cells_text.push_str(&text),
            _ => {}
        }
    }
    // The note's own marker, and nothing a value added.
    assert!(
        html.iter().all(|h| h.trim() == "<!-- flagops-plan -->"),
        "{html:?}\n{note}"
    );
    // The header and the one change to `hostile` in `production`.
    assert_eq!(rows, 2, "{note}");
    assert!(cells_text.contains(PAYLOAD), "{cells_text}\n{note}");
    assert!(cells_text.contains(&format!("{PAYLOAD}|b")), "{cells_text}\n{note}");
}
