//! `cargo xtask setup`: installs the system packages and cargo tools that building and testing need.
//!
//! Idempotent and quiet: it asks `dpkg-query` about each package and `PATH` about each tool, and prints
//! one line per install step only when something is actually missing.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context as _, Result, bail};

use crate::ci::{format_duration, run_checked};

/// Debian packages that building the Tauri app (WebKitGTK) and the keyring support need.
pub(crate) const BUILD_PACKAGES: &[&str] = &[
    "libwebkit2gtk-4.1-dev",
    "build-essential",
    "curl",
    "wget",
    "file",
    "libxdo-dev",
    "libssl-dev",
    "libayatana-appindicator3-dev",
    "librsvg2-dev",
    "libdbus-1-dev",
    "pkg-config",
];

/// Debian packages that the tests need: a virtual display, a session bus and keyring, WebDriver for the
/// real window, headless Chromium with its driver, and screenshot tools.
///
/// `dbus-x11` is deliberately absent: it auto-starts a stray session bus that outlives the tests.
pub(crate) const TEST_PACKAGES: &[&str] = &[
    "xvfb",
    "xauth",
    "webkit2gtk-driver",
    "dbus",
    "gnome-keyring",
    "keyutils",
    "xdg-utils",
    "libsecret-tools",
    "xdotool",
    "imagemagick",
    "chromium",
    "chromium-driver",
    "fonts-liberation",
];

/// Installs whatever is missing; prints nothing when everything is present.
pub(crate) fn run() -> Result<()> {
    install_packages()?;
    install_tauri_driver()?;
    install_oidc_provider(&crate::ci::project_root().join(OIDC_PROVIDER_DIR))?;
    Ok(())
}

/// The second OpenID provider of the interoperability test (`oidc-provider` on Node), relative to the root.
pub(crate) const OIDC_PROVIDER_DIR: &str = "tests/oidc-provider";

/// The copy of the lockfile that the last successful `npm ci` installed, inside `node_modules/`.
const INSTALLED_LOCK: &str = "node_modules/.companion-installed-lock.json";

/// Whether `dir/node_modules` holds exactly what `dir/package-lock.json` pins (per the copy of the lockfile
/// written after the last successful `npm ci`).
fn npm_packages_current(dir: &std::path::Path) -> Result<bool> {
    let lock = std::fs::read(dir.join("package-lock.json"))
        .with_context(|| format!("reading {}/package-lock.json", dir.display()))?;
    Ok(std::fs::read(dir.join(INSTALLED_LOCK)).is_ok_and(|installed| installed == lock))
}

/// Installs the npm packages of `dir` with `npm ci` (exact versions from its lockfile, from the npm registry, no
/// install scripts) unless the installed set already matches the lockfile.
fn install_oidc_provider(dir: &std::path::Path) -> Result<()> {
    if npm_packages_current(dir)? {
        return Ok(());
    }
    if !command_exists("npm") {
        bail!(
            "npm not found: install Node.js 18.12 or later with npm (Debian: apt-get install nodejs npm), \
             then run `cargo xtask setup` again"
        );
    }
    let started = Instant::now();
    println!("xtask: npm ci in {}", dir.display());
    let mut npm = Command::new("npm");
    npm.args([
        "ci",
        "--ignore-scripts",
        "--no-audit",
        "--no-fund",
        "--loglevel=error",
    ])
    .current_dir(dir);
    run_quietly(&mut npm, "npm ci")?;
    std::fs::copy(dir.join("package-lock.json"), dir.join(INSTALLED_LOCK))
        .context("recording the installed lockfile")?;
    println!(
        "xtask: installed the npm packages of {} in {}",
        dir.display(),
        format_duration(started.elapsed())
    );
    Ok(())
}

/// Installs the missing Debian packages in one `apt-get install`.
fn install_packages() -> Result<()> {
    if !command_exists("dpkg-query") {
        bail!(
            "dpkg-query not found: `cargo xtask setup` supports Debian 12; install these packages by hand: {}",
            all_packages().join(" ")
        );
    }
    let mut missing: Vec<&str> = all_packages()
        .into_iter()
        .filter(|package| !is_installed(package))
        .collect();
    // The post-login Action's tests run on Node; machines here usually ship one outside dpkg, so Debian's is only
    // installed when no `node` is on PATH at all.
    if !command_exists("node") {
        missing.push("nodejs");
    }
    // The interoperability test's OpenID provider is installed with npm, which Debian packages apart from Node.
    if !command_exists("npm") {
        missing.push("npm");
    }
    if missing.is_empty() {
        return Ok(());
    }
    if !is_root() {
        bail!(
            "missing packages and not running as root; install them with:\n  \
             sudo apt-get install -y --no-install-recommends {}",
            missing.join(" ")
        );
    }
    let started = Instant::now();
    println!("xtask: apt-get update");
    apt_update_with_retries()?;
    println!("xtask: apt-get install {}", missing.join(" "));
    let mut install = Command::new("apt-get");
    install
        .args([
            "-o",
            "DPkg::Lock::Timeout=600",
            "install",
            "-y",
            "--no-install-recommends",
            "-q",
        ])
        .args(&missing)
        .env("DEBIAN_FRONTEND", "noninteractive");
    run_quietly(&mut install, "apt-get install")?;
    let still_missing: Vec<&str> = missing
        .iter()
        .copied()
        .filter(|package| !is_installed(package))
        .collect();
    if !still_missing.is_empty() {
        bail!(
            "apt-get reported success but these packages are still not installed: {}",
            still_missing.join(" ")
        );
    }
    println!(
        "xtask: installed {} packages in {}",
        missing.len(),
        format_duration(started.elapsed())
    );
    Ok(())
}

/// Every package this project needs.
fn all_packages() -> Vec<&'static str> {
    BUILD_PACKAGES
        .iter()
        .chain(TEST_PACKAGES)
        .copied()
        .collect()
}

/// Whether `dpkg` reports the package as installed.
fn is_installed(package: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", package])
        .stderr(Stdio::null())
        .output()
        .is_ok_and(|output| output.status.success() && is_installed_status(&output.stdout))
}

/// Reads `dpkg-query`'s `${Status}`: only `install ok installed` counts (not `unknown ok not-installed`, nor a
/// half-configured package).
fn is_installed_status(status: &[u8]) -> bool {
    String::from_utf8_lossy(status).trim() == "install ok installed"
}

/// `apt-get update`, retried a few times: another apt may hold the lists lock for a while.
fn apt_update_with_retries() -> Result<()> {
    const ATTEMPTS: u32 = 4;
    let mut last_error = None;
    for attempt in 1..=ATTEMPTS {
        let mut update = Command::new("apt-get");
        update
            .args(["-o", "DPkg::Lock::Timeout=600", "update", "-q"])
            .env("DEBIAN_FRONTEND", "noninteractive");
        match run_quietly(&mut update, "apt-get update") {
            Ok(()) => return Ok(()),
            Err(error) => {
                if attempt < ATTEMPTS {
                    println!(
                        "xtask: apt-get update failed (attempt {attempt}/{ATTEMPTS}), retrying"
                    );
                    std::thread::sleep(std::time::Duration::from_secs(u64::from(attempt) * 5));
                }
                last_error = Some(error);
            }
        }
    }
    Err(last_error.unwrap_or_else(|| anyhow::anyhow!("apt-get update failed")))
}

/// Runs a command with its output captured; on failure, prints that output and returns an error.
fn run_quietly(command: &mut Command, what: &str) -> Result<()> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("could not start {what}"))?;
    if output.status.success() {
        return Ok(());
    }
    let mut stderr = std::io::stderr().lock();
    // Best effort: the error below says what failed even if the captured output cannot be shown.
    let _ = stderr.write_all(&output.stdout);
    let _ = stderr.write_all(&output.stderr);
    bail!("{what} failed ({})", output.status)
}

/// Installs `tauri-driver` (WebDriver for the real window) unless it is already on `PATH` or in
/// `~/.cargo/bin`.
fn install_tauri_driver() -> Result<()> {
    if command_exists("tauri-driver")
        || cargo_bin_dir().is_some_and(|dir| dir.join("tauri-driver").is_file())
    {
        return Ok(());
    }
    let started = Instant::now();
    println!("xtask: cargo install tauri-driver --locked");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    run_checked(
        Command::new(cargo).args(["install", "tauri-driver", "--locked", "--quiet"]),
        "cargo install tauri-driver",
    )?;
    println!(
        "xtask: installed tauri-driver in {}",
        format_duration(started.elapsed())
    );
    Ok(())
}

/// `~/.cargo/bin` (or `$CARGO_HOME/bin`), where `cargo install` puts tools.
pub(crate) fn cargo_bin_dir() -> Option<PathBuf> {
    std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cargo")))
        .map(|home| home.join("bin"))
}

/// Whether an executable of that name is on `PATH`.
pub(crate) fn command_exists(name: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| {
            let candidate = dir.join(name);
            candidate.is_file() && is_executable(&candidate)
        })
    })
}

/// Whether any execute bit is set.
fn is_executable(path: &std::path::Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).is_ok_and(|meta| meta.permissions().mode() & 0o111 != 0)
}

/// Whether this process runs as root (it owns `/proc/self`, as every process owns its own entry).
fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt as _;
    std::fs::metadata("/proc/self").is_ok_and(|meta| meta.uid() == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_fully_installed_status_counts() {
        assert!(
            is_installed_status(b"install ok installed"),
            "the normal installed status"
        );
        assert!(
            !is_installed_status(b"unknown ok not-installed"),
            "a package dpkg knows of but never installed is missing"
        );
        assert!(
            !is_installed_status(b"deinstall ok config-files"),
            "a removed package that left config files is missing"
        );
        assert!(
            !is_installed_status(b"install ok half-configured"),
            "a broken install is missing"
        );
        assert!(!is_installed_status(b""), "no status means missing");
    }

    #[test]
    fn the_package_lists_never_include_dbus_x11() {
        assert!(
            !all_packages().contains(&"dbus-x11"),
            "dbus-x11 auto-starts a stray session bus that outlives the tests"
        );
    }

    #[test]
    fn npm_packages_count_as_current_only_when_installed_from_the_same_lockfile() {
        let dir = std::env::temp_dir().join(format!("xtask-npm-current-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("node_modules")).expect("scratch dir");
        std::fs::write(dir.join("package-lock.json"), "{\"lockfileVersion\": 3}").expect("lock");
        assert!(
            !npm_packages_current(&dir).expect("readable"),
            "never installed: npm ci must run"
        );
        std::fs::write(dir.join(INSTALLED_LOCK), "{\"lockfileVersion\": 3}").expect("stamp");
        assert!(
            npm_packages_current(&dir).expect("readable"),
            "installed from this lockfile: nothing to do"
        );
        std::fs::write(
            dir.join("package-lock.json"),
            "{\"lockfileVersion\": 3, \"x\": 1}",
        )
        .expect("lock");
        assert!(
            !npm_packages_current(&dir).expect("readable"),
            "the lockfile changed: npm ci must run again"
        );
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn the_oidc_provider_is_pinned_by_a_committed_lockfile() {
        let dir = crate::ci::project_root().join(OIDC_PROVIDER_DIR);
        let manifest: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(dir.join("package.json")).expect("package.json"),
        )
        .expect("package.json is JSON");
        let pinned = manifest["dependencies"]["oidc-provider"]
            .as_str()
            .expect("oidc-provider is a dependency");
        assert!(
            pinned.chars().all(|c| c.is_ascii_digit() || c == '.'),
            "an exact version, not a range: {pinned}"
        );
        let lock: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(dir.join("package-lock.json")).expect("package-lock.json"),
        )
        .expect("package-lock.json is JSON");
        assert_eq!(
            lock["packages"]["node_modules/oidc-provider"]["version"], pinned,
            "the lockfile pins the same version"
        );
    }

    #[test]
    fn a_shell_is_found_on_path_and_nonsense_is_not() {
        assert!(command_exists("sh"), "every Debian machine has sh on PATH");
        assert!(
            !command_exists("definitely-not-a-command-xtask"),
            "made-up names are not on PATH"
        );
    }
}
