//! The `companion-admin` binary against an in-process dev tenant: plan, apply with `--secrets-out`, plan again,
//! export, and a failure message naming the step.

use std::process::Output;

use companion_devtenant::RunningTenant;

use crate::support::{ADMIN_CLIENT_ID, ADMIN_SECRET, empty_tenant};

async fn run(tenant: &RunningTenant, dir: &std::path::Path, secret: &str, args: &[&str]) -> Output {
    let spec = concat!(env!("CARGO_MANIFEST_DIR"), "/tenant.toml");
    let secret_file = dir.join("admin-secret");
    std::fs::write(&secret_file, format!("{secret}\n")).expect("write the admin secret");
    tokio::process::Command::new(env!("CARGO_BIN_EXE_companion-admin"))
        .args(args)
        .arg("--spec")
        .arg(spec)
        .current_dir(dir)
        .env("COMPANION_AUTH0_URL", tenant.base_url())
        .env("COMPANION_ADMIN_CLIENT_ID", ADMIN_CLIENT_ID)
        .env("COMPANION_ADMIN_CLIENT_SECRET_FILE", &secret_file)
        .env_remove("COMPANION_ADMIN_CLIENT_SECRET")
        .output()
        .await
        .expect("the binary runs")
}

fn text(output: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn plan_apply_plan_export_through_the_binary() {
    let tenant = empty_tenant().await;
    let dir = tempfile::tempdir().expect("tempdir");

    let planned = run(&tenant, dir.path(), ADMIN_SECRET, &["plan"]).await;
    let (stdout, stderr) = text(&planned);
    assert!(planned.status.success(), "plan succeeds: {stderr}");
    assert!(stdout.contains("+ create API"), "{stdout}");

    let applied = run(
        &tenant,
        dir.path(),
        ADMIN_SECRET,
        &["apply", "--secrets-out", "proxy-secret"],
    )
    .await;
    let (stdout, stderr) = text(&applied);
    assert!(applied.status.success(), "apply succeeds: {stderr}");
    assert!(
        stdout.contains("Proxy client secret written to proxy-secret"),
        "{stdout}"
    );
    let secret = std::fs::read_to_string(dir.path().join("proxy-secret")).expect("secret file");
    assert!(
        !stdout.contains(secret.trim()) && !stderr.contains(secret.trim()),
        "the secret is never printed"
    );

    let again = run(&tenant, dir.path(), ADMIN_SECRET, &["plan"]).await;
    let (stdout, _) = text(&again);
    assert!(stdout.contains("No changes"), "{stdout}");

    let exported = run(&tenant, dir.path(), ADMIN_SECRET, &["export"]).await;
    let (_, stderr) = text(&exported);
    assert!(exported.status.success(), "export succeeds: {stderr}");
    let proxy = std::fs::read_to_string(dir.path().join("proxy.toml")).expect("proxy.toml");
    assert!(
        proxy.contains(&format!("auth0_url = \"{}\"", tenant.base_url())),
        "{proxy}"
    );
    let desktop =
        std::fs::read_to_string(dir.path().join("desktop-config.toml")).expect("desktop config");
    assert!(desktop.contains("redirect_ports = ["), "{desktop}");
    tenant.shutdown().await;
}

#[tokio::test]
async fn a_failure_exits_1_and_names_the_step() {
    let tenant = empty_tenant().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let output = run(&tenant, dir.path(), "wrong-secret", &["plan"]).await;
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1), "{stdout}{stderr}");
    assert!(stderr.contains("read APIs"), "the step is named: {stderr}");
    assert!(
        !stderr.contains("wrong-secret"),
        "the secret is not echoed: {stderr}"
    );
    tenant.shutdown().await;
}
