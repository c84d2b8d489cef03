//! Where a registry is, from a site's `registry` URI, and whether it may
//! be spoken to without TLS.
//!
//! As Docker does (docker/docs `engine/security/certificates`, "insecure
//! registries": `127.0.0.0/8` is insecure by default): TLS always, except
//! that a registry on a loopback address may speak plain HTTP; any other
//! plain-HTTP registry needs the spec to say so, with `http://`.

/// How a registry is spoken to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// HTTPS only (`oci://` or `https://` of a host that is not loopback).
    Tls,
    /// HTTPS, else plain HTTP: `oci://` or `https://` of a loopback address.
    TlsThenPlain,
    /// Plain HTTP, as the spec says (`http://`).
    Plain,
}

/// A registry and the repository prefix under it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    /// `host[:port]`, as the URLs and the credential files name it.
    pub host: String,
    /// The repository prefix (`bundles`, `team/bundles`), maybe empty.
    pub path: String,
    pub transport: Transport,
}

impl Location {
    /// Reads `oci://HOST[:PORT][/PATH]` (or `https://`, `http://`).
    pub fn parse(uri: &str) -> Result<Location, String> {
        let (scheme, rest) =
            uri.split_once("://").ok_or_else(|| format!("{uri:?} is not a registry address (oci://HOST/PATH)"))?;
        let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
        let path = path.trim_end_matches('/');
        check_host(host).map_err(|why| format!("registry {uri:?}: {why}"))?;
        if !path.is_empty() {
            check_repository(path).map_err(|why| format!("registry {uri:?}: {why}"))?;
        }
        let loopback = is_loopback(host);
        let transport = match scheme {
            "oci" | "https" if loopback => Transport::TlsThenPlain,
            "oci" | "https" => Transport::Tls,
            "http" => Transport::Plain,
            other => {
                return Err(format!(
                    "registry {uri:?}: the scheme `{other}://` is not one of oci://, https://, http://"
                ));
            }
        };
        Ok(Location { host: host.to_ascii_lowercase(), path: path.to_owned(), transport })
    }

    /// The repository an edge's device bundles go to: `<path>/<fleet>/<edge>`
    /// (the checker validates it, the NPU emitter writes it).
    #[must_use]
    pub fn bundle_repository(&self, fleet: &str, edge: &str) -> String {
        self.repository(&format!("{fleet}/{edge}"))
    }

    /// The repository `name` under this location's path.
    #[must_use]
    pub fn repository(&self, name: &str) -> String {
        if self.path.is_empty() { name.to_owned() } else { format!("{}/{name}", self.path) }
    }
}

/// Whether `host` (`host[:port]`) is a loopback address.
#[must_use]
pub fn is_loopback(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    name.eq_ignore_ascii_case("localhost") || name.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn check_host(host: &str) -> Result<(), String> {
    let (name, port) = match host.strip_prefix('[') {
        Some(v6) => {
            let (address, after) = v6.split_once(']').ok_or("an IPv6 address without its closing `]`")?;
            if address.parse::<std::net::Ipv6Addr>().is_err() {
                return Err(format!("`{address}` is not an IPv6 address"));
            }
            (None, after.strip_prefix(':'))
        }
        None => match host.rsplit_once(':') {
            Some((name, port)) => (Some(name), Some(port)),
            None => (Some(host), None),
        },
    };
    if let Some(name) = name {
        let valid = !name.is_empty()
            && name.len() <= 253
            && name.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    && !label.starts_with('-')
                    && !label.ends_with('-')
            });
        if !valid {
            return Err(format!("`{name}` is not a host name"));
        }
    }
    if let Some(port) = port
        && port.parse::<u16>().map_or(true, |p| p == 0)
    {
        return Err(format!("`{port}` is not a port"));
    }
    Ok(())
}

/// A repository name as the distribution spec allows it
/// (opencontainers/distribution-spec `spec.md`, "Pulling manifests":
/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*`).
pub fn check_repository(name: &str) -> Result<(), String> {
    let component = |part: &str| {
        let bytes = part.as_bytes();
        let edge = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
        !bytes.is_empty()
            && bytes.first().is_some_and(edge)
            && bytes.last().is_some_and(edge)
            && bytes.iter().all(|b| edge(b) || matches!(b, b'.' | b'_' | b'-'))
            && !part.contains("..")
            && !part.contains("___")
            && !part.contains("._")
            && !part.contains("_.")
            && !part.contains(".-")
            && !part.contains("-.")
            && !part.contains("_-")
            && !part.contains("-_")
    };
    if name.len() > 255 || !name.split('/').all(component) {
        return Err(format!(
            "`{name}` is not a repository name: lowercase letters and digits, separated by `.`, `_`, `-` or `/`"
        ));
    }
    Ok(())
}

/// A tag as the distribution spec allows it (`[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`).
#[must_use]
pub fn is_tag(tag: &str) -> bool {
    let bytes = tag.as_bytes();
    (1..=128).contains(&bytes.len())
        && (bytes[0].is_ascii_alphanumeric() || bytes[0] == b'_')
        && bytes.iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_unless_loopback_or_said() {
        let remote = Location::parse("oci://registry.fra.internal/bundles").unwrap();
        assert_eq!(
            remote,
            Location { host: "registry.fra.internal".into(), path: "bundles".into(), transport: Transport::Tls }
        );
        assert_eq!(Location::parse("oci://127.0.0.1:5000/b").unwrap().transport, Transport::TlsThenPlain);
        assert_eq!(Location::parse("https://localhost:5000").unwrap().transport, Transport::TlsThenPlain);
        assert_eq!(Location::parse("oci://[::1]:5000/a/b").unwrap().transport, Transport::TlsThenPlain);
        assert_eq!(Location::parse("http://10.0.0.7:5000/b").unwrap().transport, Transport::Plain);
        assert_eq!(Location::parse("oci://10.0.0.7:5000/b").unwrap().transport, Transport::Tls);
        assert_eq!(Location::parse("oci://localhost.evil.example/b").unwrap().transport, Transport::Tls);
        assert_eq!(Location::parse("oci://r.example/a/b").unwrap().repository("fleet/edge"), "a/b/fleet/edge");
    }

    #[test]
    fn bad_addresses_are_refused_with_a_reason() {
        for bad in [
            "oci://",
            "oci://host:99999/x",
            "oci://host:0",
            "oci://ho st/x",
            "oci://host/UPPER",
            "oci://host/a//b",
            "oci://[::1/x",
            "ftp://host/x",
            "host/x",
            "oci://-host/x",
        ] {
            assert!(Location::parse(bad).is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn tags_and_repositories() {
        assert!(is_tag("2026.12.1") && is_tag("_x") && is_tag("v1-rc.2"));
        assert!(!is_tag("") && !is_tag(".x") && !is_tag("a:b") && !is_tag(&"a".repeat(129)));
        assert!(check_repository("bundles/adjuster-tablets/assist").is_ok());
        assert!(check_repository("a__b").is_ok() && check_repository("a___b").is_err());
        assert!(check_repository("a.-b").is_err() && check_repository("-a").is_err());
    }
}
