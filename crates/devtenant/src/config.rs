//! Command-line configuration of the `companion-devtenant` binary.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// Configuration of the dev tenant binary.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "companion-devtenant",
    version,
    about = "A local Auth0-compatible tenant for Passkey Companion"
)]
pub struct Config {
    /// Address to listen on; the public base URL is `http://localhost:<port>` (it also answers on `[::1]`).
    #[arg(
        long,
        env = "COMPANION_DEVTENANT_LISTEN",
        default_value = "127.0.0.1:8780"
    )]
    pub listen: SocketAddr,
    /// A world file (TOML) to seed from instead of the built-in demo world.
    #[arg(long, env = "COMPANION_DEVTENANT_WORLD")]
    pub world: Option<PathBuf>,
    /// A JSON file that keeps the tenant's state across restarts (created if missing).
    #[arg(long, env = "COMPANION_DEVTENANT_STATE_FILE")]
    pub state_file: Option<PathBuf>,
    /// Enables the development control surface under `/__dev/` (fault injection, key rotation, call log).
    #[arg(long, env = "COMPANION_DEVTENANT_DEV_CONTROLS")]
    pub dev_controls: bool,
    /// A token-bucket limit on the Management API, e.g. `2/s` like a Free tenant, or `150/min`.
    #[arg(long, env = "COMPANION_DEVTENANT_MGMT_RATE_LIMIT")]
    pub mgmt_rate_limit: Option<RateLimit>,
}

/// A token-bucket rate: `count` requests per `per`, with a burst of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Bucket size and refill amount.
    pub count: u32,
    /// Refill period.
    pub per: Duration,
}

impl FromStr for RateLimit {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (count, unit) = s
            .split_once('/')
            .ok_or_else(|| format!("expected <count>/<s|min|h>, got {s:?}"))?;
        let count: u32 = count
            .trim()
            .parse()
            .map_err(|_| format!("invalid request count in {s:?}"))?;
        if count == 0 {
            return Err("the request count must be at least 1".to_owned());
        }
        let per = match unit.trim() {
            "s" | "sec" | "second" => Duration::from_secs(1),
            "m" | "min" | "minute" => Duration::from_secs(60),
            "h" | "hour" => Duration::from_secs(3600),
            other => return Err(format!("unknown period {other:?}: use s, min or h")),
        };
        Ok(Self { count, per })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limits_parse() {
        assert_eq!(
            "2/s".parse::<RateLimit>(),
            Ok(RateLimit {
                count: 2,
                per: Duration::from_secs(1)
            })
        );
        assert_eq!(
            "150/min".parse::<RateLimit>(),
            Ok(RateLimit {
                count: 150,
                per: Duration::from_secs(60)
            })
        );
        assert!("0/s".parse::<RateLimit>().is_err(), "zero is refused");
        assert!(
            "2/fortnight".parse::<RateLimit>().is_err(),
            "unknown unit is refused"
        );
        assert!(
            "two".parse::<RateLimit>().is_err(),
            "missing slash is refused"
        );
    }
}
