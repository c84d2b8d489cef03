//! Parsers for the value types of the fabric language: quantities,
//! durations, cron schedules, names, URIs, secret sources, routing
//! conditions and MIG profiles. Each returns the parsed value or a reason.

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

/// Checks a five-field cron expression.
pub fn check_cron(text: &str) -> Result<(), String> {
    parse_cron(text).map(|_| ())
}

/// Whether a valid schedule fires at all: `0 0 31 2 *` (February 31st)
/// never does. When both day fields are restricted, cron fires on either,
/// and every weekday occurs in every month.
#[must_use]
pub fn cron_can_fire(text: &str) -> bool {
    const DAYS: [u32; 13] = [0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    // Only a restricted day of month with any weekday can miss every month.
    let mut fields = text.split_whitespace();
    let (day, weekday) = (fields.nth(2), fields.nth(1));
    if day.is_none_or(|d| d == "*") || weekday.is_none_or(|w| w != "*") {
        return true;
    }
    let Ok(sets) = parse_cron(text) else { return true };
    (1..=12).any(|m| sets[3] & (1 << m) != 0 && (1..=DAYS[m]).any(|d| sets[2] & (1u64 << d) != 0))
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

/// Checks `scheme://rest` against the allowed schemes.
pub fn check_uri(text: &str, schemes: &[String]) -> Result<(), String> {
    let allowed = schemes.iter().map(|s| format!("{s}://")).collect::<Vec<_>>().join(", ");
    match text.split_once("://") {
        Some((scheme, rest))
            if schemes.iter().any(|s| s == scheme) && !rest.is_empty() && !rest.contains(char::is_whitespace) =>
        {
            Ok(())
        }
        Some((scheme, _)) if !schemes.iter().any(|s| s == scheme) => {
            Err(format!("the scheme `{scheme}://` is not accepted here; use {allowed}"))
        }
        Some(_) => Err("the address after the scheme is empty or contains spaces".into()),
        None => Err(format!("expected an address starting with {allowed}")),
    }
}

/// Checks a secret source: `env:VAR`, `file:PATH`, `vault:PATH` or `k8s:NAMESPACE/NAME`.
pub fn check_secret_source(text: &str) -> Result<(), String> {
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
            Ok(())
        }
        "env" => {
            Err("an environment variable name has letters, digits and `_`, and does not start with a digit".into())
        }
        "file" | "vault" if !rest.is_empty() => Ok(()),
        "k8s" if rest.split('/').filter(|s| !s.is_empty()).count() == 2 => Ok(()),
        "k8s" => Err("a Kubernetes secret is written k8s:NAMESPACE/NAME".into()),
        // The text is never echoed, not even before the `:`: it may be the secret.
        _ => Err(format!("the text before the first `:` names no secret source; {help}")),
    }
}

/// Checks a routing condition: `metric op number`, joined by `and` / `or`.
pub fn check_condition(text: &str) -> Result<(), String> {
    let words: Vec<&str> = text.split_whitespace().collect();
    if words.is_empty() {
        return Err("the condition is empty; write it like `confidence < 0.6`".into());
    }
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
        if !["<", "<=", ">", ">=", "==", "!="].contains(op) {
            return Err(format!("`{op}` is not a comparison; use <, <=, >, >=, == or !="));
        }
        if number.parse::<f64>().map_or(true, |v| !v.is_finite()) {
            return Err(format!("`{number}` is not a number"));
        }
        i += 3;
        match words.get(i) {
            None => return Ok(()),
            Some(&"and" | &"or") => i += 1,
            Some(other) => return Err(format!("expected `and` or `or`, found `{other}`")),
        }
    }
}

/// Checks the shape of a MIG profile name, such as `3g.40gb` or `1g.10gb+me`.
pub fn check_mig_profile(text: &str) -> Result<(), String> {
    let base = text.strip_suffix("+me").unwrap_or(text);
    let ok = base.split_once("g.").is_some_and(|(slices, memory)| {
        !slices.is_empty()
            && slices.bytes().all(|b| b.is_ascii_digit())
            && memory.strip_suffix("gb").is_some_and(|m| !m.is_empty() && m.bytes().all(|b| b.is_ascii_digit()))
    });
    if ok {
        Ok(())
    } else {
        Err(format!("`{text}` is not a MIG profile name; they look like `1g.10gb`, `3g.40gb` or `7g.80gb`"))
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
            assert_eq!(check_cron(good), Ok(()), "{good}");
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
            assert!(check_cron(bad).is_err(), "{bad}");
        }
        assert!(!cron_can_fire("0 0 31 2 *"));
        assert!(!cron_can_fire("0 0 30,31 2 *"));
        assert!(cron_can_fire("0 0 29 2 *"));
        assert!(cron_can_fire("0 0 31 2 MON"));
        assert!(cron_can_fire("0 0 31 1-3 *"));
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
        assert!(check_condition("confidence < 0.6").is_ok());
        assert!(check_condition("confidence < 0.6 and latency_ms >= 200").is_ok());
        for bad in ["", "confidence", "confidence < high", "confidence =< 1", "a < 1 b < 2"] {
            assert!(check_condition(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sources_uris_and_profiles() {
        assert!(check_secret_source("env:LOGFIRE_TOKEN").is_ok());
        assert!(check_secret_source("k8s:obs/logfire").is_ok());
        assert!(check_secret_source("pylf_v1_eu_abc").is_err());
        assert!(check_secret_source("env:1X").is_err());
        let schemes = vec!["oci".to_owned()];
        assert!(check_uri("oci://registry/x", &schemes).is_ok());
        assert!(check_uri("https://registry/x", &schemes).is_err());
        assert!(check_mig_profile("3g.40gb").is_ok());
        assert!(check_mig_profile("1g.10gb+me").is_ok());
        assert!(check_mig_profile("3g40gb").is_err());
    }
}
