//! Faults on demand, deterministic for a seed: latency, 429 with Retry-After, 5xx, dropped
//! connections, replication delay, and Graph's documented throttling budgets.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Faults {
    /// Seed for the fault sequence: the same seed and request order give the same faults.
    pub seed: u64,
    /// Added to every Graph response.
    pub latency_ms: u64,
    /// Share of requests (0..1) answered 429 TooManyRequests.
    pub throttle_rate: f64,
    /// Retry-After of those 429s, in seconds (may be fractional, like Graph's `2.128`).
    pub retry_after_seconds: f64,
    /// Share of requests answered 503 / 504 / 500.
    pub server_error_rate: f64,
    /// Share of requests whose connection is dropped before a response.
    pub drop_rate: f64,
    /// Share of requests carried out, then dropped: the change is made, the answer is lost.
    pub drop_after_rate: f64,
    /// A new user is not visible for this long: absent from lists and reads, and role
    /// assignments to it fail in one of `replication_shapes`.
    pub replication_delay_ms: u64,
    /// How a role assignment to a principal not replicated yet fails (Graph shows all three).
    pub replication_shape: ReplicationShape,
    /// Enforce Graph's identity throttling budgets per app and tenant.
    pub enforce_budgets: bool,
    /// Requests that always fail with a fixed status (a source that cannot be read), outside
    /// the seeded draws: `fail=503:/roleManagement/directory/roleAssignments@<tenant id>`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fail: Vec<PathFault>,
}

/// Every request (alone or inside `$batch`) whose path under `/v1.0` starts with `path`, in
/// `tenant` (any tenant when absent), is answered `status`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PathFault {
    pub status: u16,
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
}

impl PathFault {
    /// `STATUS:PATH` or `STATUS:PATH@TENANT`.
    fn parse(value: &str) -> Result<PathFault, String> {
        let bad = || format!("`fail={value}`: expected STATUS:PATH or STATUS:PATH@TENANT");
        let (status, rest) = value.split_once(':').ok_or_else(bad)?;
        let status: u16 = status.parse().map_err(|_| bad())?;
        if !(400..600).contains(&status) || !rest.starts_with('/') {
            return Err(bad());
        }
        let (path, tenant) = match rest.split_once('@') {
            Some((p, t)) => (p, Some(t.to_lowercase())),
            None => (rest, None),
        };
        Ok(PathFault {
            status,
            path: path.to_string(),
            tenant,
        })
    }

    /// Whether it answers `path` (under `/v1.0`) in `tenant`.
    pub fn matches(&self, tenant: &str, path: &str) -> bool {
        path.starts_with(&self.path)
            && self
                .tenant
                .as_deref()
                .is_none_or(|t| t.eq_ignore_ascii_case(tenant))
    }
}

impl Faults {
    /// Parses `latency=50ms,throttle=0.1,retry-after=1.5,5xx=0.05,drop=0.01,replication=2s,budgets,seed=7`.
    pub fn parse(spec: &str) -> Result<Faults, String> {
        let mut f = Faults::default();
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) = part.split_once('=').unwrap_or((part, ""));
            let number = || {
                value
                    .parse::<f64>()
                    .map_err(|_| format!("`{part}`: `{value}` is not a number"))
            };
            let duration = || -> Result<u64, String> {
                let d: jiff::SignedDuration = value.parse().map_err(|_| {
                    format!("`{part}`: `{value}` is not a duration like 50ms or 2s")
                })?;
                Ok(d.as_millis().max(0) as u64)
            };
            let rate = || -> Result<f64, String> {
                let r = number()?;
                if (0.0..=1.0).contains(&r) {
                    Ok(r)
                } else {
                    Err(format!("`{part}`: a rate is between 0 and 1"))
                }
            };
            match key {
                "seed" => {
                    f.seed = value
                        .parse()
                        .map_err(|_| format!("`{part}`: seed is a whole number"))?
                }
                "latency" => f.latency_ms = duration()?,
                "throttle" | "429" => f.throttle_rate = rate()?,
                "retry-after" => f.retry_after_seconds = number()?,
                "5xx" | "server-errors" => f.server_error_rate = rate()?,
                "drop" => f.drop_rate = rate()?,
                "drop-after" => f.drop_after_rate = rate()?,
                "replication" => f.replication_delay_ms = duration()?,
                "replication-shape" => {
                    f.replication_shape = match value {
                        "mixed" => ReplicationShape::Mixed,
                        "principal" => ReplicationShape::Principal,
                        "template" => ReplicationShape::Template,
                        "reference" => ReplicationShape::Reference,
                        _ => {
                            return Err(format!(
                                "`{part}`: one of mixed, principal, template, reference"
                            ));
                        }
                    }
                }
                "budgets" => f.enforce_budgets = value.is_empty() || value == "true",
                "fail" => f.fail.push(PathFault::parse(value)?),
                _ => {
                    return Err(format!(
                        "unknown fault `{key}` (known: seed, latency, throttle, retry-after, 5xx, drop, drop-after, replication, replication-shape, budgets, fail)"
                    ));
                }
            }
        }
        if f.throttle_rate > 0.0 && f.retry_after_seconds == 0.0 {
            f.retry_after_seconds = 1.0;
        }
        Ok(f)
    }
}

/// The shapes replication delay takes when a role is assigned to a principal Graph does not
/// see yet (GRAPH.md, "Eventual consistency after an invitation"): 404 naming the principal,
/// 404 naming the role template, or 400 "Not a valid reference update".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ReplicationShape {
    /// Each attempt draws one of the three.
    #[default]
    Mixed,
    Principal,
    Template,
    Reference,
}

impl ReplicationShape {
    /// The shape for one attempt (`draw` in 0..1 picks one when mixed).
    pub fn pick(self, draw: f64) -> ReplicationShape {
        match self {
            ReplicationShape::Mixed if draw < 1.0 / 3.0 => ReplicationShape::Principal,
            ReplicationShape::Mixed if draw < 2.0 / 3.0 => ReplicationShape::Template,
            ReplicationShape::Mixed => ReplicationShape::Reference,
            shape => shape,
        }
    }
}

/// What to do with one request.
#[derive(Clone, Debug, PartialEq)]
pub enum Injected {
    None,
    Throttle { retry_after: f64 },
    ServerError { status: u16 },
    Drop,
}

/// splitmix64: tiny, fast, and stable across versions (a seed means the same sequence forever).
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Draws the random faults for one request.
pub fn draw(faults: &Faults, rng: &mut Rng) -> Injected {
    let roll = rng.next_f64();
    let mut edge = faults.drop_rate;
    if roll < edge {
        return Injected::Drop;
    }
    edge += faults.throttle_rate;
    if roll < edge {
        return Injected::Throttle {
            retry_after: faults.retry_after_seconds,
        };
    }
    edge += faults.server_error_rate;
    if roll < edge {
        let status = [503, 504, 500][(rng.next_u64() % 3) as usize];
        return Injected::ServerError { status };
    }
    Injected::None
}

/// Graph's identity limits per app and tenant: resource units per 10 s by tenant size, and
/// writes per 150 s.
#[derive(Default)]
pub struct Budgets {
    windows: HashMap<(String, String), Window>,
    /// Secure Score requests per (app, tenant): when the minute began, and how many since.
    security: HashMap<(String, String), (Instant, u32)>,
}

/// Secure Score's own limit, always enforced: 150 requests a minute per app per tenant (GRAPH.md,
/// "Secure Score"; Microsoft's throttling limits for the security API).
pub const SECURITY_PER_MINUTE: u32 = 150;
const SECURITY_WINDOW: Duration = Duration::from_secs(60);

struct Window {
    units_start: Instant,
    units: u32,
    writes_start: Instant,
    writes: u32,
}

const UNIT_WINDOW: Duration = Duration::from_secs(10);
const WRITE_WINDOW: Duration = Duration::from_secs(150);
const WRITES_PER_WINDOW: u32 = 3_000;

/// Resource units per 10 s for a tenant of `users` users.
pub fn unit_budget(users: usize) -> u32 {
    match users {
        0..50 => 3_500,
        50..=500 => 5_000,
        _ => 8_000,
    }
}

/// What a request costs: `GET users` 2, `GET contracts` 3, other GETs and writes 1; `$select`
/// -1, `$expand` +1 (never below 1).
pub fn request_cost(method: &str, path: &str, has_select: bool, has_expand: bool) -> u32 {
    let base: i32 = match (method, path.trim_start_matches('/')) {
        ("GET", p) if p == "users" || p.starts_with("users?") => 2,
        ("GET", p) if p.starts_with("contracts") => 3,
        _ => 1,
    };
    let adjusted = base - i32::from(has_select) + i32::from(has_expand);
    adjusted.max(1) as u32
}

impl Budgets {
    /// Charges a Secure Score request; returns the seconds to wait when over the limit.
    pub fn charge_security(&mut self, app: &str, tenant: &str, now: Instant) -> Option<f64> {
        let (start, count) = self
            .security
            .entry((app.to_string(), tenant.to_string()))
            .or_insert((now, 0));
        if now.duration_since(*start) >= SECURITY_WINDOW {
            (*start, *count) = (now, 0);
        }
        if *count >= SECURITY_PER_MINUTE {
            return Some((SECURITY_WINDOW - now.duration_since(*start)).as_secs_f64());
        }
        *count += 1;
        None
    }

    /// Charges a request; returns the seconds to wait when over budget.
    pub fn charge(
        &mut self,
        app: &str,
        tenant: &str,
        users: usize,
        cost: u32,
        is_write: bool,
        now: Instant,
    ) -> Option<f64> {
        let w = self
            .windows
            .entry((app.to_string(), tenant.to_string()))
            .or_insert(Window {
                units_start: now,
                units: 0,
                writes_start: now,
                writes: 0,
            });
        if now.duration_since(w.units_start) >= UNIT_WINDOW {
            w.units_start = now;
            w.units = 0;
        }
        if now.duration_since(w.writes_start) >= WRITE_WINDOW {
            w.writes_start = now;
            w.writes = 0;
        }
        if w.units + cost > unit_budget(users) {
            return Some((UNIT_WINDOW - now.duration_since(w.units_start)).as_secs_f64());
        }
        if is_write && w.writes + 1 > WRITES_PER_WINDOW {
            return Some((WRITE_WINDOW - now.duration_since(w.writes_start)).as_secs_f64());
        }
        w.units += cost;
        if is_write {
            w.writes += 1;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_specs_and_rejects_nonsense() {
        let f = Faults::parse("latency=50ms,throttle=0.1,retry-after=2.128,5xx=0.05,drop=0.01,replication=2s,budgets,seed=7").unwrap();
        assert_eq!(f.latency_ms, 50);
        assert_eq!(f.retry_after_seconds, 2.128);
        assert_eq!(f.replication_delay_ms, 2000);
        assert!(f.enforce_budgets);
        assert_eq!(f.seed, 7);
        assert!(Faults::parse("throttle=2").is_err());
        assert!(Faults::parse("bogus=1").is_err());
        let f = Faults::parse("fail=503:/roleManagement@ABC,fail=403:/users").unwrap();
        assert_eq!(
            f.fail[0],
            PathFault {
                status: 503,
                path: "/roleManagement".into(),
                tenant: Some("abc".into())
            }
        );
        assert!(f.fail[0].matches("abc", "/roleManagement/directory/roleAssignments"));
        assert!(!f.fail[0].matches("other", "/roleManagement/directory/roleAssignments"));
        assert!(f.fail[1].matches("other", "/users/x") && !f.fail[1].matches("t", "/groups"));
        assert!(Faults::parse("fail=200:/users").is_err());
        assert!(Faults::parse("fail=/users").is_err());
    }

    #[test]
    fn same_seed_same_faults() {
        let f = Faults {
            throttle_rate: 0.3,
            server_error_rate: 0.2,
            drop_rate: 0.1,
            retry_after_seconds: 1.0,
            ..Faults::default()
        };
        let run = |seed| {
            let mut rng = Rng::new(seed);
            (0..200).map(|_| draw(&f, &mut rng)).collect::<Vec<_>>()
        };
        assert_eq!(run(42), run(42));
        assert_ne!(run(42), run(43));
        let throttled = run(42)
            .iter()
            .filter(|i| matches!(i, Injected::Throttle { .. }))
            .count();
        assert!((30..90).contains(&throttled), "about 30%: {throttled}");
    }

    #[test]
    fn budgets_follow_graph_limits() {
        let mut b = Budgets::default();
        let t0 = Instant::now();
        assert_eq!(unit_budget(10), 3_500);
        assert_eq!(request_cost("GET", "/users", false, false), 2);
        assert_eq!(request_cost("GET", "/users", true, false), 1);
        assert_eq!(request_cost("GET", "/contracts", false, false), 3);
        for _ in 0..1_750 {
            assert_eq!(b.charge("app", "t", 10, 2, false, t0), None);
        }
        let wait = b.charge("app", "t", 10, 2, false, t0).expect("over budget");
        assert!(wait > 9.9 && wait <= 10.0);
        assert_eq!(
            b.charge("app", "other", 10, 2, false, t0),
            None,
            "budgets are per tenant"
        );
        assert_eq!(
            b.charge("app", "t", 10, 2, false, t0 + UNIT_WINDOW),
            None,
            "window resets"
        );
    }
}
