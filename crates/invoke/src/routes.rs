//! The public route table: manifest routes to function names. Exact routes and
//! `/prefix/*` routes; the longest matching prefix wins.

use std::collections::HashMap;

/// Routes of every live function.
#[derive(Debug, Default, Clone)]
pub struct RouteTable {
    exact: HashMap<String, String>,
    // (prefix including its trailing '/', function), longest first.
    prefixes: Vec<(String, String)>,
}

impl RouteTable {
    /// Builds the table from (function, routes) pairs.
    pub fn build<'a>(functions: impl IntoIterator<Item = (&'a str, &'a [String])>) -> Self {
        let mut table = RouteTable::default();
        for (function, routes) in functions {
            for route in routes {
                match route.strip_suffix('*') {
                    Some(prefix) => table
                        .prefixes
                        .push((prefix.to_string(), function.to_string())),
                    None => {
                        table.exact.insert(route.clone(), function.to_string());
                    }
                }
            }
        }
        table
            .prefixes
            .sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| a.0.cmp(&b.0)));
        table
    }

    /// The function serving `path` (without query), if any.
    pub fn lookup(&self, path: &str) -> Option<&str> {
        if let Some(function) = self.exact.get(path) {
            return Some(function);
        }
        self.prefixes
            .iter()
            .find(|(prefix, _)| path.starts_with(prefix.as_str()))
            .map(|(_, function)| function.as_str())
    }

    /// The function already owning `route`, if another function claims exactly it.
    pub fn owner_of(&self, route: &str) -> Option<&str> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_routes_win_and_the_longest_prefix_matches() {
        let a = vec!["/hello".to_string(), "/hello/*".to_string()];
        let b = vec!["/hello/deep/*".to_string()];
        let table = RouteTable::build([("a", a.as_slice()), ("b", b.as_slice())]);
        assert_eq!(table.lookup("/hello"), Some("a"));
        assert_eq!(table.lookup("/hello/x"), Some("a"));
        assert_eq!(table.lookup("/hello/deep/x"), Some("b"));
        assert_eq!(table.lookup("/hellox"), None);
        assert_eq!(table.lookup("/other"), None);
        assert_eq!(table.owner_of("/hello/*"), Some("a"));
        assert_eq!(table.owner_of("/nope"), None);
    }
}
