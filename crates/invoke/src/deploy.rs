//! Deploy, rollback and removal: validate, commit to the store, then swap the in-memory
//! registry. A failure at any step leaves the previous version serving.
//!
//! Deploy, in order: parse the manifest (every problem at once); load the `[static]`
//! bundle into a `Site`; compile and validate the component on a blocking thread, which
//! also fills the compiled-code cache (a process function's package is checked and
//! unpacked instead). Then, under the control lock (which the registry sync's reload also
//! takes): the route-conflict check, `put_artifact` (the site's bundle, then the code),
//! `create_version` (one transaction: version N+1, `live` → N+1, and the registry
//! generation bumped), then the loaded code installed and the registry swapped. Rollback
//! and removal take the same lock and also commit to the store before the swap.

use std::collections::HashMap;
use std::sync::Arc;

use gureum_model::{FunctionName, LIVE_ALIAS, Runtime, VersionNumber};
use gureum_runtime_lambda::PackageError;
use gureum_runtime_wasm::WasmError;
use gureum_store::StoreError;
use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;

use crate::static_site::{Site, StaticError};
use crate::{Code, Invoker, LiveFunction, lock, read, write};

/// Said on every deploy of a process function while `--unsandboxed-processes` is on.
pub const UNSANDBOXED_WARNING: &str = "this server runs process functions without a sandbox (--unsandboxed-processes): this function can read the data directory, the admin token and every other function; deploy only code you trust";

/// A committed deploy.
#[derive(Debug, Clone)]
pub struct Deployed {
    /// The function.
    pub function: String,
    /// The new version.
    pub version: VersionNumber,
    /// Hex SHA-256 of the artifact.
    pub artifact_hash: String,
    /// The manifest routes now served.
    pub routes: Vec<String>,
    /// The static site (`[static]`): (files, total bytes).
    pub static_files: Option<(usize, u64)>,
    /// What the deployer should know (a process function without a sandbox).
    pub warnings: Vec<String>,
    /// What the version's token may do, one line per kind (none for a static-only site,
    /// which runs no code and has no token).
    pub permissions: Vec<String>,
}

/// Why a deploy, rollback or removal was refused.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// The manifest is invalid.
    #[error(transparent)]
    Manifest(#[from] gureum_manifest::ManifestError),
    /// The artifact is not a usable component.
    #[error(transparent)]
    Artifact(#[from] WasmError),
    /// The artifact is not a usable lambda code package.
    #[error(transparent)]
    Package(#[from] PackageError),
    /// Process functions cannot run on this machine (no sandbox); says how to fix it.
    #[error("{0}")]
    NoSandbox(String),
    /// The static site cannot be accepted or loaded.
    #[error(transparent)]
    Static(#[from] StaticError),
    /// Another function already serves a route.
    #[error(
        "route {route:?} is already served by function {owner:?}; choose another route or remove it from {owner:?} first"
    )]
    RouteConflict {
        /// The contested route.
        route: String,
        /// Its current owner.
        owner: String,
    },
    /// No such function or version.
    #[error("{0}")]
    NotFound(String),
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// A background task failed.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Invoker {
    /// Validates and stores a new version of a function and points `live` at it.
    pub async fn deploy(&self, manifest: &str, artifact: Vec<u8>) -> Result<Deployed, DeployError> {
        self.deploy_with_static(manifest, artifact, None).await
    }

    /// [`Invoker::deploy`] with the bundle of the manifest's `[static]` files
    /// ([`crate::static_site::pack`]); a static-only site's `artifact` is ignored.
    pub async fn deploy_with_static(
        &self,
        manifest: &str,
        artifact: Vec<u8>,
        static_bundle: Option<Vec<u8>>,
    ) -> Result<Deployed, DeployError> {
        let started = std::time::SystemTime::now();
        let result = self.deploy_traced(manifest, artifact, static_bundle).await;
        if self.parts.tracer.is_enabled() {
            let function = match &result {
                Ok(deployed) => deployed.function.clone(),
                // The name as far as the manifest gives it, even when it is invalid.
                Err(_) => gureum_manifest::parse(manifest)
                    .map(|spec| spec.name.to_string())
                    .unwrap_or_else(|_| "(invalid manifest)".into()),
            };
            let error = result.as_ref().err().map(ToString::to_string);
            self.parts.tracer.deploy(
                &function,
                result
                    .as_ref()
                    .ok()
                    .map(|deployed| u64::from(deployed.version)),
                result.is_ok(),
                error.as_deref(),
                started,
            );
        }
        result
    }

    async fn deploy_traced(
        &self,
        manifest: &str,
        artifact: Vec<u8>,
        static_bundle: Option<Vec<u8>>,
    ) -> Result<Deployed, DeployError> {
        let spec = gureum_manifest::parse(manifest)?;
        let function = spec.name.to_string();
        // The files are checked and loaded before anything is stored.
        let site = match (&spec.static_site, static_bundle) {
            (Some(_), Some(bundle)) => {
                let hash = hex::encode(Sha256::digest(&bundle));
                let (site, bundle) = tokio::task::spawn_blocking(move || {
                    (Site::from_bundle(&bundle, &hash), bundle)
                })
                .await
                .map_err(|error| DeployError::Internal(error.to_string()))?;
                Some((site?, bundle))
            }
            (Some(_), None) => return Err(StaticError::MissingBundle.into()),
            (None, Some(_)) => return Err(StaticError::UnexpectedBundle.into()),
            (None, None) => None,
        };
        let hash = match (&site, spec.runtime) {
            // A static-only site's artifact is its bundle.
            (Some((site, _)), Runtime::Static) => site.hash().to_string(),
            _ => hex::encode(Sha256::digest(&artifact)),
        };
        let (code, artifact) = match spec.runtime {
            Runtime::Wasm => {
                let engine = self.parts.engine.clone();
                let compile_hash = hash.clone();
                let (component, artifact) = tokio::task::spawn_blocking(move || {
                    (engine.compile(&compile_hash, &artifact), artifact)
                })
                .await
                .map_err(|error| DeployError::Internal(error.to_string()))?;
                self.parts.metrics.compilations.inc();
                (Some(Code::Wasm(component?)), artifact)
            }
            Runtime::Lambda => {
                self.parts
                    .lambda
                    .check_available()
                    .map_err(DeployError::NoSandbox)?;
                // Checked and unpacked before anything is stored, so a bad package
                // changes nothing and the first request does not pay for unpacking.
                let runtime = self.parts.lambda.clone();
                let command = spec.command.clone();
                let unpack_hash = hash.clone();
                let (dir, artifact) = tokio::task::spawn_blocking(move || {
                    let dir =
                        gureum_runtime_lambda::package::check(&artifact, &command).and_then(|()| {
                            runtime.ensure_code(&unpack_hash, || Some(artifact.clone()))
                        });
                    (dir, artifact)
                })
                .await
                .map_err(|error| DeployError::Internal(error.to_string()))?;
                (Some(Code::Lambda(dir?)), artifact)
            }
            Runtime::Static => (None, Vec::new()),
        };

        let _control = self.control.lock().await;
        self.check_routes(&function, &spec.routes)?;
        if let Some((site, bundle)) = &site {
            self.parts.store.put_artifact(site.hash(), bundle).await?;
        }
        if code.is_some() {
            self.parts.store.put_artifact(&hash, &artifact).await?;
        }
        let stored = self
            .parts
            .store
            .create_version_with_static(
                &spec.name,
                &hash,
                site.as_ref().map(|(site, _)| site.hash()),
                manifest,
                gureum_model::now_ms(),
            )
            .await?;
        let site = site.map(|(site, _)| self.share_site(site));

        let spec = Arc::new(spec);
        let slot = match code {
            // The code just compiled lives in anonymous memory (about 1 MiB for a small
            // component); the first request maps it from the compiled cache instead,
            // file-backed and shared with the page cache (well under a millisecond), so
            // a thousand deployed but idle functions cost little memory.
            Some(Code::Wasm(compiled)) => {
                drop(compiled);
                Some(OnceCell::new())
            }
            Some(code) => Some(OnceCell::new_with(Some(Arc::new(self.assemble(
                &function,
                stored.version,
                spec.clone(),
                code,
            ))))),
            // A static-only site has no code to load.
            None => None,
        };
        if let Some(slot) = slot {
            lock(&self.loaded)
                .entry(function.clone())
                .or_default()
                .insert(stored.version, Arc::new(slot));
        }
        let static_files = site
            .as_ref()
            .map(|site| (site.file_count(), site.byte_count()));
        self.swap_live(
            &function,
            Some(Arc::new(LiveFunction {
                version: stored.version,
                spec: spec.clone(),
                artifact_hash: hash.clone(),
                site,
            })),
        );
        tracing::info!(%function, version = stored.version, "deployed");
        let permissions = if spec.runtime == Runtime::Static {
            Vec::new()
        } else {
            spec.permissions.describe(&function)
        };
        Ok(Deployed {
            permissions,
            function,
            version: stored.version,
            artifact_hash: hash,
            routes: spec.routes.clone(),
            static_files,
            warnings: match (spec.runtime, self.parts.lambda.isolation()) {
                (Runtime::Lambda, gureum_runtime_lambda::Isolation::Unsandboxed) => {
                    vec![UNSANDBOXED_WARNING.to_string()]
                }
                _ => Vec::new(),
            },
        })
    }

    /// Points `live` at `to`, or at the version before the current live one.
    /// Returns (previous live, new live).
    pub async fn rollback(
        &self,
        function: &str,
        to: Option<VersionNumber>,
    ) -> Result<(VersionNumber, VersionNumber), DeployError> {
        let name = function_name(function)?;
        let _control = self.control.lock().await;
        let current = self
            .parts
            .store
            .get_alias(&name, LIVE_ALIAS)
            .await?
            .ok_or_else(|| not_deployed(function))?;
        let target = match to {
            Some(version) => version,
            None => {
                let versions = self.parts.store.list_versions(&name).await?;
                versions
                    .iter()
                    .rev()
                    .map(|version| version.version)
                    .find(|&version| version < current)
                    .ok_or_else(|| {
                        DeployError::NotFound(format!(
                            "function {function:?} has no version before {current} to roll back to; pass --to VERSION"
                        ))
                    })?
            }
        };
        let stored = self
            .parts
            .store
            .get_version(&name, target)
            .await?
            .ok_or_else(|| {
                DeployError::NotFound(format!(
                    "function {function:?} has no version {target}; `gureum versions {function}` lists them"
                ))
            })?;
        let spec = gureum_manifest::parse(&stored.manifest)?;
        self.check_routes(function, &spec.routes)?;
        // Loaded before `live` moves, so a bundle that cannot be loaded changes nothing.
        let site = match &stored.static_hash {
            Some(hash) => Some(self.load_site(hash).await?),
            None => None,
        };
        self.parts
            .store
            .set_alias(&name, LIVE_ALIAS, target)
            .await?;
        self.swap_live(
            function,
            Some(Arc::new(LiveFunction {
                version: target,
                spec: Arc::new(spec),
                artifact_hash: stored.artifact_hash,
                site,
            })),
        );
        tracing::info!(%function, from = current, to = target, "rolled back");
        Ok((current, target))
    }

    /// Removes a function, its versions and logs; its routes stop answering at once.
    pub async fn remove(&self, function: &str) -> Result<(), DeployError> {
        let name = function_name(function)?;
        let _control = self.control.lock().await;
        if !self.parts.store.delete_function(&name).await? {
            return Err(not_deployed(function));
        }
        self.swap_live(function, None);
        lock(&self.loaded).remove(function);
        lock(&self.pinned_sites).retain(|(name, _), _| name != function);
        tracing::info!(%function, "removed");
        Ok(())
    }

    fn check_routes(&self, function: &str, routes: &[String]) -> Result<(), DeployError> {
        let state = read(&self.state);
        for route in routes {
            if let Some(owner) = state.routes.owner_of(route)
                && owner != function
            {
                return Err(DeployError::RouteConflict {
                    route: route.clone(),
                    owner: owner.to_string(),
                });
            }
        }
        Ok(())
    }

    fn swap_live(&self, function: &str, live: Option<Arc<LiveFunction>>) {
        let mut state = write(&self.state);
        let mut functions: HashMap<String, Arc<LiveFunction>> = state.functions.clone();
        match live {
            Some(live) => {
                functions.insert(function.to_string(), live);
            }
            None => {
                functions.remove(function);
            }
        }
        state.install(functions);
    }
}

fn function_name(function: &str) -> Result<FunctionName, DeployError> {
    FunctionName::new(function).map_err(|error| DeployError::NotFound(error.to_string()))
}

fn not_deployed(function: &str) -> DeployError {
    DeployError::NotFound(format!(
        "no function named {function:?} is deployed; `gureum ls` lists the deployed functions"
    ))
}
