//! `cargo xtask bundle`: builds the Linux `.deb` and `.rpm` with the Tauri bundler and checks the `.deb`; and the
//! same `.deb` checks in `cargo xtask test`, on a package of the debug build the end-to-end suite already made.
//!
//! The Tauri CLI comes prebuilt from npm (`@tauri-apps/cli`, an exact pinned version) into `target/tauri-cli/`,
//! installed when missing or of another version. Only `deb` and `rpm` are built here: the AppImage bundler downloads tools from GitHub, and msi, nsis
//! and dmg need their own platforms; `tauri.conf.json` keeps them configured for release machines.
//!
//! In CI ([`check_debug_deb`]) no release build runs: `tauri bundle --debug --bundles deb` packages the existing
//! `target/debug/passkey-companion` as it is (`--no-binary-patching` leaves the tested binary untouched), which
//! takes about 2 s. The package is then listed (`dpkg-deb -c`), its control fields read (`dpkg-deb -f`), and it is
//! unpacked into a scratch root (`dpkg-deb -x`) to check the desktop entry, icons and sample config themselves.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, Result, bail};

use crate::ci::project_root;

/// The npm package of the Tauri CLI.
const TAURI_CLI_NAME: &str = "@tauri-apps/cli";
/// Its pinned version (`--no-binary-patching`, which the CI check relies on, needs a recent 2.x).
const TAURI_CLI_VERSION: &str = "2.12.5";
/// The bundles built on this machine; never "all".
const BUNDLES: &str = "deb,rpm";
/// The installed binary.
pub(crate) const DEB_BINARY: &str = "/usr/bin/passkey-companion";
/// The sample managed configuration shipped with the package.
pub(crate) const DEB_SAMPLE_CONFIG: &str = "/usr/share/doc/passkey-companion/config.toml.example";
/// Packages the `.deb` must declare in `Depends`.
pub(crate) const REQUIRED_DEPENDS: [&str; 3] = ["libwebkit2gtk-4.1-0", "libgtk-3-0", "xdg-utils"];

/// The desktop entry's `Exec` and `Icon`: the installed binary and its icon name.
const DESKTOP_EXEC: &str = "passkey-companion";

/// The `.deb` of the debug build, packaged and checked as in [`run`] without building anything: what
/// `cargo xtask test` runs after the tests (which built the debug app). Prints what it found and how long it took.
pub(crate) fn check_debug_deb() -> Result<()> {
    let started = std::time::Instant::now();
    let root = project_root();
    let mut build = crate::ci::cargo(&["build", "--quiet", "-p", "passkey-companion"]);
    crate::ci::run_checked(&mut build, "cargo build -p passkey-companion")?;
    let built = started.elapsed();
    let cli = ensure_cli(&root)?;
    let mut bundle = Command::new(&cli);
    bundle
        .args([
            "bundle",
            "--debug",
            "--bundles",
            "deb",
            "--no-binary-patching",
            "--ci",
        ])
        .current_dir(root.join("src-tauri"));
    crate::ci::run_checked(&mut bundle, "tauri bundle --debug --bundles deb")?;
    let deb = newest_bundle_in(&root.join("target").join("debug"), "deb")?;
    let contents = check_deb(&deb)?;
    println!(
        "bundle: checked {} ({}) in {} ({} of it making sure the debug build is current): {DEB_BINARY}, {}, \
         {} icon(s), {DEB_SAMPLE_CONFIG}, Depends: {}",
        deb.display(),
        human_size(file_size(&deb)?),
        crate::ci::format_duration(started.elapsed()),
        crate::ci::format_duration(built),
        contents.desktop_entry,
        contents.icons.len(),
        contents.depends.join(", ")
    );
    Ok(())
}

/// Installs the CLI when missing, builds the bundles, checks the `.deb` and prints its path and size.
pub(crate) fn run() -> Result<()> {
    let root = project_root();
    let cli = ensure_cli(&root)?;
    println!("bundle: tauri build --bundles {BUNDLES} (release build; takes minutes)");
    let status = Command::new(&cli)
        .args(["build", "--bundles", BUNDLES])
        .current_dir(root.join("src-tauri"))
        .status()
        .with_context(|| format!("running {}", cli.display()))?;
    if !status.success() {
        bail!("tauri build --bundles {BUNDLES} failed: {status}");
    }
    let deb = newest_bundle(&root, "deb")?;
    let contents = check_deb(&deb)?;
    println!(
        "bundle: {} ({})",
        deb.display(),
        human_size(file_size(&deb)?)
    );
    println!("bundle:   binary {DEB_BINARY}");
    println!("bundle:   desktop entry {}", contents.desktop_entry);
    println!(
        "bundle:   {} icon(s), e.g. {}",
        contents.icons.len(),
        contents.icons.join(", ")
    );
    println!("bundle:   sample config {DEB_SAMPLE_CONFIG}");
    println!("bundle:   Depends: {}", contents.depends.join(", "));
    match newest_bundle(&root, "rpm") {
        Ok(rpm) => println!(
            "bundle: {} ({})",
            rpm.display(),
            human_size(file_size(&rpm)?)
        ),
        Err(error) => bail!("the rpm bundle is missing: {error:#}"),
    }
    Ok(())
}

/// The local Tauri CLI, installed from npm into `target/tauri-cli/` when missing.
fn ensure_cli(root: &Path) -> Result<PathBuf> {
    let prefix = root.join("target").join("tauri-cli");
    let cli = prefix.join("node_modules").join(".bin").join("tauri");
    let manifest = prefix
        .join("node_modules")
        .join(TAURI_CLI_NAME)
        .join("package.json");
    if cli.is_file() && installed_version(&manifest).as_deref() == Some(TAURI_CLI_VERSION) {
        return Ok(cli);
    }
    std::fs::create_dir_all(&prefix).with_context(|| format!("creating {}", prefix.display()))?;
    let package = format!("{TAURI_CLI_NAME}@{TAURI_CLI_VERSION}");
    println!("bundle: npm install {package} into {}", prefix.display());
    let status = Command::new("npm")
        .args([
            "install",
            "--no-audit",
            "--no-fund",
            "--save-exact",
            "--prefix",
        ])
        .arg(&prefix)
        .arg(&package)
        .status()
        .context("running npm (install Node.js and npm: apt-get install npm)")?;
    if !status.success() || !cli.is_file() {
        bail!("npm install {package} failed: {status}");
    }
    match installed_version(&manifest) {
        Some(version) if version == TAURI_CLI_VERSION => Ok(cli),
        other => bail!(
            "npm installed {TAURI_CLI_NAME} {} into {}, not the pinned {TAURI_CLI_VERSION}",
            other.as_deref().unwrap_or("(unknown version)"),
            prefix.display()
        ),
    }
}

/// The `version` field of an installed npm package's `package.json`, if readable.
fn installed_version(manifest: &Path) -> Option<String> {
    let text = std::fs::read_to_string(manifest).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    json.get("version")?.as_str().map(str::to_owned)
}

/// The newest file with extension `ext` under `target/release/bundle/<ext>/`.
pub(crate) fn newest_bundle(root: &Path, ext: &str) -> Result<PathBuf> {
    newest_bundle_in(&root.join("target").join("release"), ext)
}

/// The newest file with extension `ext` under `<profile_dir>/bundle/<ext>/`.
fn newest_bundle_in(profile_dir: &Path, ext: &str) -> Result<PathBuf> {
    let dir = profile_dir.join("bundle").join(ext);
    let entries = std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))?;
    let mut newest: Option<(std::time::SystemTime, PathBuf)> = None;
    for entry in entries {
        let path = entry?.path();
        if path.extension().and_then(|e| e.to_str()) != Some(ext) {
            continue;
        }
        let modified = std::fs::metadata(&path)?.modified()?;
        if newest.as_ref().is_none_or(|(time, _)| modified > *time) {
            newest = Some((modified, path));
        }
    }
    newest
        .map(|(_, path)| path)
        .with_context(|| format!("no .{ext} in {}", dir.display()))
}

/// The size of `path` in bytes.
pub(crate) fn file_size(path: &Path) -> Result<u64> {
    Ok(std::fs::metadata(path)
        .with_context(|| format!("reading {}", path.display()))?
        .len())
}

/// `bytes` in MB (10^6) with two decimals, and the exact count.
pub(crate) fn human_size(bytes: u64) -> String {
    #[allow(clippy::cast_precision_loss, reason = "display only")]
    let megabytes = bytes as f64 / 1_000_000.0;
    format!("{megabytes:.2} MB, {bytes} bytes")
}

/// What a checked `.deb` holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DebContents {
    /// The desktop entry's path.
    pub(crate) desktop_entry: String,
    /// The icon paths under `/usr/share/icons`.
    pub(crate) icons: Vec<String>,
    /// The declared `Depends`, one package (with any version constraint) each.
    pub(crate) depends: Vec<String>,
}

/// Runs `dpkg-deb -c` and `dpkg-deb -I` on `deb` and checks them with [`check_deb_listing`], then unpacks it into
/// a scratch root and checks the files themselves with [`check_unpacked`].
fn check_deb(deb: &Path) -> Result<DebContents> {
    let listing = dpkg_deb(&["-c"], deb)?;
    let info = dpkg_deb(&["-I"], deb)?;
    let contents = check_deb_listing(&listing, &info).map_err(|problems| {
        anyhow::anyhow!(
            "{} is incomplete:\n  {}",
            deb.display(),
            problems.join("\n  ")
        )
    })?;
    let scratch = project_root().join("target").join("xtask").join("deb-root");
    if scratch.exists() {
        std::fs::remove_dir_all(&scratch)
            .with_context(|| format!("clearing {}", scratch.display()))?;
    }
    std::fs::create_dir_all(&scratch).with_context(|| format!("creating {}", scratch.display()))?;
    let status = Command::new("dpkg-deb")
        .arg("-x")
        .arg(deb)
        .arg(&scratch)
        .status()
        .context("running dpkg-deb -x")?;
    if !status.success() {
        bail!("dpkg-deb -x {} failed: {status}", deb.display());
    }
    let unpacked = check_unpacked(&scratch, &contents);
    // The scratch root only served the check.
    let _ = std::fs::remove_dir_all(&scratch);
    unpacked.map_err(|problems| {
        anyhow::anyhow!(
            "{} unpacks wrong:\n  {}",
            deb.display(),
            problems.join("\n  ")
        )
    })?;
    Ok(contents)
}

/// Checks the files of a package unpacked under `root`: the binary is an executable ELF file, the desktop entry
/// starts the binary with its icon, that icon is installed, and the sample config is the one in `packaging/`.
fn check_unpacked(root: &Path, contents: &DebContents) -> Result<(), Vec<String>> {
    use std::os::unix::fs::PermissionsExt as _;
    let inside = |path: &str| root.join(path.trim_start_matches('/'));
    let mut problems = Vec::new();
    match std::fs::read(inside(DEB_BINARY)) {
        Ok(binary) => {
            if !binary.starts_with(b"\x7fELF") {
                problems.push(format!("{DEB_BINARY} is not an ELF executable"));
            }
            let mode = std::fs::metadata(inside(DEB_BINARY))
                .map(|m| m.permissions().mode())
                .unwrap_or(0);
            if mode & 0o111 == 0 {
                problems.push(format!("{DEB_BINARY} is not executable (mode {mode:o})"));
            }
        }
        Err(error) => problems.push(format!("{DEB_BINARY} unreadable: {error}")),
    }
    match std::fs::read_to_string(inside(&contents.desktop_entry)) {
        Ok(entry) => problems.extend(check_desktop_entry(&entry, &contents.icons)),
        Err(error) => problems.push(format!("{} unreadable: {error}", contents.desktop_entry)),
    }
    let sample = project_root().join("packaging").join("config.toml.example");
    match (
        std::fs::read_to_string(inside(DEB_SAMPLE_CONFIG)),
        std::fs::read_to_string(&sample),
    ) {
        (Ok(shipped), Ok(expected)) if shipped == expected => {}
        (Ok(_), Ok(_)) => problems.push(format!(
            "{DEB_SAMPLE_CONFIG} differs from {}",
            sample.display()
        )),
        (Err(error), _) | (_, Err(error)) => {
            problems.push(format!("cannot compare the sample config: {error}"));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

/// Checks a desktop entry: an application whose `Exec` runs the installed binary and whose `Icon` names one of
/// the installed `icons`.
fn check_desktop_entry(entry: &str, icons: &[String]) -> Vec<String> {
    let field = |name: &str| {
        entry.lines().find_map(|line| {
            let (key, value) = line.split_once('=')?;
            (key.trim() == name).then(|| value.trim().to_owned())
        })
    };
    let mut problems = Vec::new();
    if !entry.lines().any(|line| line.trim() == "[Desktop Entry]") {
        problems.push("the desktop entry has no [Desktop Entry] group".to_owned());
    }
    if field("Type").as_deref() != Some("Application") {
        problems.push(format!(
            "desktop entry Type is {:?}, not Application",
            field("Type")
        ));
    }
    let exec = field("Exec").unwrap_or_default();
    let program = exec.split_whitespace().next().unwrap_or_default();
    if program != DESKTOP_EXEC && program != DEB_BINARY {
        problems.push(format!(
            "desktop entry Exec={exec:?} does not start {DEB_BINARY}"
        ));
    }
    match field("Icon") {
        Some(icon)
            if icons
                .iter()
                .any(|path| path.ends_with(&format!("/apps/{icon}.png"))) => {}
        icon => problems.push(format!(
            "desktop entry Icon={icon:?} is not one of the installed icons {icons:?}"
        )),
    }
    if field("Name").is_none_or(|name| name.is_empty()) {
        problems.push("desktop entry has no Name".to_owned());
    }
    problems
}

/// The standard output of `dpkg-deb <flags> <deb>`.
fn dpkg_deb(flags: &[&str], deb: &Path) -> Result<String> {
    let flag = flags.join(" ");
    let output = Command::new("dpkg-deb")
        .args(flags)
        .arg(deb)
        .output()
        .context("running dpkg-deb")?;
    if !output.status.success() {
        bail!(
            "dpkg-deb {flag} {} failed: {}",
            deb.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Checks a `dpkg-deb -c` listing and `dpkg-deb -I` info: the binary, a desktop entry, icons, the sample
/// config and the required `Depends`. Returns every problem found, not just the first.
pub(crate) fn check_deb_listing(listing: &str, info: &str) -> Result<DebContents, Vec<String>> {
    let paths: Vec<String> = listing.lines().filter_map(listed_path).collect();
    let mut problems = Vec::new();
    for required in [DEB_BINARY, DEB_SAMPLE_CONFIG] {
        if !paths.iter().any(|p| p == required) {
            problems.push(format!("{required} is not in the package"));
        }
    }
    let desktop_entry = paths
        .iter()
        .find(|p| p.starts_with("/usr/share/applications/") && p.ends_with(".desktop"))
        .cloned();
    if desktop_entry.is_none() {
        problems.push("no desktop entry under /usr/share/applications".to_owned());
    }
    let icons: Vec<String> = paths
        .iter()
        .filter(|p| p.starts_with("/usr/share/icons/") && p.ends_with(".png"))
        .cloned()
        .collect();
    if icons.is_empty() {
        problems.push("no PNG icon under /usr/share/icons".to_owned());
    }
    let depends = control_field(info, "Depends")
        .map(|value| {
            value
                .split(',')
                .map(|d| d.trim().to_owned())
                .filter(|d| !d.is_empty())
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    for required in REQUIRED_DEPENDS {
        let declared = depends
            .iter()
            .any(|d| d.split([' ', '(']).next() == Some(required));
        if !declared {
            problems.push(format!("Depends does not declare {required}: {depends:?}"));
        }
    }
    match desktop_entry {
        Some(desktop_entry) if problems.is_empty() => Ok(DebContents {
            desktop_entry,
            icons,
            depends,
        }),
        _ => Err(problems),
    }
}

/// The absolute path of one `dpkg-deb -c` line (`perms owner size date time path[ -> target]`, the path with
/// or without a leading `./`, and possibly holding spaces); `None` for other lines.
fn listed_path(line: &str) -> Option<String> {
    let mut rest = line.trim_start();
    for _ in 0..5 {
        let end = rest.find(char::is_whitespace)?;
        rest = rest[end..].trim_start();
    }
    let path = rest.split(" -> ").next().unwrap_or(rest).trim_end();
    let path = path.strip_prefix('.').unwrap_or(path);
    if path.is_empty() {
        return None;
    }
    Some(if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("/{path}")
    })
}

/// The value of control field `name` in `dpkg-deb -I` output (fields are indented by one space).
fn control_field<'a>(info: &'a str, name: &str) -> Option<&'a str> {
    info.lines().find_map(|line| {
        let (field, value) = line.trim_start().split_once(':')?;
        (field == name).then(|| value.trim())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LISTING: &str = "\
drwxr-xr-x root/root         0 2026-11-24 10:00 ./
drwxr-xr-x root/root         0 2026-11-24 10:00 ./usr/
drwxr-xr-x root/root         0 2026-11-24 10:00 ./usr/bin/
-rwxr-xr-x root/root   9000000 2026-11-24 10:00 ./usr/bin/passkey-companion
-rw-r--r-- root/root       250 2026-11-24 10:00 ./usr/share/applications/Passkey Companion.desktop
-rw-r--r-- root/root      1000 2026-11-24 10:00 ./usr/share/icons/hicolor/32x32/apps/passkey-companion.png
-rw-r--r-- root/root      5000 2026-11-24 10:00 ./usr/share/icons/hicolor/128x128/apps/passkey-companion.png
-rw-r--r-- root/root      1200 2026-11-24 10:00 ./usr/share/doc/passkey-companion/config.toml.example
lrwxrwxrwx root/root         0 2026-11-24 10:00 ./usr/lib/link -> ../bin/passkey-companion
";

    const INFO: &str = "\
 new Debian package, version 2.0.
 size 3300000 bytes: control archive=600 bytes.
     300 bytes,    11 lines      control
 Package: passkey-companion
 Version: 0.1.0
 Architecture: amd64
 Depends: libwebkit2gtk-4.1-0, libgtk-3-0, libdbus-1-3, xdg-utils (>= 1.1)
 Description: Manage your passkeys and sign-in methods
";

    #[test]
    fn a_complete_package_passes_and_reports_its_contents() {
        let contents = check_deb_listing(LISTING, INFO).expect("the synthetic package is complete");
        assert_eq!(
            contents.desktop_entry, "/usr/share/applications/Passkey Companion.desktop",
            "a desktop file name with a space is read whole"
        );
        assert_eq!(contents.icons.len(), 2, "both icons: {:?}", contents.icons);
        assert_eq!(
            contents.depends,
            [
                "libwebkit2gtk-4.1-0",
                "libgtk-3-0",
                "libdbus-1-3",
                "xdg-utils (>= 1.1)"
            ],
            "Depends split on commas"
        );
    }

    #[test]
    fn every_missing_piece_is_reported() {
        let listing: String = LISTING
            .lines()
            .filter(|l| {
                !l.contains(".desktop") && !l.contains("config.toml") && !l.contains("icons/")
            })
            .map(|l| format!("{l}\n"))
            .collect();
        let info = INFO.replace("libgtk-3-0, ", "");
        let problems = check_deb_listing(&listing, &info).expect_err("pieces are missing");
        let all = problems.join("\n");
        for expected in ["desktop entry", "icon", "config.toml.example", "libgtk-3-0"] {
            assert!(all.contains(expected), "reports {expected}: {all}");
        }
        assert_eq!(problems.len(), 4, "one problem each: {all}");
    }

    #[test]
    fn a_missing_binary_or_depends_field_fails() {
        let listing = LISTING.replace("./usr/bin/passkey-companion\n", "./usr/bin/other\n");
        let problems = check_deb_listing(&listing, " Package: passkey-companion\n")
            .expect_err("no binary, no Depends");
        let all = problems.join("\n");
        assert!(all.contains(DEB_BINARY), "binary: {all}");
        assert!(all.contains("libwebkit2gtk-4.1-0"), "depends: {all}");
    }

    #[test]
    fn a_package_name_prefix_does_not_count_as_the_dependency() {
        let info = INFO.replace("libgtk-3-0,", "libgtk-3-0-extra,");
        let problems = check_deb_listing(LISTING, &info).expect_err("libgtk-3-0 is not declared");
        assert!(
            problems.iter().any(|p| p.contains("libgtk-3-0")),
            "{problems:?}"
        );
    }

    #[test]
    fn the_listing_format_of_the_tauri_bundler_is_read() {
        // As dpkg-deb prints the .deb the Tauri bundler writes: numeric owner, no leading "./".
        let listing = "\
drwxr-xr-x 0/0               0 2026-11-24 10:02 usr/bin
-rwxr-xr-x 0/0        21593008 2026-11-24 10:02 usr/bin/passkey-companion
-rw-r--r-- 0/0             219 2026-11-24 10:02 usr/share/applications/Passkey Companion.desktop
-rw-r--r-- 0/0             811 2026-11-24 10:02 usr/share/icons/hicolor/32x32/apps/passkey-companion.png
-rw-r--r-- 0/0            1400 2026-11-24 10:02 usr/share/doc/passkey-companion/config.toml.example
";
        let contents = check_deb_listing(listing, INFO).expect("complete");
        assert_eq!(
            contents.icons,
            ["/usr/share/icons/hicolor/32x32/apps/passkey-companion.png"],
            "icon paths are absolute"
        );
    }

    const DESKTOP_ENTRY: &str = "\
[Desktop Entry]
Categories=Utility;
Comment=Manage your passkeys and sign-in methods
Exec=passkey-companion
StartupWMClass=passkey-companion
Icon=passkey-companion
Name=Passkey Companion
Terminal=false
Type=Application
";

    #[test]
    fn the_desktop_entry_of_the_tauri_bundler_passes() {
        let icons = ["/usr/share/icons/hicolor/32x32/apps/passkey-companion.png".to_owned()];
        assert_eq!(
            check_desktop_entry(DESKTOP_ENTRY, &icons),
            Vec::<String>::new(),
            "Exec runs the binary, Icon is installed"
        );
    }

    #[test]
    fn a_desktop_entry_with_a_wrong_exec_or_missing_icon_fails() {
        let icons = ["/usr/share/icons/hicolor/32x32/apps/other.png".to_owned()];
        let entry = DESKTOP_ENTRY.replace("Exec=passkey-companion", "Exec=/opt/elsewhere %u");
        let problems = check_desktop_entry(&entry, &icons).join("\n");
        assert!(problems.contains("Exec="), "wrong Exec: {problems}");
        assert!(problems.contains("Icon="), "icon not installed: {problems}");
        let problems = check_desktop_entry("Name=x\n", &icons).join("\n");
        assert!(
            problems.contains("[Desktop Entry]") && problems.contains("Type"),
            "not a desktop entry: {problems}"
        );
    }

    #[test]
    fn an_unpacked_package_is_checked_file_by_file() {
        use std::os::unix::fs::PermissionsExt as _;
        let root = project_root()
            .join("target")
            .join("xtask")
            .join(format!("unpacked-test-{}", std::process::id()));
        let put = |path: &str, bytes: &[u8]| {
            let path = root.join(path.trim_start_matches('/'));
            std::fs::create_dir_all(path.parent().expect("a parent")).expect("dirs");
            std::fs::write(&path, bytes).expect("write");
            path
        };
        let binary = put(DEB_BINARY, b"\x7fELF rest");
        std::fs::set_permissions(&binary, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let entry = "/usr/share/applications/Passkey Companion.desktop";
        put(entry, DESKTOP_ENTRY.as_bytes());
        let icon = "/usr/share/icons/hicolor/32x32/apps/passkey-companion.png";
        put(icon, b"png");
        let sample = std::fs::read(project_root().join("packaging/config.toml.example"))
            .expect("the sample config");
        put(DEB_SAMPLE_CONFIG, &sample);
        let contents = DebContents {
            desktop_entry: entry.to_owned(),
            icons: vec![icon.to_owned()],
            depends: Vec::new(),
        };
        assert_eq!(check_unpacked(&root, &contents), Ok(()), "complete");
        put(DEB_SAMPLE_CONFIG, b"# something else\n");
        std::fs::set_permissions(&binary, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let problems = check_unpacked(&root, &contents)
            .expect_err("changed")
            .join("\n");
        std::fs::remove_dir_all(&root).expect("cleanup");
        assert!(problems.contains("differs"), "sample config: {problems}");
        assert!(
            problems.contains("not executable"),
            "binary mode: {problems}"
        );
    }

    #[test]
    fn sizes_print_in_megabytes() {
        assert_eq!(human_size(3_300_000), "3.30 MB, 3300000 bytes");
    }
}
