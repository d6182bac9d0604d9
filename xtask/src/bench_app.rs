//! `cargo xtask bench app`: start-up time to a painted window, memory of the app with its WebKit processes,
//! and the `.deb` size, each next to a baseline measured in the same run.
//!
//! Runs the binary unpacked from the `.deb` (built by `cargo xtask bundle` when missing) under its own `dbus-run-session -- xvfb-run`. "Painted" means
//! the window's content area (below the top quarter, so a browser toolbar does not count) shows at least
//! [`PAINTED_COLORS`] distinct colours, i.e. text has been drawn; it is polled with ImageMagick's `import`, so
//! the resolution is one screenshot (tens of milliseconds). The baselines: spawning `true`, and WebKitGTK's
//! own `MiniBrowser` loading the same `ui/index.html` from disk (a bare WebKitGTK window with no Tauri).
//! Memory is summed over every process of the app's process group (UI, WebKitWebProcess,
//! WebKitNetworkProcess, ...), as RSS (double-counts shared pages) and PSS (shares split fairly).

use std::collections::HashSet;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use crate::bundle::{file_size, human_size, newest_bundle};
use crate::ci::project_root;

/// Runs of each measured program; the median is reported.
const RUNS: usize = 5;
/// Distinct colours in the content area that count as "painted".
const PAINTED_COLORS: usize = 8;
/// How long a window may take to paint before the run fails.
const PAINT_DEADLINE: Duration = Duration::from_secs(30);
/// Time after the first paint before memory is read (the page finishes loading, the app its first commands).
const SETTLE: Duration = Duration::from_secs(2);
/// Set in the re-executed process that runs under the D-Bus session and Xvfb.
const INNER_ENV: &str = "XTASK_BENCH_APP_INNER";
/// WebKitGTK's test browser (package libwebkit2gtk-4.1-0).
const MINIBROWSER: &str = "/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser";
/// The Xvfb screen.
const XVFB_SCREEN: &str = "-screen 0 1280x800x24";

/// One measured launch.
#[derive(Debug, Clone, Copy)]
struct Launch {
    /// Spawn to first painted frame.
    paint: Duration,
    /// Sum of VmRSS over the process group, bytes.
    rss: u64,
    /// Sum of Pss over the process group, bytes.
    pss: u64,
    /// Processes in the group.
    processes: usize,
}

/// Re-runs itself inside a private D-Bus session and Xvfb, then measures.
pub(crate) fn run() -> Result<()> {
    if std::env::var_os(INNER_ENV).is_some() {
        return inner();
    }
    let root = project_root();
    // The shipped binary: `tauri build` compiles with features a plain `cargo build` lacks (embedded assets).
    if newest_bundle(&root, "deb").is_err() {
        println!("bench app: no .deb yet; running `cargo xtask bundle` first");
        crate::bundle::run()?;
    }
    let me = std::env::current_exe().context("locating the xtask binary")?;
    let status = Command::new("dbus-run-session")
        .args(["--", "xvfb-run", "-a", "-s", XVFB_SCREEN])
        // Start the display search away from 99, where other engineers' `xvfb-run -a` race for the same number.
        .args(["-n", &(200 + std::process::id() % 500).to_string()])
        .arg(me)
        .args(["bench", "app"])
        .env(INNER_ENV, "1")
        .status()
        .context("running dbus-run-session -- xvfb-run (cargo xtask setup installs them)")?;
    if !status.success() {
        bail!("bench app failed under xvfb-run: {status}");
    }
    Ok(())
}

/// Inside the session: measures the baselines and the app, prints the table.
fn inner() -> Result<()> {
    let root = project_root();
    let scratch = root.join("target").join("bench-app");
    let deb = newest_bundle(&root, "deb")?;
    let unpacked = scratch.join("deb-root");
    let _ = std::fs::remove_dir_all(&unpacked);
    std::fs::create_dir_all(&unpacked)
        .with_context(|| format!("creating {}", unpacked.display()))?;
    let status = Command::new("dpkg-deb")
        .arg("-x")
        .arg(&deb)
        .arg(&unpacked)
        .status()
        .context("running dpkg-deb -x")?;
    if !status.success() {
        bail!("dpkg-deb -x {} failed: {status}", deb.display());
    }
    let app = unpacked.join("usr").join("bin").join("passkey-companion");
    if !app.is_file() {
        bail!("{} holds no /usr/bin/passkey-companion", deb.display());
    }

    let mut spawn_true = Vec::new();
    for _ in 0..RUNS {
        let started = Instant::now();
        let status = Command::new("true").status().context("running true")?;
        if !status.success() {
            bail!("true failed");
        }
        spawn_true.push(started.elapsed());
    }

    let index = root.join("ui").join("index.html");
    let mut baseline = Vec::new();
    let mut measured = Vec::new();
    for run in 0..RUNS {
        // Alternate, so machine load hits both alike.
        let mut browser = Command::new(MINIBROWSER);
        browser.arg(format!("file://{}", index.display()));
        baseline.push(launch(
            &mut browser,
            &scratch.join(format!("baseline-{run}")),
            "MiniBrowser",
        )?);
        let mut command = Command::new(&app);
        measured.push(launch(
            &mut command,
            &scratch.join(format!("app-{run}")),
            "passkey-companion",
        )?);
    }
    let deb_size = file_size(&deb)?;
    print_table(
        &spawn_true,
        &baseline,
        &measured,
        Some(&deb),
        Some(deb_size),
    );
    Ok(())
}

/// Launches `command` with fresh XDG directories under `home`, waits for its first painted frame, reads the
/// memory of its process group after [`SETTLE`], then kills the group.
fn launch(command: &mut Command, home: &Path, name: &str) -> Result<Launch> {
    let _ = std::fs::remove_dir_all(home);
    for dir in ["config", "data", "cache", "state"] {
        std::fs::create_dir_all(home.join(dir))?;
    }
    command
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("XDG_DATA_HOME", home.join("data"))
        .env("XDG_CACHE_HOME", home.join("cache"))
        .env("XDG_STATE_HOME", home.join("state"))
        .stdin(Stdio::null())
        // Output to a file: MiniBrowser did not map its window with its output on /dev/null.
        .stdout(std::fs::File::create(home.join("stdout.log"))?)
        .stderr(std::fs::File::create(home.join("stderr.log"))?);
    std::os::unix::process::CommandExt::process_group(command, 0);
    let started = Instant::now();
    let child = command
        .spawn()
        .with_context(|| format!("starting {name}"))?;
    let group = Group(child);
    let pid = group.0.id();
    let paint = loop {
        if started.elapsed() > PAINT_DEADLINE {
            bail!("{name} did not paint within {PAINT_DEADLINE:?}");
        }
        if let Some(window) = visible_window(pid)?
            && painted(&window)?
        {
            break started.elapsed();
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    std::thread::sleep(SETTLE);
    let (rss, pss, processes) = group_memory(pid)?;
    drop(group);
    Ok(Launch {
        paint,
        rss,
        pss,
        processes,
    })
}

/// Kills the whole process group on drop.
struct Group(Child);

impl Drop for Group {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.0.id())])
            .status();
        let _ = self.0.wait();
    }
}

/// The first visible X window of `pid`, if mapped yet.
fn visible_window(pid: u32) -> Result<Option<String>> {
    let output = Command::new("xdotool")
        .args(["search", "--onlyvisible", "--pid", &pid.to_string()])
        .output()
        .context("running xdotool (apt-get install xdotool)")?;
    Ok(String::from_utf8_lossy(&output.stdout)
        .lines()
        .next()
        .map(str::to_owned))
}

/// Whether the window shows drawn content: a screenshot as PPM, colours counted below the top quarter.
fn painted(window: &str) -> Result<bool> {
    let output = Command::new("import")
        .args(["-silent", "-window", window, "-depth", "8", "ppm:-"])
        .output()
        .context("running import (apt-get install imagemagick)")?;
    if !output.status.success() {
        // The window went away between search and screenshot, or is not viewable yet.
        return Ok(false);
    }
    Ok(distinct_content_colors(&output.stdout, PAINTED_COLORS) >= PAINTED_COLORS)
}

/// Distinct colours (up to `enough`) in the rows below the top quarter of a binary PPM (P6, maxval 255).
fn distinct_content_colors(ppm: &[u8], enough: usize) -> usize {
    let Some((width, height, pixels)) = parse_ppm(ppm) else {
        return 0;
    };
    let start = (height / 4) * width * 3;
    let mut seen = HashSet::new();
    for pixel in pixels.get(start..).unwrap_or_default().chunks_exact(3) {
        seen.insert([pixel[0], pixel[1], pixel[2]]);
        if seen.len() >= enough {
            break;
        }
    }
    seen.len()
}

/// Width, height and pixel bytes of a binary PPM with maxval 255.
fn parse_ppm(ppm: &[u8]) -> Option<(usize, usize, &[u8])> {
    let mut fields = Vec::new();
    let mut pos = 0;
    while fields.len() < 4 {
        while ppm.get(pos)?.is_ascii_whitespace() {
            pos += 1;
        }
        if ppm.get(pos) == Some(&b'#') {
            while *ppm.get(pos)? != b'\n' {
                pos += 1;
            }
            continue;
        }
        let start = pos;
        while !ppm.get(pos)?.is_ascii_whitespace() {
            pos += 1;
        }
        fields.push(std::str::from_utf8(&ppm[start..pos]).ok()?);
    }
    if fields[0] != "P6" || fields[3] != "255" {
        return None;
    }
    let width: usize = fields[1].parse().ok()?;
    let height: usize = fields[2].parse().ok()?;
    let pixels = ppm.get(pos + 1..)?;
    (pixels.len() >= width * height * 3).then_some((width, height, pixels))
}

/// Sums VmRSS and Pss (bytes) over the processes whose process group is `group`; also their count.
fn group_memory(group: u32) -> Result<(u64, u64, usize)> {
    let (mut rss, mut pss, mut count) = (0, 0, 0);
    for entry in std::fs::read_dir("/proc").context("reading /proc")? {
        let path = entry?.path();
        let Ok(stat) = std::fs::read_to_string(path.join("stat")) else {
            continue;
        };
        if stat_pgrp(&stat) != Some(group) {
            continue;
        }
        count += 1;
        if let Ok(status) = std::fs::read_to_string(path.join("status")) {
            rss += kb_field(&status, "VmRSS:").unwrap_or(0) * 1024;
        }
        if let Ok(rollup) = std::fs::read_to_string(path.join("smaps_rollup")) {
            pss += kb_field(&rollup, "Pss:").unwrap_or(0) * 1024;
        }
    }
    Ok((rss, pss, count))
}

/// The process group (5th field) of a `/proc/<pid>/stat` line; the command name may hold spaces.
fn stat_pgrp(stat: &str) -> Option<u32> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(2)?.parse().ok()
}

/// The value in kB of the first line starting with `field` (`VmRSS:    1234 kB`).
fn kb_field(text: &str, field: &str) -> Option<u64> {
    text.lines()
        .find_map(|line| line.strip_prefix(field))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The median of `values` (upper median for an even count).
fn median<T: Copy + Ord>(values: impl IntoIterator<Item = T>) -> Option<T> {
    let mut values: Vec<T> = values.into_iter().collect();
    values.sort_unstable();
    values.get(values.len() / 2).copied()
}

/// Prints the Markdown table (medians of [`RUNS`]).
fn print_table(
    spawn_true: &[Duration],
    baseline: &[Launch],
    app: &[Launch],
    deb: Option<&Path>,
    deb_size: Option<u64>,
) {
    let ms = |d: Option<Duration>| {
        d.map_or_else(
            || "-".to_owned(),
            |d| format!("{:.0} ms", d.as_secs_f64() * 1000.0),
        )
    };
    let mb =
        |b: Option<u64>| b.map_or_else(|| "-".to_owned(), |b| format!("{:.0} MB", megabytes(b)));
    let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}x", a / b),
        _ => "-".to_owned(),
    };
    let paint = |l: &[Launch]| median(l.iter().map(|l| l.paint));
    let rss = |l: &[Launch]| median(l.iter().map(|l| l.rss));
    let pss = |l: &[Launch]| median(l.iter().map(|l| l.pss));
    let procs = |l: &[Launch]| median(l.iter().map(|l| l.processes));
    let secs = |d: Option<Duration>| d.map(|d| d.as_secs_f64());
    #[allow(clippy::cast_precision_loss, reason = "display only")]
    let float = |b: Option<u64>| b.map(|b| b as f64);
    let deb_target = deb_size.map_or_else(
        || "not built (run `cargo xtask bundle`)".to_owned(),
        |size| {
            let verdict = if size <= 10_000_000 { "met" } else { "missed" };
            format!("{}: {verdict}", human_size(size))
        },
    );
    let met = |ok: bool| if ok { "met" } else { "missed" };
    let app_paint = paint(app);
    let app_rss = rss(app);
    println!();
    println!(
        "Medians of {RUNS} launches each, the .deb's binary, under Xvfb (no GPU), alternating app and baseline."
    );
    println!();
    println!(
        "| measure | passkey-companion | baseline: MiniBrowser (bare WebKitGTK) | ratio | target |"
    );
    println!("|---|---|---|---|---|");
    println!(
        "| spawn to first painted frame | {} | {} | {} | cold start <= 1 s: {} (signed-out view; `true` spawns in {}) |",
        ms(app_paint),
        ms(paint(baseline)),
        ratio(secs(app_paint), secs(paint(baseline))),
        met(app_paint.is_some_and(|d| d <= Duration::from_secs(1))),
        ms(median(spawn_true.iter().copied())),
    );
    println!(
        "| total RSS, all processes, {} s after paint | {} | {} | {} | <= 150 MB: {} |",
        SETTLE.as_secs(),
        mb(app_rss),
        mb(rss(baseline)),
        ratio(float(app_rss), float(rss(baseline))),
        met(app_rss.is_some_and(|b| b <= 150_000_000)),
    );
    println!(
        "| total PSS, all processes | {} | {} | {} | (shared pages split) |",
        mb(pss(app)),
        mb(pss(baseline)),
        ratio(float(pss(app)), float(pss(baseline))),
    );
    println!(
        "| processes | {} | {} | | |",
        procs(app).unwrap_or(0),
        procs(baseline).unwrap_or(0)
    );
    println!(
        "| `.deb` size | {} | | | <= 10 MB: {deb_target} |",
        deb_size.map_or_else(|| "-".to_owned(), |s| format!("{:.2} MB", megabytes(s)))
    );
    if let Some(deb) = deb {
        println!();
        println!("(.deb: {})", deb.display());
    }
    for (name, launches) in [("app", app), ("baseline", baseline)] {
        let each: Vec<String> = launches.iter().map(|l| ms(Some(l.paint))).collect();
        println!("{name} paint times: {}", each.join(", "));
    }
}

/// Bytes in MB (10^6).
fn megabytes(bytes: u64) -> f64 {
    #[allow(clippy::cast_precision_loss, reason = "display only")]
    let value = bytes as f64;
    value / 1_000_000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ppm(width: usize, height: usize, pixel: impl Fn(usize, usize) -> [u8; 3]) -> Vec<u8> {
        let mut out = format!("P6\n# comment\n{width} {height}\n255\n").into_bytes();
        for y in 0..height {
            for x in 0..width {
                out.extend_from_slice(&pixel(x, y));
            }
        }
        out
    }

    #[test]
    fn a_blank_window_is_not_painted_and_text_is() {
        let blank = ppm(40, 40, |_, _| [255, 255, 255]);
        assert_eq!(distinct_content_colors(&blank, 8), 1, "one colour");
        let text = ppm(40, 40, |x, y| {
            if y > 20 {
                [x as u8, x as u8, 0]
            } else {
                [255; 3]
            }
        });
        assert_eq!(distinct_content_colors(&text, 8), 8, "stops at enough");
    }

    #[test]
    fn colours_in_the_top_quarter_do_not_count() {
        let toolbar = ppm(
            40,
            40,
            |x, y| if y < 10 { [x as u8, 0, 0] } else { [255; 3] },
        );
        assert_eq!(distinct_content_colors(&toolbar, 8), 1, "toolbar only");
    }

    #[test]
    fn a_truncated_or_foreign_image_counts_nothing() {
        let mut short = ppm(10, 10, |_, _| [1, 2, 3]);
        short.truncate(40);
        assert_eq!(distinct_content_colors(&short, 8), 0, "truncated");
        assert_eq!(
            distinct_content_colors(b"P3\n1 1\n255\n0 0 0\n", 8),
            0,
            "ASCII PPM"
        );
    }

    #[test]
    fn proc_fields_are_parsed() {
        let stat = "1234 (Web Content) S 1000 4321 4321 0 -1 4194560 1 0 0 0";
        assert_eq!(
            stat_pgrp(stat),
            Some(4321),
            "pgrp after a name with a space"
        );
        let status = "Name:\tx\nVmPeak:\t 9 kB\nVmRSS:\t   51234 kB\n";
        assert_eq!(kb_field(status, "VmRSS:"), Some(51234), "VmRSS");
        assert_eq!(kb_field("Rss: 5 kB\nPss:  7 kB\n", "Pss:"), Some(7), "Pss");
        assert_eq!(kb_field(status, "Pss:"), None, "absent");
    }

    #[test]
    fn the_median_is_the_middle_value() {
        assert_eq!(median([5, 1, 3]), Some(3), "odd");
        assert_eq!(median([4, 1, 3, 2]), Some(3), "upper median");
        assert_eq!(median(Vec::<u32>::new()), None, "empty");
    }
}
