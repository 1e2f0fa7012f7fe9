//! The cold start: a version's code loaded once (compiled component from the cache, or
//! the process function's directory) and assembled with its environment, token and pool.
//!
//! Deploy compiles a component (validating it and filling the compiled-code cache) but
//! does not keep the compiled code: the first request maps it from `DATA_DIR/cache`,
//! file-backed, so deployed but idle functions cost little memory. A node with no local
//! copy (it never ran the version, or its cache is gone) reads the artifact from the
//! store on first use and compiles it into its own cache; a process function's package is
//! unpacked the same way. A pinned, non-live version (`/fn/NAME@V`) also reads its
//! manifest from the store on first use.

use std::sync::Arc;
use std::time::Duration;

use gureum_model::{FunctionName, FunctionSpec, Runtime, VersionNumber};
use gureum_pool::{InstancePool, PoolSettings};
use gureum_runtime_lambda::ProcessSettings;
use gureum_runtime_wasm::{CompiledComponent, InstanceSettings, LoadSource};

use crate::lambda;
use crate::metrics::VersionMetrics;
use crate::registry::LiveFunction;
use crate::{Code, InvokeError, LoadedVersion, Runner, lock};

impl crate::Invoker {
    /// Returns the loaded version, loading its code if needed (the `bool` says it was).
    pub(crate) async fn loaded_version(
        &self,
        function: &str,
        version: VersionNumber,
        live: &LiveFunction,
    ) -> Result<(Arc<LoadedVersion>, bool), InvokeError> {
        let cell = {
            let mut map = lock(&self.loaded);
            match map
                .get(function)
                .and_then(|versions| versions.get(&version))
            {
                Some(cell) => cell.clone(),
                None => map
                    .entry(function.to_string())
                    .or_default()
                    .entry(version)
                    .or_default()
                    .clone(),
            }
        };
        if let Some(loaded) = cell.get() {
            return Ok((loaded.clone(), false));
        }
        let loaded = cell
            .get_or_try_init(|| self.load_version(function, version, live))
            .await?;
        Ok((loaded.clone(), true))
    }

    pub(crate) async fn load_version(
        &self,
        function: &str,
        version: VersionNumber,
        live: &LiveFunction,
    ) -> Result<Arc<LoadedVersion>, InvokeError> {
        let (spec, hash) = if version == live.version {
            (live.spec.clone(), live.artifact_hash.clone())
        } else {
            let name = FunctionName::new(function)
                .map_err(|error| InvokeError::NotFound(error.to_string()))?;
            let stored = self
                .parts
                .store
                .get_version(&name, version)
                .await
                .map_err(|error| InvokeError::Unavailable(error.to_string()))?
                .ok_or_else(|| {
                    InvokeError::NotFound(format!(
                        "function {function:?} has no version {version}; `gureum versions {function}` lists them"
                    ))
                })?;
            let spec = gureum_manifest::parse(&stored.manifest)
                .map_err(|error| InvokeError::Unavailable(error.to_string()))?;
            (Arc::new(spec), stored.artifact_hash)
        };
        let code = match spec.runtime {
            Runtime::Wasm => Code::Wasm(self.component(&hash).await?),
            Runtime::Lambda => Code::Lambda(self.lambda_code(&hash).await?),
            Runtime::Static => {
                return Err(InvokeError::Unavailable(format!(
                    "{function:?} is a static-only site: it serves its files over HTTP and runs no code (add runtime and artifact to gureum.toml to handle events)"
                )));
            }
        };
        Ok(Arc::new(self.assemble(function, version, spec, code)))
    }

    /// The artifact from the store, fetched only when there is no local copy to use.
    pub(crate) async fn stored_artifact_unless(
        &self,
        local_copy: bool,
        hash: &str,
    ) -> Result<Option<Vec<u8>>, InvokeError> {
        if local_copy {
            return Ok(None);
        }
        self.parts
            .store
            .get_artifact(hash)
            .await
            .map_err(|error| InvokeError::Unavailable(error.to_string()))
    }

    pub(crate) async fn component(&self, hash: &str) -> Result<CompiledComponent, InvokeError> {
        let bytes = self
            .stored_artifact_unless(self.parts.engine.is_cached(hash), hash)
            .await?;
        let engine = self.parts.engine.clone();
        let owned_hash = hash.to_string();
        let (component, source) =
            tokio::task::spawn_blocking(move || engine.load(&owned_hash, || bytes))
                .await
                .map_err(|error| InvokeError::Unavailable(error.to_string()))?
                .map_err(|error| InvokeError::Unavailable(error.to_string()))?;
        match source {
            LoadSource::Cache => self.parts.metrics.cache_loads.inc(),
            LoadSource::Compiled => self.parts.metrics.compilations.inc(),
        };
        Ok(component)
    }

    pub(crate) fn assemble(
        &self,
        function: &str,
        version: VersionNumber,
        spec: Arc<FunctionSpec>,
        code: Code,
    ) -> LoadedVersion {
        let mut env = self.parts.platform_env.clone();
        env.push(("GUREUM_FUNCTION_NAME".into(), function.to_string()));
        env.push(("GUREUM_FUNCTION_VERSION".into(), version.to_string()));
        let token = self.parts.tokens.token_for(function, version);
        if spec.runtime == Runtime::Lambda {
            // The AWS SDKs sign platform API calls (e.g. boto3's apigatewaymanagementapi)
            // with these; the platform reads the token from the access key id.
            env.push(("AWS_ACCESS_KEY_ID".into(), token.clone()));
            env.push(("AWS_SECRET_ACCESS_KEY".into(), "gureum".into()));
            // Unchanged AWS code creating an API Gateway management client without an
            // endpoint finds the platform API through the SDKs' per-service variable.
            if let Some((_, api)) = self
                .parts
                .platform_env
                .iter()
                .find(|(key, _)| key == "GUREUM_API")
            {
                env.push((
                    "AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI".into(),
                    api.clone(),
                ));
            }
        }
        env.push(("GUREUM_FUNCTION_TOKEN".into(), token));
        env.extend(spec.env.iter().map(|(k, v)| (k.clone(), v.clone())));
        let limits = spec.limits;
        let pool_settings = PoolSettings::new(
            limits.max_instances,
            Duration::from_secs(limits.idle_ttl_s),
            spec.reuse_instances || spec.runtime == Runtime::Lambda,
        );
        let runner = match code {
            Code::Wasm(component) => {
                // The platform API is always reachable (INTERFACE: "GUREUM_API is always allowed").
                let mut allowed_outbound_hosts = spec.allowed_outbound_hosts.clone();
                allowed_outbound_hosts.extend(
                    self.parts
                        .platform_env
                        .iter()
                        .filter(|(key, _)| key == "GUREUM_API")
                        .map(|(_, url)| url.clone()),
                );
                Runner::Wasm {
                    component,
                    pool: InstancePool::new(pool_settings),
                    settings: InstanceSettings {
                        env,
                        memory_mb: limits.memory_mb,
                        allowed_outbound_hosts: Arc::new(allowed_outbound_hosts),
                        outbound_private: self.parts.outbound_private,
                    },
                }
            }
            Code::Lambda(code_dir) => Runner::Lambda {
                pool: InstancePool::new(pool_settings),
                settings: ProcessSettings {
                    function: function.to_string(),
                    version,
                    command: spec.command.clone(),
                    env,
                    memory_mb: limits.memory_mb,
                    ephemeral_storage_mb: limits.ephemeral_storage_mb,
                    outbound_endpoints: gureum_manifest::exact_endpoints(
                        &spec.allowed_outbound_hosts,
                    ),
                    outbound_private: self.parts.outbound_private,
                    code_dir,
                    logs: lambda::log_sink(&self.parts.telemetry, function, version),
                },
            },
        };
        LoadedVersion {
            function: function.to_string(),
            version,
            runner,
            metrics: VersionMetrics::new(&self.parts.metrics, function, version),
            spec,
        }
    }
}
