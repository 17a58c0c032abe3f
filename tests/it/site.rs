//! The static site: links, escaping, determinism and the main job; `site_browser.rs` drives it
//! in a real browser.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::harness::{Registry, flag};

/// A committed registry with history, synced once.
fn registry() -> Registry {
    let registry = Registry::new();
    registry.write("flags/wip/update_all_mirrors.yml", flag("update_all_mirrors", "requires: [job_tracker]\nenvironments:\n  staging: true\n  production:\n    percentage_of_actors: 25\nrollout:\n  - at: \"2030-01-01T09:00:00Z\"\n    production: true\n"));
    registry.write(
        "flags/wip/job_tracker.yml",
        flag(
            "job_tracker",
            "owners: ['@ada']\nenvironments:\n  staging: true\n  production: true\n",
        ),
    );
    registry.write("flags/wip/other_flag.yml", flag("other_flag", ""));
    registry.init_git();
    registry.write("flags/wip/update_all_mirrors.yml", flag("update_all_mirrors", "requires: [job_tracker]\nenvironments:\n  staging: true\n  production:\n    percentage_of_actors: 50\nrollout:\n  - at: \"2030-01-01T09:00:00Z\"\n    production: true\n"));
    registry.commit("Raise update_all_mirrors to 50%");
    assert_eq!(registry.run(&["sync"]).code, 0);
    registry
}

fn files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .map(Result::unwrap)
        .filter(|entry| entry.file_type().is_file())
        .map(|entry| {
            let path = entry.path();
            (
                path.strip_prefix(dir).unwrap().to_path_buf(),
                std::fs::read(path).unwrap(),
            )
        })
        .collect()
}

/// Every `href="…"` and `src="…"` value in an HTML text, entities decoded.
fn links(html: &str) -> Vec<String> {
    let mut found = Vec::new();
    for attribute in ["href=\"", "src=\""] {
        let mut rest = html;
        while let Some(at) = rest.find(attribute) {
            rest = &rest[at + attribute.len()..];
            let end = rest.find('"').unwrap();
            found.push(rest[..end].replace("&#x2f;", "/").replace("&amp;", "&"));
            rest = &rest[end..];
        }
    }
    found
}

// Every internal link of the built site resolves to a file of the site.
#[test]
fn site_links_resolve() {
    let registry = registry();
    let output = registry.run(&["site", "--out", "public"]);
    assert_eq!(output.code, 0, "{output:?}");
    let site = registry.path().join("public");
    let built = files(&site);
    for expected in [
        "index.html",
        "flags/update_all_mirrors.html",
        "environments/production.html",
        "types/wip.html",
        "groups/group-test.html",
        "owners/ada.html",
        "stale.html",
        "feed.xml",
        "flags.json",
        "search.json",
        "static/style.css",
        "static/search.js",
    ] {
        assert!(built.contains_key(Path::new(expected)), "missing {expected}");
    }
    let mut checked = 0;
    for (path, bytes) in &built {
        if path.extension().is_none_or(|ext| ext != "html") {
            continue;
        }
        let html = String::from_utf8(bytes.clone()).unwrap();
        for link in links(&html) {
            if link.starts_with("https://") || link.starts_with("http://") || link.starts_with('#') {
                continue;
            }
            let target = site.join(path.parent().unwrap()).join(link.split('#').next().unwrap());
            assert!(target.is_file(), "{}: link `{link}` leads nowhere", path.display());
            checked += 1;
        }
    }
    assert!(checked > 50, "only {checked} links checked");

    // The group and owner pages list their flags; the index links to them.
    let group = registry.read("public/groups/group-test.html");
    let owner = registry.read("public/owners/ada.html");
    for name in ["job_tracker", "other_flag", "update_all_mirrors"] {
        assert!(group.contains(&format!(">{name}</a>")), "{group}");
        assert_eq!(
            owner.contains(&format!(">{name}</a>")),
            name == "job_tracker",
            "{owner}"
        );
    }
    let index = registry.read("public/index.html");
    assert!(index.contains("<a href=\"owners/ada.html\">@ada</a>"), "{index}");
    // Without JavaScript the filter form, which would do nothing, is not shown.
    assert!(index.contains("onsubmit=\"return false\" hidden>"), "{index}");
}

// The flag page shows definition, states, dependencies both ways, the plan and the history.
#[test]
fn site_flag_page_shows_everything() {
    let registry = registry();
    assert_eq!(registry.run(&["site"]).code, 0);
    let page = registry.read("public/flags/update_all_mirrors.html");
    for expected in [
        "50% of actors",
        "Requires: <a href=\"job_tracker.html\">job_tracker</a>",
        "2030-01-01T09:00:00Z",
        "Raise update_all_mirrors to 50%",
        "production: 25% of actors → 50% of actors",
        "<svg class=\"timeline\"",
    ] {
        assert!(page.contains(expected), "missing `{expected}`");
    }
    let required = registry.read("public/flags/job_tracker.html");
    assert!(required.contains("Required by: <a href=\"update_all_mirrors.html\">update_all_mirrors</a>"));
    let json: serde_json::Value = serde_json::from_str(&registry.read("public/flags.json")).unwrap();
    assert_eq!(json["flags"][2]["name"], "update_all_mirrors");
    assert_eq!(
        json["flags"][2]["environments"]["production"]["synced"],
        serde_json::json!({"percentage_of_actors": 50})
    );
    let feed = registry.read("public/feed.xml");
    assert!(
        feed.contains("<title>update_all_mirrors: production: 25% of actors → 50% of actors</title>"),
        "{feed}"
    );
}

// Everything from a flag file is escaped; a `javascript:` URL never becomes a link.
#[test]
fn site_renders_hostile_input_inert() {
    let registry = Registry::new();
    let hostile = flag("hostile", "feature_issue_url: javascript:alert(1)\n").replace(
        "description: A flag for tests.",
        "description: \"<script>alert('x')</script><img src=x onerror=alert(1)>\"",
    );
    registry.write("flags/wip/hostile.yml", hostile);
    let workspace = flagops::load::Workspace::at(&registry.path().join("flagops.yml")).unwrap();
    let options = flagops::load::LoadOptions {
        skip: vec!["url-scheme".into()],
        ..Default::default()
    };
    let loaded = flagops::load::load(&workspace, &options).unwrap();
    let model = loaded.registry.unwrap();
    let out = registry.path().join("public");
    flagops::site::build(&model, &flagops::site::SiteInput::default(), &out).unwrap();
    // Pages and the feed are markup; flags.json and search.json are data, kept as written.
    for (path, bytes) in files(&out) {
        if path.extension().is_some_and(|ext| ext == "json") {
            continue;
        }
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains("<script>alert"), "{}: unescaped script", path.display());
        assert!(!text.contains("<img src=x"), "{}: unescaped tag", path.display());
        assert!(
            !text.contains("href=\"javascript:"),
            "{}: javascript link",
            path.display()
        );
    }
    let page = registry.read("public/flags/hostile.html");
    assert!(
        page.contains("&lt;script&gt;alert("),
        "the description is shown, escaped"
    );
    assert!(page.contains("<span class=\"unlinked\">javascript:alert(1)</span>"));
}

// Two builds of the same input are byte-identical.
#[test]
fn site_is_deterministic() {
    let registry = registry();
    assert_eq!(registry.run(&["site", "--out", "first"]).code, 0);
    assert_eq!(registry.run(&["site", "--out", "second"]).code, 0);
    let first = files(&registry.path().join("first"));
    let second = files(&registry.path().join("second"));
    assert_eq!(first.keys().collect::<Vec<_>>(), second.keys().collect::<Vec<_>>());
    for (path, bytes) in &first {
        assert!(second[path] == *bytes, "{} differs between builds", path.display());
    }
}

// A template folder replaces embedded templates file by file.
#[test]
fn site_templates_can_be_overridden() {
    let registry = registry();
    registry.write("theme/templates/stale.html", "custom {{ site.title }}");
    assert_eq!(registry.run(&["site", "--templates", "theme"]).code, 0);
    assert_eq!(registry.read("public/stale.html"), "custom GitLab feature flags");
    assert!(registry.read("public/index.html").contains("<table id=\"flags\""));
}

// A build is written beside the output folder and replaces it only once every file is written:
// a template that fails leaves the last site as it was, and nothing of the failed build behind.
#[test]
fn site_failed_build_keeps_the_last_site() {
    let registry = registry();
    assert_eq!(registry.run(&["site"]).code, 0);
    let before = files(&registry.path().join("public"));
    // What a killed build left is cleared by the next one.
    registry.write(".public.flagops-building/stale.html", "left by a killed build");
    registry.write("theme/templates/flag.html", "{{ no_such_function() }}");
    let output = registry.run(&["site", "--templates", "theme"]);
    assert_ne!(output.code, 0, "{output:?}");
    assert!(
        output.stderr.contains("failed to render `flag.html`"),
        "{}",
        output.stderr
    );
    assert!(
        files(&registry.path().join("public")) == before,
        "the last site changed"
    );
    assert!(!registry.path().join(".public.flagops-building").exists());
    std::fs::remove_file(registry.path().join("theme/templates/flag.html")).unwrap();
    registry.write("theme/templates/stale.html", "custom");
    assert_eq!(registry.run(&["site", "--templates", "theme"]).code, 0);
    assert_eq!(registry.read("public/stale.html"), "custom");
    assert!(files(&registry.path().join("public")).len() == before.len());
    assert!(!registry.path().join(".public.flagops-building").exists());
}

// The main job ends by building the site.
#[test]
fn site_is_built_by_the_main_job() {
    let registry = registry();
    let output = registry.run(&["deploy"]);
    assert_eq!(output.code, 0, "{output:?}");
    assert!(output.stdout.contains("== site"), "{}", output.stdout);
    assert!(registry.path().join("public/index.html").is_file());
}

// A flag's policy overrides show on its page; an environment's page shows the change freezes not
// yet over (the one in force marked) and the freeze its last sync overrode.
#[test]
fn site_shows_overrides_and_freezes() {
    let registry = Registry::new();
    let config = registry.read("flagops.yml").replacen(
        "policies:\n",
        "policies:\n  freeze_windows:\n    \
         - { name: incident, from: \"2001-01-01T00:00:00Z\", until: \"2099-01-01T00:00:00Z\", environments: [production] }\n    \
         - { name: long-ago, from: \"2001-01-01T00:00:00Z\", until: \"2001-01-02T00:00:00Z\", environments: [production] }\n    \
         - { name: end-of-century, from: \"2099-12-19T00:00:00Z\", until: \"2100-01-04T00:00:00Z\" }\n",
        1,
    );
    registry.write("flagops.yml", config);
    registry.write(
        "flags/wip/exempt.yml",
        flag(
            "exempt",
            "overrides:\n  promotion-order: <b>staging</b> is skipped on purpose\nenvironments:\n  production: true\n",
        ),
    );
    assert_eq!(registry.run(&["sync", "--env", "production"]).code, 2, "frozen");
    let sync = registry.run(&["sync", "--env", "production", "--override-freeze", "hotfix <now>"]);
    assert_eq!(sync.code, 0, "{sync:?}");
    assert_eq!(registry.run(&["site"]).code, 0);

    let page = registry.read("public/flags/exempt.html");
    assert!(
        page.contains("<dt>Policy overrides</dt><dd><ul class=\"overrides\"><li><code>promotion-order</code>: &lt;b&gt;staging&lt;&#x2f;b&gt; is skipped on purpose</li></ul></dd>"),
        "{page}"
    );
    let production = registry.read("public/environments/production.html");
    assert!(
        production.contains("inside a change freeze: <q>hotfix &lt;now&gt;</q>"),
        "{production}"
    );
    let incident = production.find("<span class=\"badge frozen\">now</span> <strong>incident</strong>: from 2001-01-01T00:00:00Z until 2099-01-01T00:00:00Z");
    let century =
        production.find("<strong>end-of-century</strong>: from 2099-12-19T00:00:00Z until 2100-01-04T00:00:00Z");
    assert!(
        incident.is_some() && century.is_some() && incident < century,
        "{production}"
    );
    assert!(!production.contains("long-ago"), "{production}");
    // `incident` names production alone; a window without environments is for protected ones.
    let staging = registry.read("public/environments/staging.html");
    assert!(!staging.contains("Change freezes"), "{staging}");
}

/// The text of every element `selector` matches in `html`, whitespace collapsed.
fn texts(html: &str, selector: &str) -> Vec<String> {
    let document = scraper::Html::parse_document(html);
    let selector = scraper::Selector::parse(selector).unwrap();
    document
        .select(&selector)
        .map(|element| {
            element
                .text()
                .collect::<String>()
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

// A change the change lock held back is kept in the environment's sync record: the index marks
// its chip `held back` in words with the reason as its title, the flag page says what holds it
// and why, and `status` reads it from the record; a sync that completes clears it.
#[test]
fn site_shows_changes_held_back_by_the_change_lock() {
    let registry = Registry::new();
    registry.write(
        "flags/wip/widen.yml",
        flag("widen", "environments:\n  staging: true\n  production: false\n"),
    );
    assert_eq!(registry.run(&["sync"]).code, 0);
    registry.write(
        "flags/wip/widen.yml",
        flag("widen", "environments:\n  staging: true\n  production: true\n"),
    );
    let lock = [("FLAGOPS_CHANGE_LOCK", "incident <4242>")];
    let sync = registry.run_with_env(&["sync"], &lock);
    assert_eq!(sync.code, 1, "{sync:?}");
    let observed = &registry.state("production")["last_sync"]["observed"];
    assert_eq!(observed["held_back"][0]["flag"], "widen", "{observed}");
    assert_eq!(observed["held_back"][0]["desired"], true, "{observed}");
    assert_eq!(observed["held_back"][0]["actual"], false, "{observed}");

    let status = registry.run(&["status", "--env", "production"]);
    assert!(
        status.stdout.lines().any(|line| line
            == "  held back widen: false → true, by the last sync: the change lock `FLAGOPS_CHANGE_LOCK` is on: incident <4242>"),
        "{status:?}"
    );

    assert_eq!(registry.run(&["site"]).code, 0);
    let index = registry.read("public/index.html");
    let document = scraper::Html::parse_document(&index);
    let marker = scraper::Selector::parse("tr[data-name=widen] td[data-environment=production] .marker.held").unwrap();
    let markers: Vec<_> = document.select(&marker).collect();
    assert_eq!(markers.len(), 1, "{index}");
    assert_eq!(markers[0].text().collect::<String>(), "⊘ held back");
    assert_eq!(
        markers[0].value().attr("title"),
        Some("the change lock `FLAGOPS_CHANGE_LOCK` is on: incident <4242>")
    );
    let search: serde_json::Value = serde_json::from_str(&registry.read("public/search.json")).unwrap();
    assert_eq!(search[0]["status"]["production"], "held", "{search}");
    assert_eq!(
        search[0]["cells"][5]["held_back"], "the change lock `FLAGOPS_CHANGE_LOCK` is on: incident <4242>",
        "{search}"
    );
    let page = registry.read("public/flags/widen.html");
    assert_eq!(
        texts(&page, "section.glance ul.holds li"),
        [
            "production: the last sync held back the change from false to true: the change lock `FLAGOPS_CHANGE_LOCK` is on: incident <4242>"
        ],
        "{page}"
    );
    assert_eq!(
        texts(&page, "table.states td.status .note"),
        ["held back by the last sync: the change lock `FLAGOPS_CHANGE_LOCK` is on: incident <4242>"]
    );

    // Once the lock is lifted, the sync completes and nothing is held back any more.
    assert_eq!(registry.run(&["sync"]).code, 0);
    assert!(registry.state("production")["last_sync"].get("observed").is_none());
    assert!(!registry.run(&["status"]).stdout.contains("held back"));
    assert_eq!(registry.run(&["site"]).code, 0);
    let page = registry.read("public/flags/widen.html");
    assert!(texts(&page, "section.glance ul.holds li").is_empty(), "{page}");
    assert!(!registry.read("public/index.html").contains("held back"));
}
