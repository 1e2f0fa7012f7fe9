//! The error codes the platform answers are the ones README's "Error codes" table lists,
//! each with its one status: the typed errors (`InvokeError`, `DataError`, the control
//! API's `ApiError`, `CallerError`) and every code written in place in the sources
//! (`error_response(StatusCode::…, "code"`, `Failure::new(…)`, auth's `error(…)`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use gureum_api_types::PublicError;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// README's table: code → status.
fn documented() -> BTreeMap<String, u16> {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let table = readme
        .split("## Error codes")
        .nth(1)
        .expect("README has an Error codes section");
    let mut codes = BTreeMap::new();
    for line in table.lines().take_while(|line| !line.starts_with("## ")) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if cells.len() < 4 || !cells[1].starts_with('`') {
            continue;
        }
        let code = cells[1].trim_matches('`').to_string();
        let status: u16 = cells[2].parse().expect("a status number");
        assert!(
            codes.insert(code.clone(), status).is_none(),
            "{code} is listed twice"
        );
    }
    codes
}

fn status_number(name: &str) -> u16 {
    match name {
        "BAD_REQUEST" => 400,
        "UNAUTHORIZED" => 401,
        "FORBIDDEN" => 403,
        "NOT_FOUND" => 404,
        "METHOD_NOT_ALLOWED" => 405,
        "CONFLICT" => 409,
        "PRECONDITION_FAILED" => 412,
        "PAYLOAD_TOO_LARGE" => 413,
        "UNSUPPORTED_MEDIA_TYPE" => 415,
        "UPGRADE_REQUIRED" => 426,
        "GONE" => 410,
        "TOO_MANY_REQUESTS" => 429,
        "INTERNAL_SERVER_ERROR" => 500,
        "BAD_GATEWAY" => 502,
        "SERVICE_UNAVAILABLE" => 503,
        "GATEWAY_TIMEOUT" => 504,
        other => panic!("add StatusCode::{other} to status_number"),
    }
}

fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            found.push(path);
        }
    }
}

/// Codes written in place: `(error_response|Failure::new|error)(StatusCode::X, "code"`.
fn written_in_place() -> Vec<(String, u16, PathBuf)> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(root().join("crates")).unwrap().flatten() {
        let src = entry.path().join("src");
        if src.is_dir() {
            rust_files(&src, &mut files);
        }
    }
    let mut found = Vec::new();
    for file in files {
        // The WebSocket management API (AWS REST-JSON, `x-amzn-ErrorType`) and the Lambda
        // Runtime API (`errorType`) answer in AWS's shapes, which the AWS SDKs and runtime
        // clients parse; their names are AWS's, not gureum's codes.
        if file.ends_with("websocket/src/platform.rs")
            || file.ends_with("runtime-lambda/src/api.rs")
        {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        for call in ["error_response(", "Failure::new(", "error("] {
            for (at, _) in text.match_indices(call) {
                let rest = text[at + call.len()..].trim_start();
                let Some(rest) = rest
                    .strip_prefix("http::StatusCode::")
                    .or_else(|| rest.strip_prefix("StatusCode::"))
                else {
                    continue;
                };
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_uppercase() || *c == '_')
                    .collect();
                let rest = rest[name.len()..].trim_start();
                let Some(rest) = rest.strip_prefix(',') else {
                    continue;
                };
                let Some(rest) = rest.trim_start().strip_prefix('"') else {
                    continue;
                };
                let code: String = rest.chars().take_while(|c| *c != '"').collect();
                found.push((code, status_number(&name), file.clone()));
            }
        }
    }
    found
}

fn typed() -> Vec<(String, u16)> {
    use gureum_data::DataError;
    use gureum_invoke::{DeployError, InvokeError};
    let mut errors: Vec<Box<dyn PublicError>> = vec![
        Box::new(InvokeError::NotFound(String::new())),
        Box::new(InvokeError::Throttled(gureum_pool::PoolError::Throttled {
            max_instances: 1,
        })),
        Box::new(InvokeError::Timeout { timeout_ms: 1 }),
        Box::new(InvokeError::MemoryLimit { memory_mb: 1 }),
        Box::new(InvokeError::FunctionError(String::new())),
        Box::new(InvokeError::Unavailable(String::new())),
        Box::new(InvokeError::QuotaExceeded(Box::new(
            gureum_invoke::QuotaRefusal {
                scope: "global".into(),
                kind: "requests".into(),
                cap: "1".into(),
                used: "1".into(),
                resets_at: String::new(),
                retry_after_s: 1,
            },
        ))),
        Box::new(DataError::BadRequest(String::new())),
        Box::new(DataError::Unauthorized(String::new())),
        Box::new(DataError::Forbidden(String::new())),
        Box::new(DataError::NotFound(String::new())),
        Box::new(DataError::VersionMismatch { current: 1 }),
        Box::new(DataError::Conflict(String::new())),
        Box::new(DataError::TooLarge(String::new())),
        Box::new(DataError::UnsupportedType(String::new())),
        Box::new(DataError::Io(String::new())),
        Box::new(DataError::TooManyStreams(String::new())),
    ];
    use gureum_control_api::ApiError;
    errors.extend([
        Box::new(ApiError::Unauthorized) as Box<dyn PublicError>,
        Box::new(ApiError::BadRequest(String::new())),
        Box::new(ApiError::NotFound(String::new())),
        Box::new(ApiError::InvalidPrices(String::new())),
        Box::new(ApiError::InvalidQuota(String::new())),
        Box::new(ApiError::Deploy(DeployError::Manifest(
            gureum_manifest::parse("name = 1").unwrap_err(),
        ))),
        Box::new(ApiError::Deploy(DeployError::NoSandbox(String::new()))),
        Box::new(ApiError::Deploy(DeployError::RouteConflict {
            route: "/a".into(),
            owner: "b".into(),
        })),
        Box::new(ApiError::Deploy(DeployError::NotFound(String::new()))),
        Box::new(ApiError::Deploy(DeployError::Internal(String::new()))),
    ]);
    let mut codes: Vec<(String, u16)> = errors
        .iter()
        .map(|error| (error.code().to_string(), error.status().as_u16()))
        .collect();
    for error in [
        gureum_auth::CallerError::Expired,
        gureum_auth::CallerError::Invalid(String::new()),
    ] {
        let response = error.response();
        let code = response.headers()[gureum_api_types::ERROR_HEADER]
            .to_str()
            .unwrap()
            .to_string();
        codes.push((code, response.status().as_u16()));
    }
    codes
}

#[test]
fn every_code_the_platform_answers_is_documented_with_its_one_status() {
    let documented = documented();
    assert!(documented.len() > 40, "{documented:?}");
    let typed = typed();
    let in_place = written_in_place();
    assert!(in_place.len() > 25, "the scan found only {in_place:?}");
    let mut missing = Vec::new();
    for (code, status, file) in typed
        .iter()
        .map(|(code, status)| (code.clone(), *status, PathBuf::from("a typed error")))
        .chain(in_place)
    {
        match documented.get(&code) {
            Some(listed) if *listed == status => {}
            Some(listed) => missing.push(format!(
                "{code}: answered with {status} by {}, README says {listed}",
                file.display()
            )),
            None => missing.push(format!(
                "{code} ({status}) is not in README's Error codes table"
            )),
        }
    }
    assert!(missing.is_empty(), "{}", missing.join("\n"));
}
