//! Spin-style `allowed_outbound_hosts` origins (`https://api.example.com`, `https://*.example.com`,
//! `*://host:*`, `*`) and matching an outbound request against them.

/// The accepted entry forms, appended to every `allowed_outbound_hosts` problem.
pub(crate) const FORMS: &str = "expected \"scheme://host[:port]\" with scheme http, https, tcp (process functions, with a port) or *, host a name, * or *.domain, port a number or *, and no path (e.g. \"https://api.example.com\", \"https://*.example.com\", \"http://localhost:8080\", \"tcp://db.internal:5432\", \"*://db.internal:*\"), or \"*\" for any";

/// Whether an outbound request to `scheme://host[:port]` is allowed by any entry of `allowed`.
///
/// `port` is the explicit port of the request URL; `None` means the scheme's default (80 for
/// http, 443 for https). An entry without a port allows only its scheme's default port, and
/// `*.example.com` allows subdomains at any depth but not `example.com` itself. Host and scheme
/// compare case-insensitively. Invalid entries (rejected at deploy) allow nothing. The platform
/// API is not special-cased here: callers allow it themselves.
pub fn outbound_allowed(allowed: &[String], scheme: &str, host: &str, port: Option<u16>) -> bool {
    outbound_allowance(allowed, scheme, host, port).is_some()
}

/// How an allowed outbound request was allowed (see [`outbound_allowed`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allowance {
    /// An entry names this host as an IP address or as `localhost`: the author means
    /// exactly that address, private or not.
    Literally,
    /// By a name or a wildcard: what the name resolves to is checked
    /// (`crate::destination`).
    ByName,
}

/// Like [`outbound_allowed`], saying how: `None` when no entry allows the request.
pub fn outbound_allowance(
    allowed: &[String],
    scheme: &str,
    host: &str,
    port: Option<u16>,
) -> Option<Allowance> {
    let scheme = scheme.trim_end_matches(':').to_ascii_lowercase();
    let host = normalize_host(host);
    let port = port.or_else(|| default_port(&scheme));
    let mut allowance = None;
    for pattern in allowed
        .iter()
        .filter_map(|entry| Pattern::parse(entry).ok())
        .filter(|pattern| pattern.matches(&scheme, &host, port))
    {
        if pattern.names_address() {
            return Some(Allowance::Literally);
        }
        allowance = Some(Allowance::ByName);
    }
    allowance
}

/// Whether `host` (as written in an entry, or as a request names it) stands for a
/// fixed address rather than something DNS decides: an IP literal or `localhost`.
pub fn names_address(host: &str) -> bool {
    let host = normalize_host(host);
    host == "localhost" || host.parse::<std::net::IpAddr>().is_ok()
}

/// The `(host, port)` pairs a process function's sandbox offers (see gureum-sandbox):
/// entries naming one host and one port (`https://api.example.com` → 443,
/// `http://h:8080`, `tcp://db:5432`, `*://h` → 80 and 443). Wildcard hosts and ports
/// need name resolution and open ports the sandbox does not have, so they give nothing
/// here (wasm functions still get them).
pub fn exact_endpoints(allowed: &[String]) -> Vec<(String, u16)> {
    let mut endpoints = Vec::new();
    for pattern in allowed
        .iter()
        .filter_map(|entry| Pattern::parse(entry).ok())
    {
        let HostPattern::Exact(host) = &pattern.host else {
            continue;
        };
        let ports: Vec<u16> = match (&pattern.port, pattern.scheme.as_deref()) {
            (PortPattern::Exact(port), _) => vec![*port],
            (PortPattern::Default, Some(scheme)) => default_port(scheme).into_iter().collect(),
            (PortPattern::Default, None) => vec![80, 443],
            (PortPattern::Any, _) => Vec::new(),
        };
        for port in ports {
            let endpoint = (host.clone(), port);
            if !endpoints.contains(&endpoint) {
                endpoints.push(endpoint);
            }
        }
    }
    endpoints
}

/// One parsed `allowed_outbound_hosts` entry.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Pattern {
    /// Lowercase scheme; `None` for `*`.
    scheme: Option<String>,
    host: HostPattern,
    port: PortPattern,
}

#[derive(Debug, PartialEq, Eq)]
enum HostPattern {
    Any,
    /// `*.domain`: the domain, without the leading `*.`.
    SubdomainsOf(String),
    Exact(String),
}

#[derive(Debug, PartialEq, Eq)]
enum PortPattern {
    /// No port written: the scheme's default.
    Default,
    Any,
    Exact(u16),
}

impl Pattern {
    /// Parses one entry; the error says what is wrong with it (the caller adds the valid forms).
    pub(crate) fn parse(entry: &str) -> Result<Self, String> {
        if entry == "*" {
            return Ok(Self {
                scheme: None,
                host: HostPattern::Any,
                port: PortPattern::Any,
            });
        }
        let Some((scheme, rest)) = entry.split_once("://") else {
            return Err(format!(
                "missing scheme: write e.g. \"https://{}\"",
                entry.trim()
            ));
        };
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "*" => None,
            known @ ("http" | "https" | "tcp") => Some(known.to_string()),
            _ => {
                return Err(format!(
                    "unsupported scheme {scheme:?}: use http, https, tcp or *"
                ));
            }
        };
        if let Some(at) = rest.find(['/', '?', '#']) {
            return Err(format!(
                "a path, query or fragment is not allowed (remove {:?})",
                &rest[at..]
            ));
        }
        if rest.contains('@') {
            return Err("user info ('user@') is not allowed".to_string());
        }
        let (host, port) = split_host_port(rest)?;
        if scheme.as_deref() == Some("tcp") && port.is_none() {
            return Err(format!(
                "a tcp:// entry needs its port, e.g. \"tcp://{rest}:5432\""
            ));
        }
        Ok(Self {
            scheme,
            host: parse_host(host)?,
            port: parse_port(port)?,
        })
    }

    /// Whether the entry names one host that is an IP address or `localhost`.
    fn names_address(&self) -> bool {
        matches!(&self.host, HostPattern::Exact(name) if names_address(name))
    }

    /// `scheme` and `host` must already be normalized by [`outbound_allowed`].
    fn matches(&self, scheme: &str, host: &str, port: Option<u16>) -> bool {
        if self
            .scheme
            .as_deref()
            .is_some_and(|wanted| wanted != scheme)
        {
            return false;
        }
        let host_ok = match &self.host {
            HostPattern::Any => true,
            HostPattern::Exact(name) => name == host,
            HostPattern::SubdomainsOf(domain) => host
                .strip_suffix(domain.as_str())
                .is_some_and(|label| label.len() > 1 && label.ends_with('.')),
        };
        let port_ok = match self.port {
            PortPattern::Any => true,
            PortPattern::Exact(wanted) => port == Some(wanted),
            // The scheme matched, so the request's scheme default is the entry's default too
            // (and for a `*` scheme, `*://host` means each scheme on its usual port).
            PortPattern::Default => port.is_some() && port == default_port(scheme),
        };
        host_ok && port_ok
    }
}

/// Splits `host[:port]`, keeping IPv6 literals (`[::1]:8080`) whole.
fn split_host_port(rest: &str) -> Result<(&str, Option<&str>), String> {
    if let Some(inner) = rest.strip_prefix('[') {
        let Some((address, after)) = inner.split_once(']') else {
            return Err("unclosed '[' in an IPv6 address".to_string());
        };
        let port = match after {
            "" => None,
            _ => Some(
                after
                    .strip_prefix(':')
                    .ok_or_else(|| format!("unexpected {after:?} after the IPv6 address"))?,
            ),
        };
        if address.is_empty()
            || !address
                .chars()
                .all(|ch| ch.is_ascii_hexdigit() || ch == ':' || ch == '.')
        {
            return Err(format!("invalid IPv6 address {address:?}"));
        }
        return Ok((address, port));
    }
    match rest.split_once(':') {
        Some((_, port)) if port.contains(':') => Err(
            "more than one ':' (write IPv6 addresses in brackets, e.g. \"http://[::1]:8080\")"
                .to_string(),
        ),
        Some((host, port)) => Ok((host, Some(port))),
        None => Ok((rest, None)),
    }
}

fn parse_host(host: &str) -> Result<HostPattern, String> {
    if host == "*" {
        return Ok(HostPattern::Any);
    }
    if host.contains(':') {
        // Only IPv6 literals reach here with a ':'; they were checked by `split_host_port`.
        return Ok(HostPattern::Exact(host.to_ascii_lowercase()));
    }
    let (wildcard, name) = match host.strip_prefix("*.") {
        Some(domain) => (true, domain),
        None => (false, host),
    };
    if name.contains('*') {
        return Err(
            "'*' is allowed only as the whole host or as a leading \"*.\" label".to_string(),
        );
    }
    if name.is_empty() {
        return Err("missing host".to_string());
    }
    let labels_ok = name.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    });
    if !labels_ok {
        return Err(format!(
            "invalid host {name:?}: use dot-separated labels of letters, digits and '-'"
        ));
    }
    let name = name.to_ascii_lowercase();
    Ok(if wildcard {
        HostPattern::SubdomainsOf(name)
    } else {
        HostPattern::Exact(name)
    })
}

fn parse_port(port: Option<&str>) -> Result<PortPattern, String> {
    match port {
        None => Ok(PortPattern::Default),
        Some("*") => Ok(PortPattern::Any),
        Some(digits) => match digits.parse::<u16>() {
            Ok(number) if number > 0 && digits.bytes().all(|b| b.is_ascii_digit()) => {
                Ok(PortPattern::Exact(number))
            }
            _ => Err(format!(
                "invalid port {digits:?}: use a number from 1 to 65535 or *"
            )),
        },
    }
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

fn normalize_host(host: &str) -> String {
    let host = host
        .strip_prefix('[')
        .and_then(|inner| inner.strip_suffix(']'))
        .unwrap_or(host);
    // A fully qualified `example.com.` names the same host.
    host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase()
}
