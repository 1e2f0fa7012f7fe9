//! The public route table: manifest routes to function names. Exact routes and
//! `/prefix/*` routes; the longest matching prefix wins.

use std::collections::HashMap;

/// Routes of every live function.
#[derive(Debug, Default, Clone)]
pub struct RouteTable {
    /// Routes that start with `/`: every host.
    any: PathTable,
    /// Routes that name a host (`notes.example.org/*`), by host; tried before `any`.
    hosts: HashMap<String, PathTable>,
}

/// The routes of one host (or of every host).
#[derive(Debug, Default, Clone)]
struct PathTable {
    exact: HashMap<String, String>,
    // (prefix including its trailing '/', function), longest first.
    prefixes: Vec<(String, String)>,
}

impl PathTable {
    fn lookup(&self, path: &str) -> Option<&str> {
        if let Some(function) = self.exact.get(path) {
            return Some(function);
        }
        self.prefixes
            .iter()
            .find(|(prefix, _)| path.starts_with(prefix.as_str()))
            .map(|(_, function)| function.as_str())
    }

    fn owner_of(&self, route: &str) -> Option<&str> {
        match route.strip_suffix('*') {
            Some(prefix) => self
                .prefixes
                .iter()
                .find(|(existing, _)| existing == prefix)
                .map(|(_, function)| function.as_str()),
            None => self.exact.get(route).map(String::as_str),
        }
    }
}

impl RouteTable {
    /// Builds the table from (function, routes) pairs.
    pub fn build<'a>(functions: impl IntoIterator<Item = (&'a str, &'a [String])>) -> Self {
        let mut table = RouteTable::default();
        for (function, routes) in functions {
            for route in routes {
                let (host, path) = gureum_manifest::split_route(route);
                let paths = match host {
                    Some(host) => table.hosts.entry(host.to_string()).or_default(),
                    None => &mut table.any,
                };
                match path.strip_suffix('*') {
                    Some(prefix) => paths
                        .prefixes
                        .push((prefix.to_string(), function.to_string())),
                    None => {
                        paths.exact.insert(path.to_string(), function.to_string());
                    }
                }
            }
        }
        for paths in std::iter::once(&mut table.any).chain(table.hosts.values_mut()) {
            paths
                .prefixes
                .sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| a.0.cmp(&b.0)));
        }
        table
    }

    /// The function serving `path` (without query) on `host` (lowercase, without a
    /// port), if any: the host's own routes first, then those of every host.
    pub fn lookup(&self, host: Option<&str>, path: &str) -> Option<&str> {
        host.and_then(|host| self.hosts.get(host))
            .and_then(|paths| paths.lookup(path))
            .or_else(|| self.any.lookup(path))
    }

    /// The function already owning `route`, if another function claims exactly it.
    pub fn owner_of(&self, route: &str) -> Option<&str> {
        match gureum_manifest::split_route(route) {
            (Some(host), path) => self.hosts.get(host)?.owner_of(path),
            (None, path) => self.any.owner_of(path),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_routes_win_and_the_longest_prefix_matches() {
        let a = vec!["/hello".to_string(), "/hello/*".to_string()];
        let b = vec!["/hello/deep/*".to_string()];
        let table = RouteTable::build([("a", a.as_slice()), ("b", b.as_slice())]);
        assert_eq!(table.lookup(None, "/hello"), Some("a"));
        assert_eq!(table.lookup(None, "/hello/x"), Some("a"));
        assert_eq!(table.lookup(None, "/hello/deep/x"), Some("b"));
        assert_eq!(table.lookup(None, "/hellox"), None);
        assert_eq!(table.lookup(Some("any.example.org"), "/other"), None);
        assert_eq!(table.owner_of("/hello/*"), Some("a"));
        assert_eq!(table.owner_of("/nope"), None);
    }

    #[test]
    fn host_routes_come_first_on_their_host_only() {
        let site = vec!["notes.example.org/*".to_string()];
        let api = vec!["/api/*".to_string(), "notes.example.org/api/*".to_string()];
        let table = RouteTable::build([("site", site.as_slice()), ("api", api.as_slice())]);
        assert_eq!(table.lookup(Some("notes.example.org"), "/"), Some("site"));
        assert_eq!(
            table.lookup(Some("notes.example.org"), "/api/x"),
            Some("api")
        );
        assert_eq!(table.lookup(Some("other.example.org"), "/"), None);
        assert_eq!(table.lookup(None, "/api/x"), Some("api"));
        assert_eq!(table.owner_of("notes.example.org/*"), Some("site"));
        assert_eq!(table.owner_of("other.example.org/*"), None);
    }
}
