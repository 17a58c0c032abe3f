//! Paths, discovery and writes that stay in their folder: commands run from any folder of the
//! registry, files under the flags directory that cannot be read as flag files, names that
//! become path components, and config paths outside the registry.

use std::path::Path;
use std::process::Command;

use crate::cli::new_args;
use crate::harness::{Output, Registry, example_registry, flag};

const AT: &str = "2026-01-01T00:00:00Z";

/// The last line a command printed on stdout.
fn last_line(output: &Output) -> &str {
    output.stdout.lines().last().unwrap_or_default()
}

/// Every entry below `dir`, as sorted paths relative to it.
fn tree(dir: &Path) -> Vec<String> {
    let mut entries: Vec<String> = walkdir::WalkDir::new(dir)
        .min_depth(1)
        .into_iter()
        .map(|entry| {
            let entry = entry.unwrap();
            entry.path().strip_prefix(dir).unwrap().to_string_lossy().into_owned()
        })
        .collect();
    entries.sort();
    entries
}

// Every command gives from a subfolder of `flags/` what it gives from the root: config paths
// start at the registry root, and the flags directory is the same wherever the command runs.
#[test]
fn commands_work_from_a_subfolder_of_the_flags_directory() {
    let registry = example_registry();
    let sub = "flags/wip";

    let root = registry.run(&["validate"]);
    let inside = registry.run_in(sub, &["validate"]);
    assert_eq!(root.code, 0, "{root:?}");
    assert_eq!(
        (inside.code, last_line(&inside)),
        (root.code, last_line(&root)),
        "{inside:?}"
    );
    assert!(!inside.stdout.contains("path-layout"), "{}", inside.stdout);

    // `validate .` is about the folder the command runs in.
    let root = registry.run(&["validate", sub]);
    let inside = registry.run_in(sub, &["validate", "."]);
    assert_eq!(
        last_line(&root),
        "checked 3 flag files: 0 errors, 0 warnings",
        "{root:?}"
    );
    assert_eq!(
        (inside.code, last_line(&inside)),
        (root.code, last_line(&root)),
        "{inside:?}"
    );
    let sibling = registry.run_in(sub, &["validate", "../ops"]);
    assert_eq!(
        last_line(&sibling),
        "checked 4 flag files: 0 errors, 0 warnings",
        "{sibling:?}"
    );

    let root = registry.run(&["plan", "--at", AT]);
    let inside = registry.run_in(sub, &["plan", "--at", AT]);
    assert_eq!(root.code, 0, "{root:?}");
    assert_eq!((inside.code, &inside.stdout), (root.code, &root.stdout), "{inside:?}");

    // A sync from the subfolder writes the state at the root, and status reads it from both.
    let synced = registry.run_in(sub, &["sync", "--at", AT]);
    assert_eq!(synced.code, 0, "{synced:?}");
    assert!(registry.path().join(".flagops/state/production.json").is_file());
    assert!(!registry.path().join(sub).join(".flagops").exists());
    let root = registry.run(&["status", "--at", AT]);
    let inside = registry.run_in(sub, &["status", "--at", AT]);
    assert_eq!(root.code, 0, "{root:?}");
    assert_eq!((inside.code, &inside.stdout), (root.code, &root.stdout), "{inside:?}");
    let again = registry.run_in(sub, &["sync", "--at", AT]);
    assert!(again.stdout.contains("0 changes applied"), "{again:?}");

    // `new` writes at the conventional place under the flags directory.
    let created = registry.run_in(sub, &new_args("made_in_a_subfolder", "worker"));
    assert_eq!(created.code, 0, "{created:?}");
    assert!(registry.path().join("flags/worker/made_in_a_subfolder.yml").is_file());
    assert!(!registry.path().join(sub).join("worker").exists());
    // `--path` starts at the working directory.
    let mut args = new_args("given_a_path", "wip");
    args.extend(["--path", "given_a_path.yml"]);
    let created = registry.run_in(sub, &args);
    assert_eq!(created.code, 0, "{created:?}");
    assert!(registry.path().join(sub).join("given_a_path.yml").is_file());

    // The site's default folder is `public` at the root; `--out` starts at the working directory.
    let built = registry.run_in(sub, &["site", "--at", AT]);
    assert_eq!(built.code, 0, "{built:?}");
    assert!(registry.path().join("public/index.html").is_file());
    assert!(!registry.path().join(sub).join("public").exists());
    let built = registry.run_in(sub, &["site", "--at", AT, "--out", "../../elsewhere"]);
    assert_eq!(built.code, 0, "{built:?}");
    assert!(registry.path().join("elsewhere/index.html").is_file());
}

// A registry in a subfolder of a folder that is not a registry: `--config` names it and paths
// in the config start at its folder, not at the working directory.
#[test]
fn config_paths_start_at_the_config_folder() {
    let registry = Registry::new();
    registry.write("flags/wip/alpha.yml", flag("alpha", "environments:\n  dev: true\n"));
    registry.write("other/.keep", "");
    let output = registry.run_in("other", &["--config", "../flagops.yml", "validate"]);
    assert_eq!(
        last_line(&output),
        "checked 1 flag file: 0 errors, 0 warnings",
        "{output:?}"
    );
    let output = registry.run_in("other", &["--config", "../flagops.yml", "sync", "--at", AT]);
    assert_eq!(output.code, 0, "{output:?}");
    assert_eq!(registry.state("dev")["flags"]["alpha"], true);
    assert_eq!(tree(&registry.path().join("other")), [".keep"]);
}

/// The errors `validate --format json` finds: check id, path, line and column.
fn errors(output: &Output) -> Vec<(String, String, u64, u64)> {
    let findings: Vec<serde_json::Value> =
        serde_json::from_str(&output.stdout).unwrap_or_else(|e| panic!("{e}: {output:?}"));
    findings
        .iter()
        .filter(|f| f["severity"] == "error")
        .map(|f| {
            (
                f["check"].as_str().unwrap().to_string(),
                f["path"].as_str().unwrap().to_string(),
                f["span"]["line"].as_u64().unwrap(),
                f["span"]["column"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn not_a_file(path: &str) -> (String, String, u64, u64) {
    ("not-a-file".to_string(), path.to_string(), 1, 1)
}

fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo").arg(path).status().expect("run mkfifo");
    assert!(status.success(), "mkfifo {}", path.display());
}

// A link, a named pipe, a socket, a folder named like a flag file and a link to a folder of flags
// are each an error at their path: none is followed, waited on or silently skipped.
#[test]
fn entries_that_are_not_flag_files_are_errors() {
    let registry = Registry::new();
    registry.write("flags/wip/alpha.yml", flag("alpha", ""));
    registry.write("elsewhere/linked.yml", flag("linked", ""));
    registry.write("elsewhere/team/hidden_behind_link.yml", flag("hidden_behind_link", ""));
    registry.write("flags/wip/folder.yml/inner.yml", flag("inner", ""));
    std::os::unix::fs::symlink(
        registry.path().join("elsewhere/linked.yml"),
        registry.path().join("flags/wip/linked.yml"),
    )
    .unwrap();
    std::os::unix::fs::symlink(
        registry.path().join("elsewhere/team"),
        registry.path().join("flags/team"),
    )
    .unwrap();
    mkfifo(&registry.path().join("flags/wip/piped.yml"));
    // A socket cannot be opened at all: it is named for what it is all the same.
    let _socket = std::os::unix::net::UnixListener::bind(registry.path().join("flags/wip/socket.yml")).unwrap();

    let output = registry.run(&["validate", "--format", "json", "--skip", "path-layout"]);
    assert_eq!(
        errors(&output),
        [
            not_a_file("flags/team"),
            not_a_file("flags/wip/folder.yml"),
            not_a_file("flags/wip/linked.yml"),
            not_a_file("flags/wip/piped.yml"),
            not_a_file("flags/wip/socket.yml"),
        ],
        "{output:?}"
    );
    assert_eq!(output.code, 1);
    // The flag inside the folder is still read; the one behind the link to a folder is not.
    let human = registry.run(&["validate", "--skip", "path-layout"]);
    assert!(human.stdout.contains("checked 7 flag files: 5 errors"), "{human:?}");
    assert!(human.stdout.contains("is a socket"), "{}", human.stdout);
    assert!(
        human
            .stdout
            .contains("help: put the file or folder itself here instead of a link to it"),
        "{}",
        human.stdout
    );
    // Naming the link itself on the command line does not follow it either.
    let output = registry.run(&["validate", "--format", "json", "flags/wip/linked.yml"]);
    assert_eq!(errors(&output), [not_a_file("flags/wip/linked.yml")], "{output:?}");
}

// A flag file replaced by a link (or a pipe) stays a known flag: a sync with `--prune` refuses
// the registry instead of deleting the flag from every environment.
#[test]
fn a_flag_file_replaced_by_a_link_or_a_pipe_is_never_pruned() {
    let registry = Registry::new();
    registry.write("flags/wip/alpha.yml", flag("alpha", "environments:\n  dev: true\n"));
    registry.write("flags/wip/beta.yml", flag("beta", "environments:\n  dev: true\n"));
    let synced = registry.run(&["sync", "--prune"]);
    assert_eq!(synced.code, 0, "{synced:?}");
    assert_eq!(
        registry.state("dev")["flags"],
        serde_json::json!({"alpha": true, "beta": true})
    );

    registry.write("outside/beta.yml", registry.read("flags/wip/beta.yml"));
    registry.remove("flags/wip/beta.yml");
    std::os::unix::fs::symlink(
        registry.path().join("outside/beta.yml"),
        registry.path().join("flags/wip/beta.yml"),
    )
    .unwrap();
    registry.remove("flags/wip/alpha.yml");
    mkfifo(&registry.path().join("flags/wip/alpha.yml"));

    for args in [
        &["sync", "--prune"][..],
        &["plan", "--prune"],
        &["sync", "--dry-run", "--prune"],
    ] {
        let output = registry.run(args);
        assert_eq!(output.code, 1, "{args:?}: {output:?}");
        assert!(output.stderr.contains("error[not-a-file]"), "{}", output.stderr);
        assert!(output.stderr.contains("the registry has 2 errors"), "{}", output.stderr);
    }
    assert_eq!(
        registry.state("dev")["flags"],
        serde_json::json!({"alpha": true, "beta": true})
    );
    assert_eq!(registry.audit("dev").len(), 2);
}

/// A name no other test or process uses beside the registry's folder: the registry's own name
/// with `suffix`, so a write that escapes would land at a path this test can check.
fn escape_name(registry: &Registry, suffix: &str) -> String {
    format!("{}-{suffix}", registry.path().file_name().unwrap().to_string_lossy())
}

// A definition's `type:` becomes a folder: `../..` or an absolute path is refused, and nothing
// is written outside the flags directory.
#[test]
fn import_refuses_a_type_that_leads_out_of_the_flags_directory() {
    let registry = Registry::new();
    let escaped = escape_name(&registry, "imported");
    let absolute = registry.path().join("absolute-type");
    let definition = |name: &str, flag_type: &str| {
        format!(
            "name: {name}\ndescription: d\ntype: {flag_type}\ngroup: group::g\nmilestone: '19.1'\nintroduced_by_url: https://example.test/1\ndefault_enabled: false\n"
        )
    };
    registry.write(
        "src/wip/climbing.yml",
        definition("climbing", &format!("../../{escaped}")),
    );
    registry.write("src/wip/rooted.yml", definition("rooted", &absolute.to_string_lossy()));
    registry.write("src/wip/plain.yml", definition("plain", "wip"));
    let before = tree(registry.path());

    let output = registry.run(&["import", "gitlab", "src", "--format", "json"]);
    assert_eq!(output.code, 1, "{output:?}");
    let report: serde_json::Value = serde_json::from_str(&output.stdout).unwrap();
    let entries = report["entries"].as_array().unwrap();
    let statuses: Vec<(&str, &str)> = entries
        .iter()
        .map(|entry| (entry["source"].as_str().unwrap(), entry["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        statuses,
        [
            ("src/wip/climbing.yml", "refused"),
            ("src/wip/plain.yml", "imported"),
            ("src/wip/rooted.yml", "refused"),
        ]
    );
    assert!(
        entries[0]["notes"][0]["message"]
            .as_str()
            .unwrap()
            .contains("cannot be a folder name"),
        "{}",
        output.stdout
    );
    assert!(!registry.path().parent().unwrap().join(&escaped).exists());
    assert!(!absolute.exists());
    let mut expected = before;
    expected.push("flags/wip".into());
    expected.push("flags/wip/plain.yml".into());
    expected.sort();
    assert_eq!(tree(registry.path()), expected);
}

// `new` refuses (exit 1) a name or a type that would lead out of the flags directory before it
// builds a path, so nothing is written anywhere.
#[test]
fn new_refuses_names_that_lead_out_of_the_flags_directory() {
    let registry = Registry::new();
    let escaped = escape_name(&registry, "new");
    let before = tree(registry.path());
    let climbing = format!("../../../{escaped}");
    let output = registry.run(&new_args(&climbing, "wip"));
    assert_eq!(output.code, 1, "{output:?}");
    assert!(output.stderr.contains("is not a valid flag name"), "{}", output.stderr);
    let output = registry.run(&new_args("fine_name", &climbing));
    assert_eq!(output.code, 1, "{output:?}");
    assert!(output.stderr.contains("unknown flag type"), "{}", output.stderr);
    let absolute = registry.path().join("absolute_name");
    let output = registry.run(&new_args(absolute.to_str().unwrap(), "wip"));
    assert_eq!(output.code, 1, "{output:?}");
    assert!(
        !registry
            .path()
            .parent()
            .unwrap()
            .join(format!("{escaped}.yml"))
            .exists()
    );
    assert!(!absolute.with_extension("yml").exists());
    assert_eq!(tree(registry.path()), before);
}

// A type or environment name in `flagops.yml` must be one plain name: `../../../x` is an error at
// the key, and the site, which names a page after every type, writes nothing.
#[test]
fn config_names_that_become_paths_must_be_plain() {
    let registry = Registry::new();
    let escaped = escape_name(&registry, "type");
    let config = registry.read("flagops.yml");
    let climbing = format!("../../../{escaped}");
    let config = config.replacen("  worker:\n", &format!("  {climbing}:\n"), 1);
    let config = config.replacen("  - name: dev\n", "  - name: ../dev\n", 1);
    registry.write("flagops.yml", &config);
    registry.write("flags/wip/alpha.yml", flag("alpha", ""));

    let output = registry.run(&["validate", "--format", "json"]);
    let line_of = |needle: &str| config.lines().position(|line| line.contains(needle)).unwrap() as u64 + 1;
    assert_eq!(
        errors(&output),
        [
            ("invalid-format".into(), "flagops.yml".into(), line_of("../dev"), 11),
            ("invalid-format".into(), "flagops.yml".into(), line_of(&climbing), 3),
        ],
        "{output:?}"
    );
    let human = registry.run(&["validate"]);
    assert!(
        human
            .stdout
            .contains(&format!("error[invalid-format]: `{climbing}` is not a valid name here")),
        "{}",
        human.stdout
    );
    assert!(
        human.stdout.contains("help: Write lowercase letters and digits"),
        "{}",
        human.stdout
    );

    let before = tree(registry.path());
    let site = registry.run(&["site", "--at", AT]);
    assert_eq!(site.code, 1, "{site:?}");
    assert_eq!(tree(registry.path()), before);
    assert!(
        !registry
            .path()
            .parent()
            .unwrap()
            .join(format!("{escaped}.html"))
            .exists()
    );
}

// Group and owner names become page names only as slugs of plain characters, and the site
// writer refuses any page name that would leave its folder, even one no check stopped.
#[test]
fn site_pages_stay_inside_the_output_folder() {
    let registry = Registry::new();
    // Control characters are refused by validation (`control-character`), so the name holds only
    // what passes it.
    let group = "../../../../tmp/x[31m";
    registry.write(
        "flags/wip/alpha.yml",
        flag("alpha", "owners: [\"@_..\", \"@a.._..\"]\n").replace(
            "group: group::test",
            &format!("group: {}", serde_json::to_string(group).unwrap()),
        ),
    );
    let built = registry.run(&["site", "--at", AT]);
    assert_eq!(built.code, 0, "{built:?}");
    let pages = tree(&registry.path().join("public"));
    let lists: Vec<&String> = pages
        .iter()
        .filter(|page| page.starts_with("groups/") || page.starts_with("owners/"))
        .collect();
    assert_eq!(
        lists,
        ["groups/tmp-x-31m.html", "owners/_.html", "owners/a-_.html"],
        "{pages:?}"
    );
    for page in &pages {
        assert!(page.chars().all(|c| !c.is_control()), "{page:?}");
    }

    // A flag name that no check stopped (the checks were skipped) is refused by the writer.
    let escaped = escape_name(&registry, "flag");
    registry.write("flags/wip/beta.yml", flag(&format!("../../../{escaped}"), ""));
    let workspace = flagops::load::Workspace::at(&registry.path().join("flagops.yml")).unwrap();
    let options = flagops::load::LoadOptions {
        skip: vec!["name-format".into(), "name-mismatch".into()],
        ..Default::default()
    };
    let model = flagops::load::load(&workspace, &options).unwrap().registry.unwrap();
    let out = registry.path().join("public");
    let error = flagops::site::build(&model, &flagops::site::SiteInput::default(), &out).unwrap_err();
    assert!(format!("{error:#}").contains("is not inside"), "{error:#}");
    assert!(
        !registry
            .path()
            .parent()
            .unwrap()
            .join(format!("{escaped}.html"))
            .exists()
    );
    // The earlier build is left as it was.
    assert_eq!(tree(&out), pages);
}

// Paths in `flagops.yml` that lead outside its folder (through `..`, or absolute) are errors at
// their value unless the config opts in with `allow_paths_outside: true`.
#[test]
fn config_paths_outside_the_registry_need_the_opt_in() {
    let registry = Registry::new();
    let cache = registry.path().join("cache");
    let config = registry.read("flagops.yml").replacen(
        "state_dir: .flagops/state\n",
        &format!(
            "state_dir: ../state\ncache_dir: {}\nflags_dir: ../shared-flags\n",
            cache.display()
        ),
        1,
    );
    let config = config
        .replacen("flags_dir: flags\n", "", 1)
        .replacen("tests_dir: flag-tests\n", "tests_dir: ../tests\n", 1)
        .replacen(
            "backend: { kind: file }",
            "backend: { kind: file, path: ../dev.json }",
            1,
        );
    registry.write("registry/flagops.yml", &config);
    registry.write(
        "shared-flags/wip/alpha.yml",
        flag("alpha", "environments:\n  dev: true\n"),
    );
    let line_of = |needle: &str| config.lines().position(|line| line.contains(needle)).unwrap() as u64 + 1;
    let before = tree(registry.path());

    let output = registry.run(&["--config", "registry/flagops.yml", "validate", "--format", "json"]);
    let at = |needle: &str, column: u64| {
        (
            "path-outside-registry".to_string(),
            "registry/flagops.yml".to_string(),
            line_of(needle),
            column,
        )
    };
    assert_eq!(
        errors(&output),
        [
            at("state_dir: ../state", 12),
            at("cache_dir:", 12),
            at("flags_dir: ../shared-flags", 12),
            at("path: ../dev.json", 34),
            at("tests_dir: ../tests", 12),
        ],
        "{output:?}"
    );
    let human = registry.run(&["--config", "registry/flagops.yml", "validate"]);
    assert!(
        human.stdout.contains("set `allow_paths_outside: true`"),
        "{}",
        human.stdout
    );
    let sync = registry.run(&["--config", "registry/flagops.yml", "sync", "--at", AT]);
    assert_eq!(sync.code, 1, "{sync:?}");
    assert_eq!(tree(registry.path()), before);

    registry.write("registry/flagops.yml", format!("allow_paths_outside: true\n{config}"));
    let output = registry.run(&["--config", "registry/flagops.yml", "validate"]);
    assert_eq!(
        last_line(&output),
        "checked 1 flag file: 0 errors, 0 warnings",
        "{output:?}"
    );
    let sync = registry.run(&["--config", "registry/flagops.yml", "sync", "--at", AT]);
    assert_eq!(sync.code, 0, "{sync:?}");
    let dev: serde_json::Value = serde_json::from_str(&registry.read("dev.json")).unwrap();
    assert_eq!(dev["flags"]["alpha"], true);
    assert!(registry.path().join("state/production.json").is_file());
}
