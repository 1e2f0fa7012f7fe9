//! The in-memory registry: each function's live version and spec, the route table, the
//! versions replaced recently (whose tokens are still honoured), loading it from the
//! store and the task that picks up other nodes' deploys, rollbacks and removals.
//!
//! Several nodes may share one PostgreSQL store. Every deploy, rollback and removal bumps
//! the `registry_generation` row in the transaction that makes the change; each node
//! reads it every [`REGISTRY_POLL_INTERVAL`] (1 s) and reloads the live versions only
//! when it moved. A reload keeps the entries (spec, static site) of functions whose live
//! version did not move, and drops loaded code only of removed functions; the reaper
//! takes the rest.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use gureum_model::{FunctionIdentity, FunctionSpec, VersionNumber};

use crate::retired::{self, TOKEN_GRACE};
use crate::static_site::Site;
use crate::{DeployError, RouteTable, lock, read, write};

/// Why a presented function token is not honoured; the message is the 401's.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenRefusal {
    /// Not minted by this installation (or altered).
    #[error("not a function token of this installation")]
    Unknown,
    /// Its function is not deployed (any more).
    #[error("function {0:?} is not deployed; a removed function's tokens stop working with it")]
    Removed(String),
    /// Its version was replaced longer ago than the grace.
    #[error(
        "the token of {function:?} version {version} expired: that version is no longer live (live is {live}) and was replaced more than {grace_min} minutes ago, or before this server started"
    )]
    Retired {
        /// The function.
        function: String,
        /// The token's version.
        version: VersionNumber,
        /// The live version.
        live: VersionNumber,
        /// The grace in minutes.
        grace_min: u64,
    },
}

#[derive(Default)]
pub(crate) struct Registry {
    pub(crate) functions: HashMap<String, Arc<LiveFunction>>,
    pub(crate) routes: RouteTable,
    /// Versions replaced recently, whose tokens are still honoured.
    pub(crate) retired: retired::RetiredVersions,
}

impl Registry {
    /// Makes `functions` what is live, noting which versions stopped being live.
    pub(crate) fn install(&mut self, functions: HashMap<String, Arc<LiveFunction>>) {
        let now = Instant::now();
        for (name, old) in &self.functions {
            match functions.get(name) {
                None => self.retired.forget(name),
                Some(new) if new.version != old.version => {
                    self.retired
                        .retire(name, old.version, old.spec.clone(), now);
                }
                Some(_) => {}
            }
        }
        for (name, live) in &functions {
            self.retired.revive(name, live.version);
        }
        self.routes = route_table(&functions);
        self.functions = functions;
    }
}

#[derive(Clone)]
pub(crate) struct LiveFunction {
    pub(crate) version: VersionNumber,
    pub(crate) spec: Arc<FunctionSpec>,
    pub(crate) artifact_hash: String,
    /// The version's static files (`[static]`), in memory while it is live.
    pub(crate) site: Option<Arc<Site>>,
}

pub(crate) fn route_table(functions: &HashMap<String, Arc<LiveFunction>>) -> RouteTable {
    RouteTable::build(
        functions
            .iter()
            .map(|(name, live)| (name.as_str(), live.spec.routes.as_slice())),
    )
}

/// How often a node checks whether another node changed what is live.
pub const REGISTRY_POLL_INTERVAL: Duration = Duration::from_secs(1);

impl crate::Invoker {
    /// The function version a presented token belongs to, if it may still use it: the
    /// version is live, or was replaced less than [`TOKEN_GRACE`] ago on this node. Its
    /// spec carries what the token may do (`[permissions]`).
    pub fn function_identity(&self, token: &str) -> Result<FunctionIdentity, TokenRefusal> {
        let (name, version) = self
            .parts
            .tokens
            .verify(token)
            .ok_or(TokenRefusal::Unknown)?;
        let state = read(&self.state);
        let Some(live) = state.functions.get(&name) else {
            return Err(TokenRefusal::Removed(name));
        };
        let spec = if live.version == version {
            live.spec.clone()
        } else {
            match state.retired.lookup(&name, version, Instant::now()) {
                retired::Retirement::Recent(spec) => spec,
                retired::Retirement::Expired => {
                    return Err(TokenRefusal::Retired {
                        live: live.version,
                        function: name,
                        version,
                        grace_min: TOKEN_GRACE.as_secs() / 60,
                    });
                }
            }
        };
        Ok(FunctionIdentity {
            name,
            version,
            spec,
        })
    }

    /// Loads every function's live version from the store into the routing table.
    pub async fn load(&self) -> Result<usize, DeployError> {
        let _control = self.control.lock().await;
        self.load_locked().await
    }

    /// Starts the background task that picks up deploys, rollbacks and removals made by
    /// other nodes sharing the store (a cheap generation read; a reload only on change).
    pub fn spawn_registry_sync(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let invoker = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(REGISTRY_POLL_INTERVAL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(invoker) = invoker.upgrade() else {
                    return;
                };
                let changed = match invoker.parts.store.registry_generation().await {
                    Ok(generation) => generation != invoker.generation.load(Ordering::Acquire),
                    Err(error) => {
                        tracing::warn!(%error, "reading the registry generation failed");
                        false
                    }
                };
                if changed && let Err(error) = invoker.load().await {
                    tracing::warn!(%error, "reloading the registry failed");
                }
            }
        })
    }

    pub(crate) async fn load_locked(&self) -> Result<usize, DeployError> {
        // Read the generation first: a change committed while loading bumps it again
        // and the next poll reloads.
        let generation = self.parts.store.registry_generation().await?;
        let versions = self.parts.store.live_versions().await?;
        let current = read(&self.state).functions.clone();
        let mut functions = HashMap::new();
        for version in versions {
            let name = version.function.to_string();
            if let Some(live) = current.get(&name)
                && live.version == version.version
            {
                functions.insert(name, live.clone());
                continue;
            }
            match gureum_manifest::parse(&version.manifest) {
                Ok(spec) => {
                    let site = match &version.static_hash {
                        None => None,
                        Some(hash) => match self.load_site(hash).await {
                            Ok(site) => Some(site),
                            Err(error) => {
                                tracing::error!(function = %version.function, %error, "static site cannot be loaded; function not served");
                                continue;
                            }
                        },
                    };
                    functions.insert(
                        name,
                        Arc::new(LiveFunction {
                            version: version.version,
                            spec: Arc::new(spec),
                            artifact_hash: version.artifact_hash,
                            site,
                        }),
                    );
                }
                Err(error) => {
                    tracing::error!(function = %version.function, %error, "stored manifest no longer parses; function not served");
                }
            }
        }
        let count = functions.len();
        lock(&self.loaded).retain(|function, _| functions.contains_key(function));
        lock(&self.pinned_sites).retain(|(function, _), _| functions.contains_key(function));
        write(&self.state).install(functions);
        self.generation.store(generation, Ordering::Release);
        Ok(count)
    }

    /// The live version and spec of every deployed function.
    pub fn live_functions(&self) -> Vec<(String, VersionNumber, Arc<FunctionSpec>)> {
        read(&self.state)
            .functions
            .iter()
            .map(|(name, live)| (name.clone(), live.version, live.spec.clone()))
            .collect()
    }

    /// The live version and spec of one function.
    pub fn live_function(&self, function: &str) -> Option<(VersionNumber, Arc<FunctionSpec>)> {
        read(&self.state)
            .functions
            .get(function)
            .map(|live| (live.version, live.spec.clone()))
    }

    /// The function serving a manifest route on `host` (lowercase, without a port).
    pub fn route(&self, host: Option<&str>, path: &str) -> Option<String> {
        read(&self.state)
            .routes
            .lookup(host, path)
            .map(str::to_string)
    }
}
