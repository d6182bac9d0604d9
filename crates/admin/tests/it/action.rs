//! Runs the post-login Action's Node unit tests (`node --test crates/admin/actions/`), so `cargo xtask test` runs
//! them. Fails when `node` is missing or any Node test fails.

use std::path::Path;
use std::process::Command;

#[test]
fn the_post_login_action_passes_its_node_tests() {
    let actions = Path::new(env!("CARGO_MANIFEST_DIR")).join("actions");
    let output = Command::new("node")
        .arg("--test")
        .arg(&actions)
        .output()
        .unwrap_or_else(|e| panic!("node must be installed to test the post-login Action: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "node --test {} failed:\n{stdout}\n{stderr}",
        actions.display()
    );
    let passed = stdout
        .lines()
        .find_map(|l| l.strip_prefix("# pass "))
        .and_then(|n| n.trim().parse::<u32>().ok())
        .unwrap_or(0);
    assert!(
        passed >= 10,
        "the Node suite ran its tests (passed: {passed}):\n{stdout}"
    );
}
