//! Tidy checks: repository rules that run as ordinary `#[test]`s in `cargo test --workspace`.
//!
//! - The dependency invariants of design.md §2 (ARCHITECTURE.md, "Invariants"), over `cargo metadata`.
//! - Every `.rs` file starts with a `//!` summary.
//! - Every crate inherits the workspace lints (`[lints] workspace = true`).
//!
//! The checking functions take plain data so the tests can prove, on synthetic input, that each rule fails
//! when it is broken.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};

/// The wire-types crate, which does no I/O.
const PROTOCOL: &str = "companion-protocol";
/// The Management API client, which only the backend side may use.
const MGMT: &str = "companion-mgmt";
/// Crates on the desktop side, which hold no client secret.
const DESKTOP_SIDE: &[&str] = &["companion-client", "passkeys", "passkey-companion"];
/// Crates for the demo and the tests only.
const DEMO_AND_TEST_ONLY: &[&str] = &["companion-devtenant", "companion-e2e"];
/// Workspace members that may depend on the demo and test crates in production edges.
const DEMO_AND_TEST_USERS: &[&str] = &["xtask", "companion-e2e"];

/// Crates `companion-protocol` must not reach, even transitively: HTTP, async runtimes, Tauri, the keyring,
/// and crates whose purpose is file system or network I/O.
const PROTOCOL_DENY_LIST: &[&str] = &[
    "tokio",
    "async-std",
    "smol",
    "futures",
    "futures-util",
    "mio",
    "reqwest",
    "hyper",
    "hyper-util",
    "http",
    "h2",
    "ureq",
    "curl",
    "isahc",
    "axum",
    "tower",
    "tower-http",
    "tauri",
    "wry",
    "keyring",
    "socket2",
    "tempfile",
    "walkdir",
    "notify",
];

/// How a dependency edge is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DepKind {
    /// `[dependencies]`: part of the built product.
    Normal,
    /// `[build-dependencies]`: runs while building the product.
    Build,
    /// `[dev-dependencies]`: tests and examples only.
    Dev,
}

/// The resolved dependency graph, by package name.
#[derive(Debug, Default)]
pub(crate) struct Graph {
    /// Workspace members.
    pub(crate) members: BTreeSet<String>,
    /// For each package, its dependencies and how each is used (an edge may be both normal and dev).
    pub(crate) edges: BTreeMap<String, Vec<(String, Vec<DepKind>)>>,
}

impl Graph {
    /// Reads `cargo metadata --format-version 1` output.
    pub(crate) fn from_metadata(metadata: &serde_json::Value) -> Result<Self> {
        let names: BTreeMap<&str, &str> = metadata["packages"]
            .as_array()
            .context("metadata has no packages")?
            .iter()
            .filter_map(|package| Some((package["id"].as_str()?, package["name"].as_str()?)))
            .collect();
        let name_of = |id: &str| -> Result<String> {
            names
                .get(id)
                .map(|name| (*name).to_owned())
                .with_context(|| format!("unknown package id {id}"))
        };
        let mut graph = Self::default();
        for id in metadata["workspace_members"]
            .as_array()
            .context("metadata has no workspace_members")?
        {
            graph
                .members
                .insert(name_of(id.as_str().context("member id is not a string")?)?);
        }
        for node in metadata["resolve"]["nodes"]
            .as_array()
            .context("metadata has no resolve graph")?
        {
            let from = name_of(node["id"].as_str().context("node id is not a string")?)?;
            let mut deps = Vec::new();
            for dep in node["deps"].as_array().into_iter().flatten() {
                let to = name_of(dep["pkg"].as_str().context("dep pkg is not a string")?)?;
                let kinds = dep["dep_kinds"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|kind| match kind["kind"].as_str() {
                        None => DepKind::Normal,
                        Some("build") => DepKind::Build,
                        Some(_) => DepKind::Dev,
                    })
                    .collect();
                deps.push((to, kinds));
            }
            graph.edges.entry(from).or_default().extend(deps);
        }
        Ok(graph)
    }

    /// Adds an edge (for tests building synthetic graphs).
    fn edge(mut self, from: &str, to: &str, kind: DepKind) -> Self {
        self.edges
            .entry(from.to_owned())
            .or_default()
            .push((to.to_owned(), vec![kind]));
        self
    }

    /// The shortest chain of production (normal or build) edges from `from` to `to`, if any.
    fn production_path(&self, from: &str, to: &str) -> Option<Vec<String>> {
        let mut parent: BTreeMap<&str, &str> = BTreeMap::new();
        let mut queue = VecDeque::from([from]);
        let mut seen = BTreeSet::from([from]);
        while let Some(current) = queue.pop_front() {
            if current == to && current != from {
                let mut path = vec![current.to_owned()];
                let mut at = current;
                while let Some(previous) = parent.get(at) {
                    path.push((*previous).to_owned());
                    at = previous;
                }
                path.reverse();
                return Some(path);
            }
            for (dep, kinds) in self.edges.get(current).into_iter().flatten() {
                let production = kinds.iter().any(|kind| *kind != DepKind::Dev);
                if production && seen.insert(dep.as_str()) {
                    parent.insert(dep.as_str(), current);
                    queue.push_back(dep.as_str());
                }
            }
        }
        None
    }
}

/// Checks the dependency invariants; returns one message per violation, naming the offending chain.
pub(crate) fn dependency_violations(graph: &Graph) -> Vec<String> {
    let mut violations = Vec::new();
    let mut forbid = |from: &str, to: &str, why: &str| {
        if let Some(path) = graph.production_path(from, to) {
            violations.push(format!("{} ({why})", path.join(" -> ")));
        }
    };
    for denied in PROTOCOL_DENY_LIST {
        forbid(
            PROTOCOL,
            denied,
            "companion-protocol does no I/O: no HTTP, async, Tauri or I/O crates",
        );
    }
    for desktop in DESKTOP_SIDE {
        forbid(
            desktop,
            MGMT,
            "the desktop side never depends on companion-mgmt: it holds no client secret",
        );
    }
    for member in &graph.members {
        if DEMO_AND_TEST_USERS.contains(&member.as_str()) {
            continue;
        }
        for demo in DEMO_AND_TEST_ONLY {
            if member != demo {
                forbid(
                    member,
                    demo,
                    "production crates never depend on the dev tenant or the e2e suite outside [dev-dependencies]",
                );
            }
        }
    }
    violations
}

/// Whether a Rust file starts with a `//!` summary (blank lines before it are tolerated).
pub(crate) fn starts_with_module_doc(text: &str) -> bool {
    text.trim_start_matches('\u{feff}')
        .trim_start()
        .starts_with("//!")
}

/// Whether a crate manifest inherits the workspace lints.
pub(crate) fn inherits_workspace_lints(manifest: &str) -> Result<bool> {
    let value: toml::Table = toml::from_str(manifest).context("parsing Cargo.toml")?;
    Ok(value
        .get("lints")
        .and_then(|lints| lints.get("workspace"))
        .and_then(toml::Value::as_bool)
        .unwrap_or(false))
}

/// Every `.rs` file under `root`, skipping build output, VCS data and dependencies.
pub(crate) fn rust_files(root: &Path) -> Result<Vec<PathBuf>> {
    const SKIP: &[&str] = &["target", ".git", "node_modules"];
    let mut files = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in
            std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))?
        {
            let entry = entry?;
            let path = entry.path();
            let file_type = entry.file_type()?;
            let name = entry.file_name();
            if file_type.is_dir() {
                if !SKIP.iter().any(|skip| name == *skip) {
                    pending.push(path);
                }
            } else if file_type.is_file() && path.extension().is_some_and(|ext| ext == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ci::project_root;

    fn metadata() -> serde_json::Value {
        let output = crate::ci::cargo(&["metadata", "--format-version", "1"])
            .output()
            .expect("cargo metadata runs");
        assert!(
            output.status.success(),
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).expect("cargo metadata prints JSON")
    }

    fn members(names: &[&str]) -> Graph {
        Graph {
            members: names.iter().map(|name| (*name).to_owned()).collect(),
            ..Graph::default()
        }
    }

    #[test]
    fn the_workspace_keeps_its_dependency_invariants() {
        let graph = Graph::from_metadata(&metadata()).expect("metadata parses");
        for expected in [
            "companion-protocol",
            "companion-client",
            "companion-devtenant",
            "xtask",
        ] {
            assert!(
                graph.members.contains(expected),
                "{expected} should be a workspace member"
            );
        }
        let violations = dependency_violations(&graph);
        assert!(
            violations.is_empty(),
            "architecture invariants broken (see ARCHITECTURE.md, Invariants):\n  {}",
            violations.join("\n  ")
        );
    }

    #[test]
    fn protocol_reaching_an_io_crate_transitively_is_caught() {
        let graph = members(&["companion-protocol"])
            .edge("companion-protocol", "serde", DepKind::Normal)
            .edge("serde", "innocent", DepKind::Normal)
            .edge("innocent", "tokio", DepKind::Normal);
        assert_eq!(
            dependency_violations(&graph),
            vec![
                "companion-protocol -> serde -> innocent -> tokio (companion-protocol does no I/O: no HTTP, \
                 async, Tauri or I/O crates)"
                    .to_owned()
            ],
            "the message names the whole offending chain"
        );
    }

    #[test]
    fn protocol_may_use_io_crates_in_tests_only() {
        let graph = members(&["companion-protocol"])
            .edge("companion-protocol", "tokio", DepKind::Dev)
            .edge("companion-protocol", "serde", DepKind::Normal);
        assert!(
            dependency_violations(&graph).is_empty(),
            "dev-dependencies are not part of the product"
        );
    }

    #[test]
    fn protocol_build_dependencies_count() {
        let graph =
            members(&["companion-protocol"]).edge("companion-protocol", "reqwest", DepKind::Build);
        assert_eq!(
            dependency_violations(&graph).len(),
            1,
            "a build script doing HTTP is I/O too"
        );
    }

    #[test]
    fn desktop_side_reaching_mgmt_transitively_is_caught() {
        let graph = members(&["passkey-companion", "companion-client", "companion-mgmt"])
            .edge("passkey-companion", "companion-client", DepKind::Normal)
            .edge("companion-client", "companion-mgmt", DepKind::Normal);
        let violations = dependency_violations(&graph);
        assert!(
            violations
                .iter()
                .any(|v| v.starts_with("passkey-companion -> companion-client -> companion-mgmt ")),
            "the app reaches mgmt through the client: {violations:?}"
        );
        assert!(
            violations
                .iter()
                .any(|v| v.starts_with("companion-client -> companion-mgmt ")),
            "the client reaches mgmt directly: {violations:?}"
        );
    }

    #[test]
    fn the_proxy_may_use_mgmt() {
        let graph = members(&["companion-proxy", "companion-mgmt"]).edge(
            "companion-proxy",
            "companion-mgmt",
            DepKind::Normal,
        );
        assert!(
            dependency_violations(&graph).is_empty(),
            "the backend is where mgmt belongs"
        );
    }

    #[test]
    fn production_crates_depending_on_the_dev_tenant_are_caught() {
        let graph = members(&[
            "companion-proxy",
            "companion-devtenant",
            "companion-e2e",
            "xtask",
            "companion-admin",
        ])
        .edge("companion-proxy", "companion-devtenant", DepKind::Normal)
        .edge("companion-admin", "companion-e2e", DepKind::Normal)
        .edge("companion-e2e", "companion-devtenant", DepKind::Normal)
        .edge("xtask", "companion-devtenant", DepKind::Normal);
        let violations = dependency_violations(&graph);
        assert!(
            violations
                .iter()
                .any(|v| v.starts_with("companion-proxy -> companion-devtenant ")),
            "proxy -> devtenant: {violations:?}"
        );
        assert!(
            violations
                .iter()
                .any(|v| v.starts_with("companion-admin -> companion-e2e ")),
            "admin -> e2e: {violations:?}"
        );
        assert!(
            !violations
                .iter()
                .any(|v| v.starts_with("xtask") || v.starts_with("companion-e2e")),
            "xtask and the e2e suite may use the dev tenant: {violations:?}"
        );
    }

    #[test]
    fn dev_dependencies_on_the_dev_tenant_are_fine() {
        let graph = members(&["companion-proxy", "companion-devtenant"]).edge(
            "companion-proxy",
            "companion-devtenant",
            DepKind::Dev,
        );
        assert!(
            dependency_violations(&graph).is_empty(),
            "tests may start a dev tenant"
        );
    }

    #[test]
    fn the_dev_tenant_must_not_depend_on_the_e2e_suite() {
        let graph = members(&["companion-devtenant", "companion-e2e"]).edge(
            "companion-devtenant",
            "companion-e2e",
            DepKind::Normal,
        );
        assert_eq!(
            dependency_violations(&graph).len(),
            1,
            "the dev tenant is not exempt from the e2e rule"
        );
    }

    #[test]
    fn every_rust_file_starts_with_a_module_summary() {
        let root = project_root();
        let files = rust_files(&root).expect("the tree is readable");
        assert!(
            files.iter().any(|file| file.ends_with("xtask/src/tidy.rs")),
            "the walk should find this very file"
        );
        let missing: Vec<String> = files
            .iter()
            .filter(|file| {
                let text = std::fs::read_to_string(file).unwrap_or_default();
                !starts_with_module_doc(&text)
            })
            .map(|file| {
                file.strip_prefix(&root)
                    .unwrap_or(file)
                    .display()
                    .to_string()
            })
            .collect();
        assert!(
            missing.is_empty(),
            "these files do not start with a `//!` summary of what they are:\n  {}",
            missing.join("\n  ")
        );
    }

    #[test]
    fn module_summary_check_fails_without_one() {
        assert!(
            starts_with_module_doc("//! Does a thing.\n\nfn main() {}\n"),
            "a summary first"
        );
        assert!(
            starts_with_module_doc("\n//! After a blank line.\n"),
            "leading blank lines are fine"
        );
        assert!(
            !starts_with_module_doc("// A plain comment.\n//! Too late.\n"),
            "a plain comment first"
        );
        assert!(!starts_with_module_doc("use std::fs;\n"), "code first");
        assert!(
            !starts_with_module_doc("/// An item doc.\nfn f() {}\n"),
            "an item doc is not a module doc"
        );
        assert!(!starts_with_module_doc(""), "an empty file has no summary");
    }

    #[test]
    fn the_walk_skips_target_and_finds_nested_files() {
        let dir = std::env::temp_dir().join(format!("xtask-tidy-walk-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("target/debug")).expect("scratch dirs");
        std::fs::create_dir_all(dir.join("crates/a/src")).expect("scratch dirs");
        std::fs::write(dir.join("target/debug/generated.rs"), "fn f() {}").expect("scratch file");
        std::fs::write(dir.join("crates/a/src/lib.rs"), "fn f() {}").expect("scratch file");
        std::fs::write(dir.join("crates/a/README.md"), "not rust").expect("scratch file");
        let found = rust_files(&dir).expect("walk");
        std::fs::remove_dir_all(&dir).expect("cleanup");
        assert_eq!(
            found,
            vec![dir.join("crates/a/src/lib.rs")],
            "only Rust sources outside target/"
        );
    }

    #[test]
    fn every_crate_inherits_the_workspace_lints() {
        let metadata = metadata();
        let members: BTreeSet<&str> = metadata["workspace_members"]
            .as_array()
            .expect("members")
            .iter()
            .filter_map(serde_json::Value::as_str)
            .collect();
        let mut checked = 0;
        let mut missing = Vec::new();
        for package in metadata["packages"].as_array().expect("packages") {
            if !package["id"]
                .as_str()
                .is_some_and(|id| members.contains(id))
            {
                continue;
            }
            let manifest_path = package["manifest_path"].as_str().expect("manifest path");
            let manifest = std::fs::read_to_string(manifest_path).expect("manifest readable");
            checked += 1;
            if !inherits_workspace_lints(&manifest).expect("manifest parses") {
                missing.push(manifest_path.to_owned());
            }
        }
        assert!(
            checked >= 8,
            "expected every workspace crate, checked {checked}"
        );
        assert!(
            missing.is_empty(),
            "these crates lack `[lints] workspace = true`:\n  {}",
            missing.join("\n  ")
        );
    }

    #[test]
    fn lints_check_fails_without_the_table() {
        assert!(
            inherits_workspace_lints("[package]\nname = \"a\"\n\n[lints]\nworkspace = true\n")
                .expect("parses"),
            "the inherited table"
        );
        assert!(
            !inherits_workspace_lints("[package]\nname = \"a\"\n").expect("parses"),
            "no [lints] at all"
        );
        assert!(
            !inherits_workspace_lints("[package]\nname = \"a\"\n[lints]\nworkspace = false\n")
                .expect("parses"),
            "explicitly not inherited"
        );
        assert!(
            !inherits_workspace_lints(
                "[package]\nname = \"a\"\n[lints.rust]\nunsafe_code = \"forbid\"\n"
            )
            .expect("parses"),
            "own lints instead of the workspace's"
        );
    }

    #[test]
    fn metadata_edges_keep_their_kinds() {
        let metadata = serde_json::json!({
            "packages": [
                {"id": "p 0.1", "name": "companion-protocol"},
                {"id": "t 1.0", "name": "tokio"},
                {"id": "s 1.0", "name": "serde"}
            ],
            "workspace_members": ["p 0.1"],
            "resolve": {"nodes": [
                {"id": "p 0.1", "deps": [
                    {"pkg": "t 1.0", "dep_kinds": [{"kind": "dev", "target": null}]},
                    {"pkg": "s 1.0", "dep_kinds": [{"kind": null, "target": null}]}
                ]},
                {"id": "t 1.0", "deps": []},
                {"id": "s 1.0", "deps": []}
            ]}
        });
        let graph = Graph::from_metadata(&metadata).expect("parses");
        assert!(
            dependency_violations(&graph).is_empty(),
            "tokio as a dev-dependency only"
        );

        let mut normal = metadata;
        normal["resolve"]["nodes"][0]["deps"][0]["dep_kinds"][0]["kind"] = serde_json::Value::Null;
        let graph = Graph::from_metadata(&normal).expect("parses");
        assert_eq!(
            dependency_violations(&graph),
            vec![
                "companion-protocol -> tokio (companion-protocol does no I/O: no HTTP, async, Tauri or I/O crates)"
                    .to_owned()
            ],
            "the same edge as a normal dependency is a violation"
        );
    }
}
