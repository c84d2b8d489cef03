//! The value types of the fabric language that have structure: quantities,
//! durations, cron schedules, names, URIs, secret sources, routing
//! conditions and MIG profiles. Each parser returns the typed value or a
//! reason, so what lowering checked is what the back end reads.

use std::fmt;

/// Parses a memory or storage size ("512GiB", "100Gi", "1.5TB") into bytes.
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    if number.is_empty() {
        return Err("a size starts with a number, such as `50Gi`".into());
    }
    let value: f64 = number.parse().map_err(|_| format!("`{number}` is not a number"))?;
    let multiplier: u64 = match unit {
        "B" | "" => 1,
        "KB" | "K" | "k" => 1_000,
        "MB" | "M" => 1_000_000,
        "GB" | "G" => 1_000_000_000,
        "TB" | "T" => 1_000_000_000_000,
        "PB" | "P" => 1_000_000_000_000_000,
        "KiB" | "Ki" => 1 << 10,
        "MiB" | "Mi" => 1 << 20,
        "GiB" | "Gi" => 1 << 30,
        "TiB" | "Ti" => 1 << 40,
        "PiB" | "Pi" => 1 << 50,
        other => {
            return Err(format!(
                "`{other}` is not a size unit; use B, KB, MB, GB, TB, PB or KiB, MiB, GiB, TiB, PiB (Kubernetes' Ki, Mi, Gi, Ti also work)"
            ));
        }
    };
    if unit.is_empty() {
        return Err("a size needs a unit, such as `Gi` or `GB`".into());
    }
    let bytes = value * multiplier as f64;
    if !bytes.is_finite() || bytes >= u64::MAX as f64 {
        return Err("the size is too large".into());
    }
    Ok(bytes as u64)
}

/// Parses a duration ("800ms", "7d", "1h30m") into milliseconds.
pub fn parse_millis(text: &str) -> Result<u64, String> {
    if text.is_empty() {
        return Err("a duration is a number and a unit, such as `7d` or `800ms`".into());
    }
    let mut total: u64 = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        if digits == 0 {
            return Err(format!(
                "expected a number at `{rest}`; a duration is a number and a unit, such as `7d` or `800ms`"
            ));
        }
        let number: u64 = rest[..digits].parse().map_err(|_| "the number is too large".to_owned())?;
        rest = &rest[digits..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
        let factor = match &rest[..unit_len] {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 604_800_000,
            "" => return Err(format!("`{number}` needs a unit: ms, s, m, h, d or w")),
            other => return Err(format!("`{other}` is not a duration unit; use ms, s, m, h, d or w")),
        };
        total = number
            .checked_mul(factor)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| "the duration is too long".to_owned())?;
        rest = &rest[unit_len..];
    }
    Ok(total)
}

/// A five-field cron schedule (minute hour day-of-month month day-of-week),
/// as written and as the set of values each field allows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cron {
    text: String,
    /// Bit `v` of field `i` is set when the field allows `v` (weekday 7 is 0).
    fields: [u64; 5],
}

impl Cron {
    pub fn parse(text: &str) -> Result<Cron, String> {
        Ok(Cron { text: text.to_owned(), fields: parse_cron(text)? })
    }

    /// The schedule as written (Temporal's schedule specs take cron text).
    #[must_use]
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Whether field `index` (0 minute … 4 weekday) allows `value`.
    #[must_use]
    pub fn allows(&self, index: usize, value: u32) -> bool {
        self.fields.get(index).is_some_and(|bits| value < 64 && bits & (1 << value) != 0)
    }

    /// Whether the schedule fires at all: `0 0 31 2 *` (February 31st)
    /// never does. When both day fields are restricted, cron fires on either,
    /// and every weekday occurs in every month.
    #[must_use]
    pub fn can_fire(&self) -> bool {
        const DAYS: [u32; 13] = [0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
        // Only a restricted day of month with any weekday can miss every month.
        let mut words = self.text.split_whitespace();
        let (day, weekday) = (words.nth(2), words.nth(1));
        if day.is_none_or(|d| d == "*") || weekday.is_none_or(|w| w != "*") {
            return true;
        }
        (1..=12u32).any(|m| self.allows(3, m) && (1..=DAYS[m as usize]).any(|d| self.allows(2, d)))
    }
}

/// The values each field allows, as bit sets.
fn parse_cron(text: &str) -> Result<[u64; 5], String> {
    const FIELDS: [(&str, u32, u32); 5] =
        [("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12), ("day of week", 0, 7)];
    const MONTHS: [&str; 12] = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"];
    const WEEKDAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];
    let fields: Vec<&str> = text.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(format!(
            "a schedule has five fields (minute hour day-of-month month day-of-week), this one has {}",
            fields.len()
        ));
    }
    let mut sets = [0u64; 5];
    for (index, (field, (what, low, high))) in fields.iter().zip(FIELDS).enumerate() {
        // Month and weekday names (`JAN`, `mon`), as cron(8) accepts them.
        let names: &[&str] = match index {
            3 => &MONTHS,
            4 => &WEEKDAYS,
            _ => &[],
        };
        let first = if index == 3 { 1 } else { 0 };
        for part in field.split(',') {
            let (range, step) = match part.split_once('/') {
                Some((range, step)) => (range, Some(step)),
                None => (part, None),
            };
            let step = match step {
                None => 1,
                Some(step) => match step.parse::<u32>() {
                    Ok(s) if s >= 1 && s <= high => s,
                    _ => {
                        return Err(format!(
                            "the step `/{step}` of the {what} field must be a number from 1 to {high}"
                        ));
                    }
                },
            };
            let parse = |s: &str| -> Result<u32, String> {
                if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(s)) {
                    return Ok(u32::try_from(i).unwrap_or(0) + first);
                }
                match s.parse::<u32>() {
                    Ok(v) if (low..=high).contains(&v) => Ok(v),
                    Ok(v) => Err(format!("{v} is out of range for the {what} field ({low}-{high})")),
                    Err(_) => {
                        Err(format!("`{s}` is not a number in the {what} field (use *, a number, a-b, a,b or */n)"))
                    }
                }
            };
            let (start, end) = if range == "*" {
                (low, high)
            } else {
                match range.split_once('-') {
                    Some((a, b)) => {
                        let (start, end) = (parse(a)?, parse(b)?);
                        if end < start {
                            return Err(format!("the range {start}-{end} of the {what} field runs backwards"));
                        }
                        (start, end)
                    }
                    None => {
                        let v = parse(range)?;
                        (v, if step > 1 { high } else { v })
                    }
                }
            };
            for v in (start..=end).step_by(step as usize) {
                // Day of week 7 is Sunday, as 0 is.
                sets[index] |= 1 << if index == 4 && v == 7 { 0 } else { v };
            }
        }
    }
    Ok(sets)
}

/// Checks that a declared name can become a Kubernetes object name and
/// label value: lowercase letters, digits, `-` and `.`, at most 63.
pub fn check_name(text: &str) -> Result<(), String> {
    if text.is_empty() {
        return Err("a name cannot be empty".into());
    }
    if text.len() > 63 {
        return Err(format!("a name has at most 63 characters, this one has {}", text.len()));
    }
    if !text.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.') {
        return Err("a name may contain only lowercase letters, digits, `-` and `.`".into());
    }
    if !text.as_bytes()[0].is_ascii_lowercase() {
        return Err("a name must start with a lowercase letter".into());
    }
    if text.ends_with(['-', '.']) {
        return Err("a name must end with a letter or a digit".into());
    }
    Ok(())
}

/// A safe suggestion for an invalid name: lowercased, other characters as `-`.
pub fn suggest_name(text: &str) -> Option<String> {
    let mut out: String = text
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '.' { c.to_ascii_lowercase() } else { '-' })
        .collect();
    while out.contains("--") {
        out = out.replace("--", "-");
    }
    let out = out.trim_matches('-').chars().take(63).collect::<String>();
    let out = out.trim_end_matches(['-', '.']).to_owned();
    check_name(&out).is_ok().then_some(out)
}

/// An address `scheme://[userinfo@]host[:port][/path][?query][#fragment]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Uri {
    text: String,
    /// Where the scheme ends (the `:` of `://`).
    scheme_end: usize,
}

impl Uri {
    /// Parses `text`, whose scheme must be one of `schemes`.
    pub fn parse(text: &str, schemes: &[String]) -> Result<Uri, String> {
        let allowed = schemes.iter().map(|s| format!("{s}://")).collect::<Vec<_>>().join(", ");
        match text.split_once("://") {
            Some((scheme, rest))
                if schemes.iter().any(|s| s == scheme) && !rest.is_empty() && !rest.contains(char::is_whitespace) =>
            {
                Ok(Uri { text: text.to_owned(), scheme_end: scheme.len() })
            }
            Some((scheme, _)) if !schemes.iter().any(|s| s == scheme) => {
                Err(format!("the scheme `{scheme}://` is not accepted here; use {allowed}"))
            }
            Some(_) => Err("the address after the scheme is empty or contains spaces".into()),
            None => Err(format!("expected an address starting with {allowed}")),
        }
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.text
    }

    #[must_use]
    pub fn scheme(&self) -> &str {
        &self.text[..self.scheme_end]
    }

    /// The RFC 3986 authority: everything after `://` up to the path, query or fragment.
    #[must_use]
    pub fn authority(&self) -> &str {
        let rest = &self.text[self.scheme_end + 3..];
        rest.split(['/', '?', '#']).next().unwrap_or_default()
    }

    /// The host, an IPv6 literal with its brackets; userinfo and port excluded,
    /// so a path, query, fragment or userinfo cannot pass for a host.
    #[must_use]
    pub fn host(&self) -> &str {
        let authority = self.authority();
        let host_port = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
        if host_port.starts_with('[') {
            return host_port.split_once(']').map_or(host_port, |(h, _)| &host_port[..=h.len()]);
        }
        host_port.split(':').next().unwrap_or_default()
    }

    /// Everything after the authority (path, query and fragment), possibly empty.
    #[must_use]
    pub fn path(&self) -> &str {
        &self.text[self.scheme_end + 3 + self.authority().len()..]
    }
}

impl fmt::Display for Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Where a secret's value comes from. Only the place, never the value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecretSource {
    /// An environment variable of the process that applies.
    Env(String),
    File(String),
    /// A Vault path, read by the External Secrets operator in the cluster.
    Vault(String),
    /// A Secret that already exists in a cluster.
    Kubernetes {
        namespace: String,
        name: String,
    },
}

impl SecretSource {
    /// Parses `env:VAR`, `file:PATH`, `vault:PATH` or `k8s:NAMESPACE/NAME`.
    /// A reason never quotes the text: it may be the secret itself.
    pub fn parse(text: &str) -> Result<SecretSource, String> {
        let help = "use env:VAR, file:PATH, vault:PATH or k8s:NAMESPACE/NAME";
        let Some((scheme, rest)) = text.split_once(':') else {
            return Err(format!("a secret source names where the value comes from; {help}"));
        };
        match scheme {
            "env"
                if !rest.is_empty()
                    && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                    && !rest.as_bytes()[0].is_ascii_digit() =>
            {
                Ok(SecretSource::Env(rest.to_owned()))
            }
            "env" => {
                Err("an environment variable name has letters, digits and `_`, and does not start with a digit".into())
            }
            "file" if !rest.is_empty() => Ok(SecretSource::File(rest.to_owned())),
            "vault" if !rest.is_empty() => Ok(SecretSource::Vault(rest.to_owned())),
            "k8s" => {
                let mut parts = rest.split('/').filter(|s| !s.is_empty());
                match (parts.next(), parts.next(), parts.next()) {
                    (Some(namespace), Some(name), None) => {
                        Ok(SecretSource::Kubernetes { namespace: namespace.to_owned(), name: name.to_owned() })
                    }
                    _ => Err("a Kubernetes secret is written k8s:NAMESPACE/NAME".into()),
                }
            }
            // The text is never echoed, not even before the `:`: it may be the secret.
            _ => Err(format!("the text before the first `:` names no secret source; {help}")),
        }
    }
}

/// A comparison operator of a routing condition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompareOp {
    Less,
    LessOrEqual,
    Greater,
    GreaterOrEqual,
    Equal,
    NotEqual,
}

impl CompareOp {
    #[must_use]
    pub fn parse(text: &str) -> Option<CompareOp> {
        Some(match text {
            "<" => CompareOp::Less,
            "<=" => CompareOp::LessOrEqual,
            ">" => CompareOp::Greater,
            ">=" => CompareOp::GreaterOrEqual,
            "==" => CompareOp::Equal,
            "!=" => CompareOp::NotEqual,
            _ => return None,
        })
    }

    #[must_use]
    pub fn symbol(self) -> &'static str {
        match self {
            CompareOp::Less => "<",
            CompareOp::LessOrEqual => "<=",
            CompareOp::Greater => ">",
            CompareOp::GreaterOrEqual => ">=",
            CompareOp::Equal => "==",
            CompareOp::NotEqual => "!=",
        }
    }
}

/// `metric op number`.
#[derive(Clone, Debug, PartialEq)]
pub struct Comparison {
    pub metric: String,
    pub op: CompareOp,
    pub value: f64,
}

/// How two comparisons are joined.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Join {
    And,
    Or,
}

/// A routing condition: comparisons joined by `and` / `or`, left to right
/// as written (`and` binds tighter, as in most languages).
#[derive(Clone, Debug, PartialEq)]
pub struct Condition {
    pub first: Comparison,
    pub rest: Vec<(Join, Comparison)>,
}

impl Condition {
    pub fn parse(text: &str) -> Result<Condition, String> {
        let words: Vec<&str> = text.split_whitespace().collect();
        if words.is_empty() {
            return Err("the condition is empty; write it like `confidence < 0.6`".into());
        }
        let mut comparisons = Vec::new();
        let mut joins = Vec::new();
        let mut i = 0;
        loop {
            let [metric, op, number] = [words.get(i), words.get(i + 1), words.get(i + 2)];
            let (Some(metric), Some(op), Some(number)) = (metric, op, number) else {
                return Err("each comparison is `metric op number`, such as `confidence < 0.6`".into());
            };
            if !metric.starts_with(|c: char| c.is_ascii_alphabetic())
                || !metric.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
            {
                return Err(format!("`{metric}` is not a metric name"));
            }
            let Some(op) = CompareOp::parse(op) else {
                return Err(format!("`{op}` is not a comparison; use <, <=, >, >=, == or !="));
            };
            let value = match number.parse::<f64>() {
                Ok(v) if v.is_finite() => v,
                _ => return Err(format!("`{number}` is not a number")),
            };
            comparisons.push(Comparison { metric: (*metric).to_owned(), op, value });
            i += 3;
            match words.get(i) {
                None => break,
                Some(&"and") => joins.push(Join::And),
                Some(&"or") => joins.push(Join::Or),
                Some(other) => return Err(format!("expected `and` or `or`, found `{other}`")),
            }
            i += 1;
        }
        let mut comparisons = comparisons.into_iter();
        let first = comparisons.next().ok_or("the condition is empty")?;
        Ok(Condition { first, rest: joins.into_iter().zip(comparisons).collect() })
    }

    /// The metrics the condition reads, in order.
    pub fn metrics(&self) -> impl Iterator<Item = &str> {
        std::iter::once(&self.first).chain(self.rest.iter().map(|(_, c)| c)).map(|c| c.metric.as_str())
    }
}

impl fmt::Display for Comparison {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.metric, self.op.symbol(), self.value)
    }
}

impl fmt::Display for Condition {
    /// The condition with single spaces, as routers take it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.first)?;
        for (join, comparison) in &self.rest {
            let word = match join {
                Join::And => "and",
                Join::Or => "or",
            };
            write!(f, " {word} {comparison}")?;
        }
        Ok(())
    }
}

/// A MIG profile name such as `3g.40gb` or `1g.10gb+me`: compute slices,
/// memory and whether it takes the media extensions. Which profiles a GPU
/// offers is the catalog's business; this is only the name's shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MigProfile {
    pub compute_slices: u16,
    pub memory_gb: u32,
    pub media_extensions: bool,
}

impl MigProfile {
    pub fn parse(text: &str) -> Result<MigProfile, String> {
        let bad = || format!("`{text}` is not a MIG profile name; they look like `1g.10gb`, `3g.40gb` or `7g.80gb`");
        let (base, media_extensions) = match text.strip_suffix("+me") {
            Some(base) => (base, true),
            None => (text, false),
        };
        let (slices, memory) = base.split_once("g.").ok_or_else(bad)?;
        let memory = memory.strip_suffix("gb").ok_or_else(bad)?;
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(slices) || !digits(memory) {
            return Err(bad());
        }
        Ok(MigProfile {
            compute_slices: slices.parse().map_err(|_| bad())?,
            memory_gb: memory.parse().map_err(|_| bad())?,
            media_extensions,
        })
    }
}

impl fmt::Display for MigProfile {
    /// The name NVIDIA's tools use (`nvidia.com/mig-3g.40gb`, mig-parted configs).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}g.{}gb{}", self.compute_slices, self.memory_gb, if self.media_extensions { "+me" } else { "" })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_bytes("100Gi"), Ok(100 << 30));
        assert_eq!(parse_bytes("512GiB"), Ok(512 << 30));
        assert_eq!(parse_bytes("1.5TB"), Ok(1_500_000_000_000));
        assert!(parse_bytes("12 GiB").is_err());
        assert!(parse_bytes("GiB").is_err());
        assert!(parse_bytes("12").is_err());
        assert!(parse_bytes("12gb").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_millis("800ms"), Ok(800));
        assert_eq!(parse_millis("7d"), Ok(7 * 86_400_000));
        assert_eq!(parse_millis("1h30m"), Ok(5_400_000));
        for bad in ["", "7", "d", "7days", "1.5h", "-1s"] {
            assert!(parse_millis(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cron() {
        for good in
            ["0 2 * * *", "*/15 * * * 1-5", "0 0 1,15 * 0", "30 4 * 1-12/2 7", "0 9 * JAN-MAR mon-fri", "0 0 1 * SUN"]
        {
            assert!(Cron::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "0 2 * *",
            "60 * * * *",
            "* 24 * * *",
            "* * 0 * *",
            "* * * 13 *",
            "* * * * 8",
            "5-1 * * * *",
            "*/0 * * * *",
            "a * * * *",
        ] {
            assert!(Cron::parse(bad).is_err(), "{bad}");
        }
        assert!(!Cron::parse("0 0 31 2 *").unwrap().can_fire());
        assert!(!Cron::parse("0 0 30,31 2 *").unwrap().can_fire());
        assert!(Cron::parse("0 0 29 2 *").unwrap().can_fire());
        assert!(Cron::parse("0 0 31 2 MON").unwrap().can_fire());
        assert!(Cron::parse("0 0 31 1-3 *").unwrap().can_fire());
    }

    #[test]
    fn names() {
        assert!(check_name("gpu-01").is_ok());
        assert!(check_name("llama-3.1-8b").is_ok());
        for bad in ["GPU", "1abc", "a_b", "a-", "", &"a".repeat(64)] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
        assert_eq!(suggest_name("Patient_Notes"), Some("patient-notes".into()));
    }

    #[test]
    fn conditions() {
        assert!(Condition::parse("confidence < 0.6").is_ok());
        assert!(Condition::parse("confidence < 0.6 and latency_ms >= 200").is_ok());
        for bad in ["", "confidence", "confidence < high", "confidence =< 1", "a < 1 b < 2"] {
            assert!(Condition::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sources_uris_and_profiles() {
        assert!(SecretSource::parse("env:LOGFIRE_TOKEN").is_ok());
        assert!(SecretSource::parse("k8s:obs/logfire").is_ok());
        assert!(SecretSource::parse("pylf_v1_eu_abc").is_err());
        assert!(SecretSource::parse("env:1X").is_err());
        let schemes = vec!["oci".to_owned()];
        assert!(Uri::parse("oci://registry/x", &schemes).is_ok());
        assert!(Uri::parse("https://registry/x", &schemes).is_err());
        assert!(MigProfile::parse("3g.40gb").is_ok());
        assert!(MigProfile::parse("1g.10gb+me").is_ok());
        assert!(MigProfile::parse("3g40gb").is_err());
    }
}
