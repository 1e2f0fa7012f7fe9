//! Versions that stopped being live on this node, remembered for [`TOKEN_GRACE`]: their
//! instances may still be finishing a request or a queued event when a deploy or rollback
//! replaces them, so their tokens keep working that long, and no longer. A removed
//! function's versions are forgotten at once, so its tokens stop with it.
//!
//! Each node records a retirement when it sees it (its own deploy, or the registry sync
//! within [`crate::REGISTRY_POLL_INTERVAL`]). A node that starts after the change never
//! saw the old version live and refuses its token, which errs on the safe side.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use gureum_model::{FunctionSpec, VersionNumber};

/// How long a replaced version's token keeps working (an invocation runs at most 15
/// minutes, Lambda's ceiling and ours).
pub const TOKEN_GRACE: Duration = Duration::from_secs(15 * 60);

/// What the registry knows of a version that is not live.
#[derive(Debug)]
pub(crate) enum Retirement {
    /// Replaced this long ago, within the grace: its spec.
    Recent(Arc<FunctionSpec>),
    /// Replaced longer ago than the grace, or never seen live by this node.
    Expired,
}

#[derive(Default)]
pub(crate) struct RetiredVersions {
    versions: HashMap<(String, VersionNumber), (Instant, Arc<FunctionSpec>)>,
}

impl RetiredVersions {
    /// Records that `version` of `function` stopped being live at `now` (the first
    /// record counts: a version replaced twice keeps its first retirement).
    pub(crate) fn retire(
        &mut self,
        function: &str,
        version: VersionNumber,
        spec: Arc<FunctionSpec>,
        now: Instant,
    ) {
        self.versions
            .entry((function.to_string(), version))
            .or_insert((now, spec));
        self.prune(now);
    }

    /// A version live again (a rollback) is not retired.
    pub(crate) fn revive(&mut self, function: &str, version: VersionNumber) {
        self.versions.remove(&(function.to_string(), version));
    }

    /// Forgets every version of a removed function.
    pub(crate) fn forget(&mut self, function: &str) {
        self.versions.retain(|(name, _), _| name != function);
    }

    pub(crate) fn lookup(
        &self,
        function: &str,
        version: VersionNumber,
        now: Instant,
    ) -> Retirement {
        match self.versions.get(&(function.to_string(), version)) {
            Some((at, spec)) if now.saturating_duration_since(*at) <= TOKEN_GRACE => {
                Retirement::Recent(spec.clone())
            }
            _ => Retirement::Expired,
        }
    }

    fn prune(&mut self, now: Instant) {
        self.versions
            .retain(|_, (at, _)| now.saturating_duration_since(*at) <= TOKEN_GRACE);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> Arc<FunctionSpec> {
        Arc::new(gureum_manifest::parse("name = \"f\"\nartifact = \"f.wasm\"\n").unwrap())
    }

    #[test]
    fn a_retired_version_is_honoured_for_the_grace_only() {
        let start = Instant::now();
        let mut retired = RetiredVersions::default();
        retired.retire("f", 1, spec(), start);
        assert!(matches!(
            retired.lookup("f", 1, start + TOKEN_GRACE - Duration::from_secs(1)),
            Retirement::Recent(_)
        ));
        assert!(matches!(
            retired.lookup("f", 1, start + TOKEN_GRACE + Duration::from_secs(1)),
            Retirement::Expired
        ));
        // Never retired here; a second retirement does not extend the first.
        assert!(matches!(retired.lookup("f", 2, start), Retirement::Expired));
        retired.retire("f", 1, spec(), start + Duration::from_secs(600));
        assert!(matches!(
            retired.lookup("f", 1, start + TOKEN_GRACE + Duration::from_secs(1)),
            Retirement::Expired
        ));
    }

    #[test]
    fn removal_and_rollback_end_a_retirement() {
        let now = Instant::now();
        let mut retired = RetiredVersions::default();
        retired.retire("f", 1, spec(), now);
        retired.retire("g", 4, spec(), now);
        retired.revive("g", 4);
        assert!(matches!(retired.lookup("g", 4, now), Retirement::Expired));
        retired.forget("f");
        assert!(matches!(retired.lookup("f", 1, now), Retirement::Expired));
        // Old entries go when a later retirement prunes.
        retired.retire("h", 1, spec(), now);
        retired.retire("h", 2, spec(), now + TOKEN_GRACE * 2);
        assert_eq!(retired.versions.len(), 1);
    }
}
