//! Static hosting (`[static]` in gureum.toml), Firebase Hosting's model: a version's
//! files are served at the function's routes before the function is invoked ("hosting
//! first, then rewrites"); a static-only site runs no code at all.
//!
//! The files travel with the deploy as one zip bundle ([`pack`], also used by the CLI) in
//! the multipart part `static`. Deploy loads them into a [`Site`] before anything is
//! stored, then stores the bundle as a content-addressed artifact of its own, whose hash
//! is the version's `static_hash`. A site has at most [`MAX_STATIC_SITE_BYTES`] of files.
//!
//! A site is held in memory while its version is live (the registry's
//! `LiveFunction.site`) or pinned and in use, one copy per bundle hash however many
//! versions share it (the invoker's site cache, below). Rollback, start and the registry
//! sync load sites from the store; a pinned version's is loaded on its first use. The
//! site answers before quota admission and code loading, so a file hit is a map lookup:
//! no disk, no invocation record. The gateway only marks a bare `/fn/NAME`
//! ([`MountRoot`]) so that the site can redirect it to `/fn/NAME/`.
//!
//! Serving ([`Site::respond`]): GET and HEAD; the path is percent-decoded and split into
//! segments (`.` dropped, `..` refused), so nothing outside the site can be named, and
//! the files are looked up in a map anyway. `/dir/` serves `dir/index.html`, `/dir`
//! redirects there; Content-Type from the extension; a strong ETag (hash of the content)
//! with `If-None-Match` → 304; `Cache-Control: public, max-age=0, must-revalidate` for
//! HTML (a new deploy shows at once) and `public, max-age=3600` for other files. With
//! `spa = true`, a GET for a path with no file and no extension gets `index.html` (with a
//! function beside the files: only when the client accepts text/html, so API calls still
//! reach the function). A site without a function answers other paths with its `404.html`
//! (status 404) or a JSON 404, and other methods with 405.

use std::collections::HashMap;
use std::io::{Cursor, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use gureum_model::{MAX_STATIC_SITE_BYTES, MAX_STATIC_SITE_FILES};
use http::header::{
    ACCEPT, ALLOW, CACHE_CONTROL, CONTENT_TYPE, ETAG, HeaderValue, IF_NONE_MATCH, LOCATION,
};
use http::{Method, Response, StatusCode};
use http_body_util::{BodyExt as _, Full};
use sha2::{Digest, Sha256};

use crate::ResponseBody;
use crate::registry::LiveFunction;
use crate::{DeployError, lock};
use gureum_model::{FunctionName, FunctionSpec, Runtime, VersionNumber};
use std::sync::Weak;
use std::sync::atomic::Ordering;

/// Cache policy of HTML files: always revalidated (cheap with the ETag), so a deploy or
/// rollback is visible on the next load.
pub const HTML_CACHE_CONTROL: &str = "public, max-age=0, must-revalidate";
/// Cache policy of every other file (scripts, styles, images): an hour, Firebase
/// Hosting's default.
pub const ASSET_CACHE_CONTROL: &str = "public, max-age=3600";
/// Deepest directory nesting packed (also stops symbolic-link loops).
const MAX_DEPTH: usize = 32;

/// Why a static site cannot be packed, accepted or loaded.
#[derive(Debug, thiserror::Error)]
pub enum StaticError {
    /// Reading the user's files failed.
    #[error("reading {path}: {message}")]
    Read {
        /// The file or directory.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// Over the size or file-count limit.
    #[error(
        "the static site is too large: {what}; the limit is {} MiB in at most {MAX_STATIC_SITE_FILES} files (leave sources, source maps and caches out of [static] dir)",
        MAX_STATIC_SITE_BYTES / 1024 / 1024
    )]
    TooLarge {
        /// What went over.
        what: String,
    },
    /// The uploaded bundle is not one `pack` makes.
    #[error("the static site bundle is invalid ({0}); deploy with `gureum deploy`")]
    Corrupt(String),
    /// The manifest has `[static]` but the upload has no bundle.
    #[error(
        "gureum.toml has a [static] section but the upload has no `static` part (the zip of the files); deploy with `gureum deploy`"
    )]
    MissingBundle,
    /// The upload has a bundle but the manifest no `[static]` section.
    #[error(
        "the upload has a `static` part but gureum.toml has no [static] section; add one (dir = \"public\") or leave the part out"
    )]
    UnexpectedBundle,
}

fn read_error(path: &Path, error: impl std::fmt::Display) -> StaticError {
    StaticError::Read {
        path: path.display().to_string(),
        message: error.to_string(),
    }
}

fn too_large(what: String) -> StaticError {
    StaticError::TooLarge { what }
}

/// Packs the files under `dir` into a bundle: a zip whose entries are the files' paths
/// relative to `dir`, in sorted order with fixed timestamps (the same files give the same
/// bytes). Names starting with `.` are left out (`.git`, `.DS_Store`), except
/// `.well-known`; symbolic links are followed.
pub fn pack(dir: &Path) -> Result<Vec<u8>, StaticError> {
    let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
    add_dir(&mut writer, dir, dir, 0, &mut 0, &mut 0)?;
    writer
        .finish()
        .map(Cursor::into_inner)
        .map_err(|error| read_error(dir, error))
}

fn add_dir(
    writer: &mut zip::ZipWriter<Cursor<Vec<u8>>>,
    root: &Path,
    dir: &Path,
    depth: usize,
    bytes: &mut u64,
    files: &mut usize,
) -> Result<(), StaticError> {
    if depth > MAX_DEPTH {
        return Err(too_large(format!(
            "{} is nested more than {MAX_DEPTH} directories deep (or a symbolic link loops)",
            dir.display()
        )));
    }
    let mut children: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|error| read_error(dir, error))?
        .map(|entry| entry.map(|entry| entry.path()))
        .collect::<Result<_, _>>()
        .map_err(|error| read_error(dir, error))?;
    children.sort();
    for child in children {
        let Some(name) = child.file_name().and_then(|name| name.to_str()) else {
            return Err(read_error(&child, "the name is not valid UTF-8; rename it"));
        };
        if name.starts_with('.') && name != ".well-known" {
            continue;
        }
        let meta = std::fs::metadata(&child).map_err(|error| read_error(&child, error))?;
        if meta.is_dir() {
            add_dir(writer, root, &child, depth + 1, bytes, files)?;
            continue;
        }
        *files += 1;
        *bytes += meta.len();
        if *files > MAX_STATIC_SITE_FILES {
            return Err(too_large(format!(
                "{} holds more than {MAX_STATIC_SITE_FILES} files",
                root.display()
            )));
        }
        if *bytes > MAX_STATIC_SITE_BYTES {
            return Err(too_large(format!(
                "{} holds more than {} MiB",
                root.display(),
                MAX_STATIC_SITE_BYTES / 1024 / 1024
            )));
        }
        let relative = child
            .strip_prefix(root)
            .unwrap_or(&child)
            .components()
            .map(|part| part.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/");
        let content = std::fs::read(&child).map_err(|error| read_error(&child, error))?;
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .last_modified_time(zip::DateTime::default())
            .unix_permissions(0o644)
            .large_file(false);
        writer
            .start_file(relative.as_str(), options)
            .and_then(|()| writer.write_all(&content).map_err(Into::into))
            .map_err(|error| read_error(&child, error))?;
    }
    Ok(())
}

/// One file of a site, with everything its response needs computed at load.
#[derive(Debug)]
struct File {
    body: Bytes,
    content_type: HeaderValue,
    etag: HeaderValue,
    html: bool,
}

/// A version's static files, in memory.
#[derive(Debug)]
pub struct Site {
    files: HashMap<String, Arc<File>>,
    hash: String,
    bytes: u64,
}

impl Site {
    /// Loads a bundle made by [`pack`] (checked again: it came over the network or from
    /// the store), whose content hash is `hash`.
    pub fn from_bundle(bundle: &[u8], hash: &str) -> Result<Site, StaticError> {
        let mut archive = zip::ZipArchive::new(Cursor::new(bundle))
            .map_err(|error| StaticError::Corrupt(error.to_string()))?;
        if archive.len() > MAX_STATIC_SITE_FILES * 2 {
            return Err(too_large(format!("{} entries", archive.len())));
        }
        let mut files = HashMap::new();
        let mut total = 0u64;
        for index in 0..archive.len() {
            let mut entry = archive
                .by_index(index)
                .map_err(|error| StaticError::Corrupt(error.to_string()))?;
            if entry.is_dir() {
                continue;
            }
            let name = entry
                .name()
                .map_err(|error| StaticError::Corrupt(error.to_string()))?
                .into_owned();
            if name.split('/').any(|segment| {
                segment.is_empty()
                    || segment == "."
                    || segment == ".."
                    || segment.contains(['\\', '\0'])
            }) {
                return Err(StaticError::Corrupt(format!("unsafe entry name {name:?}")));
            }
            // The declared size may lie; never read more than the limit allows.
            let budget = MAX_STATIC_SITE_BYTES - total;
            let mut content = Vec::with_capacity(entry.size().min(budget) as usize);
            (&mut entry)
                .take(budget + 1)
                .read_to_end(&mut content)
                .map_err(|error| StaticError::Corrupt(error.to_string()))?;
            total += content.len() as u64;
            if total > MAX_STATIC_SITE_BYTES {
                return Err(too_large(format!(
                    "the files add up to more than {} MiB",
                    MAX_STATIC_SITE_BYTES / 1024 / 1024
                )));
            }
            if files.len() >= MAX_STATIC_SITE_FILES {
                return Err(too_large(format!(
                    "more than {MAX_STATIC_SITE_FILES} files"
                )));
            }
            let file = File::new(&name, content);
            files.insert(name, Arc::new(file));
        }
        Ok(Site {
            files,
            hash: hash.to_string(),
            bytes: total,
        })
    }

    /// The bundle's content hash.
    pub fn hash(&self) -> &str {
        &self.hash
    }

    /// How many files the site has.
    pub fn file_count(&self) -> usize {
        self.files.len()
    }

    /// The files' total size.
    pub fn byte_count(&self) -> u64 {
        self.bytes
    }

    /// Answers `asked` from the files, or passes it on to the function (`has_code`); a
    /// site without a function answers everything.
    pub(crate) fn respond(&self, asked: &Asked, spa: bool, has_code: bool) -> Outcome {
        if asked.method != Method::GET && asked.method != Method::HEAD {
            return if has_code {
                Outcome::Pass
            } else {
                Outcome::Served(method_not_allowed(&asked.method))
            };
        }
        let Some(segments) = segments(&asked.path) else {
            return if has_code {
                Outcome::Pass
            } else {
                Outcome::Served(error(
                    StatusCode::BAD_REQUEST,
                    "bad_path",
                    "the path has a `..` segment or is not valid percent-encoded UTF-8; static files are named by plain paths",
                ))
            };
        };
        let key = segments.join("/");
        let directory_form = asked.path.ends_with('/');
        if !key.is_empty()
            && !directory_form
            && let Some(file) = self.files.get(&key)
        {
            return Outcome::Served(serve(file, StatusCode::OK, asked));
        }
        let index_key = if key.is_empty() {
            "index.html".to_string()
        } else {
            format!("{key}/index.html")
        };
        if let Some(index) = self.files.get(&index_key) {
            // `/dir` → `./dir/` and `/fn/NAME` → `./NAME/`, relative so it holds whatever
            // the site is mounted at; relative links in the page then resolve inside it.
            let redirect_to = if key.is_empty() {
                asked.mount_root.as_deref()
            } else if directory_form {
                None
            } else {
                asked.path.rsplit('/').next()
            };
            return Outcome::Served(match redirect_to {
                Some(last) => redirect(last, asked.query.as_deref()),
                None => serve(index, StatusCode::OK, asked),
            });
        }
        let extension_like = segments.last().is_some_and(|last| last.contains('.'));
        if spa
            && !extension_like
            && (!has_code || asked.accepts_html)
            && let Some(index) = self.files.get("index.html")
        {
            return Outcome::Served(serve(index, StatusCode::OK, asked));
        }
        if has_code {
            return Outcome::Pass;
        }
        Outcome::Served(match self.files.get("404.html") {
            Some(page) => {
                let mut response = serve(page, StatusCode::NOT_FOUND, asked);
                response.headers_mut().remove(ETAG);
                response
            }
            None => error(
                StatusCode::NOT_FOUND,
                "file_not_found",
                &format!(
                    "no file at {} in this static site (add a 404.html to answer such paths with a page, or spa = true for a single-page app)",
                    asked.path
                ),
            ),
        })
    }
}

impl File {
    fn new(name: &str, content: Vec<u8>) -> File {
        let mime = mime_guess::from_path(name)
            .first_raw()
            .unwrap_or("application/octet-stream");
        let textual = mime.starts_with("text/")
            || matches!(
                mime,
                "application/javascript"
                    | "application/json"
                    | "application/xml"
                    | "application/manifest+json"
                    | "image/svg+xml"
            );
        let content_type = if textual {
            format!("{mime}; charset=utf-8")
        } else {
            mime.to_string()
        };
        let digest = hex::encode(Sha256::digest(&content));
        File {
            content_type: HeaderValue::from_str(&content_type)
                .unwrap_or(HeaderValue::from_static("application/octet-stream")),
            etag: HeaderValue::from_str(&format!("\"{}\"", &digest[..32]))
                .unwrap_or(HeaderValue::from_static("\"\"")),
            html: mime == "text/html",
            body: Bytes::from(content),
        }
    }
}

/// What [`Site::respond`] decided.
pub(crate) enum Outcome {
    /// The site answered.
    Served(Response<ResponseBody>),
    /// Not a file: the function handles the request.
    Pass,
}

/// What serving a request needs from it, owned (taken before the invoker awaits).
pub(crate) struct Asked {
    method: Method,
    path: String,
    query: Option<String>,
    if_none_match: Option<HeaderValue>,
    accepts_html: bool,
    /// The request named the mount point without its slash (`/fn/NAME`): the last
    /// segment of the mount prefix, to redirect to.
    mount_root: Option<String>,
}

/// A request extension set by the gateway when the request path is exactly a function's
/// mount prefix (`/fn/NAME`, no trailing slash): the function sees `/` either way, but a
/// static site redirects to `/fn/NAME/` so that relative links resolve inside it.
#[derive(Debug, Clone, Copy)]
pub struct MountRoot;

impl Asked {
    pub(crate) fn of<B>(request: &http::Request<B>) -> Asked {
        let headers = request.headers();
        let mount_root = request
            .extensions()
            .get::<MountRoot>()
            .and_then(|_| headers.get("x-forwarded-prefix"))
            .and_then(|prefix| prefix.to_str().ok())
            .and_then(|prefix| prefix.rsplit('/').next())
            .filter(|last| !last.is_empty())
            .map(str::to_string);
        Asked {
            method: request.method().clone(),
            path: request.uri().path().to_string(),
            query: request.uri().query().map(str::to_string),
            if_none_match: headers.get(IF_NONE_MATCH).cloned(),
            accepts_html: headers
                .get_all(ACCEPT)
                .iter()
                .any(|value| value.as_bytes().windows(9).any(|w| w == b"text/html")),
            mount_root,
        }
    }
}

/// The decoded segments of `path`, without empty and `.` ones; `None` for a `..` segment
/// or one that does not decode to a plain name.
fn segments(path: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    for raw in path.split('/') {
        let segment = percent_encoding::percent_decode_str(raw)
            .decode_utf8()
            .ok()?;
        match segment.as_ref() {
            "" | "." => {}
            ".." => return None,
            name if name.contains(['/', '\\', '\0']) => return None,
            _ => out.push(segment.into_owned()),
        }
    }
    Some(out)
}

/// Whether `If-None-Match` names `etag` (weak comparison, as RFC 9110 asks for it).
fn matches_etag(if_none_match: &HeaderValue, etag: &HeaderValue) -> bool {
    let Ok(list) = if_none_match.to_str() else {
        return false;
    };
    let etag = etag.to_str().unwrap_or_default();
    list.split(',').map(str::trim).any(|candidate| {
        candidate == "*" || candidate.strip_prefix("W/").unwrap_or(candidate) == etag
    })
}

fn serve(file: &File, status: StatusCode, asked: &Asked) -> Response<ResponseBody> {
    let not_modified = status == StatusCode::OK
        && asked
            .if_none_match
            .as_ref()
            .is_some_and(|value| matches_etag(value, &file.etag));
    // HEAD gets the whole body too: hyper sends its length and leaves the bytes out.
    let body = if not_modified {
        Bytes::new()
    } else {
        file.body.clone()
    };
    let mut response = Response::new(full(body));
    *response.status_mut() = if not_modified {
        StatusCode::NOT_MODIFIED
    } else {
        status
    };
    let headers = response.headers_mut();
    headers.insert(ETAG, file.etag.clone());
    headers.insert(
        CACHE_CONTROL,
        HeaderValue::from_static(if file.html {
            HTML_CACHE_CONTROL
        } else {
            ASSET_CACHE_CONTROL
        }),
    );
    if !not_modified {
        headers.insert(CONTENT_TYPE, file.content_type.clone());
        headers.insert(
            "x-content-type-options",
            HeaderValue::from_static("nosniff"),
        );
    }
    response
}

fn redirect(last_segment: &str, query: Option<&str>) -> Response<ResponseBody> {
    let location = match query {
        Some(query) => format!("./{last_segment}/?{query}"),
        None => format!("./{last_segment}/"),
    };
    let mut response = Response::new(full(Bytes::new()));
    *response.status_mut() = StatusCode::MOVED_PERMANENTLY;
    if let Ok(location) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(LOCATION, location);
    }
    response
}

fn method_not_allowed(method: &Method) -> Response<ResponseBody> {
    let mut response = error(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        &format!(
            "{method} is not allowed on a static site; use GET or HEAD (add runtime and artifact to gureum.toml to handle other methods with a function)"
        ),
    );
    response
        .headers_mut()
        .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
    response
}

/// The platform's error answer ([`gureum_api_types::render`]).
fn error(status: StatusCode, code: &'static str, message: &str) -> Response<ResponseBody> {
    gureum_api_types::render(&gureum_api_types::Failure::new(status, code, message)).map(full)
}

fn full(body: Bytes) -> ResponseBody {
    Full::new(body)
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// The invoker's cache of sites: the live versions' (shared between versions with the
/// same bundle) and pinned versions' (loaded on first use, dropped when unused).
impl crate::Invoker {
    /// The static site's answer to `asked`, or `None` when the function (if any) handles
    /// it: the version has no site, or the path names no file.
    pub(crate) async fn serve_static(
        &self,
        function: &str,
        version: VersionNumber,
        live: &LiveFunction,
        asked: &Asked,
    ) -> Option<http::Response<ResponseBody>> {
        let (spec, site) = if version == live.version {
            (live.spec.clone(), live.site.clone()?)
        } else {
            self.pinned_site(function, version).await?
        };
        let spa = spec.static_site.as_ref().is_some_and(|site| site.spa);
        match site.respond(asked, spa, spec.runtime != Runtime::Static) {
            Outcome::Served(response) => Some(response),
            Outcome::Pass => None,
        }
    }

    /// A pinned, non-live version's spec and site, loaded on first use; `None` when it has
    /// no site or cannot be loaded (the invocation path then reports why).
    pub(crate) async fn pinned_site(
        &self,
        function: &str,
        version: VersionNumber,
    ) -> Option<(Arc<FunctionSpec>, Arc<Site>)> {
        let key = (function.to_string(), version);
        let slot = lock(&self.pinned_sites)
            .entry(key.clone())
            .or_default()
            .clone();
        slot.used_ms
            .store(gureum_model::now_ms(), Ordering::Relaxed);
        let loaded = slot
            .cell
            .get_or_try_init(|| async {
                let name = FunctionName::new(function).map_err(|_| ())?;
                let stored = self
                    .parts
                    .store
                    .get_version(&name, version)
                    .await
                    .map_err(|_| ())?
                    .ok_or(())?;
                let Some(hash) = stored.static_hash else {
                    return Ok(None);
                };
                let spec = gureum_manifest::parse(&stored.manifest).map_err(|_| ())?;
                match self.load_site(&hash).await {
                    Ok(site) => Ok(Some((Arc::new(spec), site))),
                    Err(error) => {
                        tracing::warn!(%function, version, %error, "static site of a pinned version cannot be loaded");
                        Err(())
                    }
                }
            })
            .await;
        match loaded {
            Ok(found) => found.clone(),
            Err(()) => {
                lock(&self.pinned_sites).remove(&key);
                None
            }
        }
    }
    /// The static site stored as artifact `hash`: the one in memory if any version uses
    /// it, else loaded from the store (off the request path: at deploy, rollback, start,
    /// or a pinned version's first use).
    pub(crate) async fn load_site(&self, hash: &str) -> Result<Arc<Site>, DeployError> {
        if let Some(site) = lock(&self.sites).get(hash).and_then(Weak::upgrade) {
            return Ok(site);
        }
        let bundle = self.parts.store.get_artifact(hash).await?.ok_or_else(|| {
            DeployError::Static(StaticError::Corrupt(format!(
                "bundle {hash} is missing from the store"
            )))
        })?;
        let owned = hash.to_string();
        let site = tokio::task::spawn_blocking(move || Site::from_bundle(&bundle, &owned))
            .await
            .map_err(|error| DeployError::Internal(error.to_string()))??;
        Ok(self.share_site(site))
    }
    /// `site` as the one shared copy of its bundle.
    pub(crate) fn share_site(&self, site: Site) -> Arc<Site> {
        let mut sites = lock(&self.sites);
        if let Some(existing) = sites.get(site.hash()).and_then(Weak::upgrade) {
            return existing;
        }
        let site = Arc::new(site);
        sites.insert(site.hash().to_string(), Arc::downgrade(&site));
        site
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site(files: &[(&str, &str)]) -> Site {
        let dir = tempfile::tempdir().unwrap();
        for (name, content) in files {
            let path = dir.path().join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, content).unwrap();
        }
        let bundle = pack(dir.path()).unwrap();
        assert_eq!(
            pack(dir.path()).unwrap(),
            bundle,
            "packing is deterministic"
        );
        Site::from_bundle(&bundle, "h").unwrap()
    }

    fn ask(method: &str, uri: &str, headers: &[(&str, &str)]) -> Asked {
        let mut request = http::Request::builder().method(method).uri(uri);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        Asked::of(&request.body(()).unwrap())
    }

    fn status(outcome: Outcome) -> Option<(u16, http::HeaderMap)> {
        match outcome {
            Outcome::Served(response) => {
                Some((response.status().as_u16(), response.headers().clone()))
            }
            Outcome::Pass => None,
        }
    }

    #[test]
    fn files_indexes_and_redirects() {
        let site = site(&[
            ("index.html", "<h1>home</h1>"),
            ("css/app.css", "body{}"),
            ("docs/index.html", "docs"),
            (".git/config", "secret"),
            (".well-known/security.txt", "hi"),
        ]);
        assert_eq!(
            site.file_count(),
            4,
            "dot files are left out, .well-known kept"
        );
        let (code, headers) = status(site.respond(&ask("GET", "/", &[]), false, false)).unwrap();
        assert_eq!(code, 200);
        assert_eq!(headers[CONTENT_TYPE], "text/html; charset=utf-8");
        assert_eq!(headers[CACHE_CONTROL], HTML_CACHE_CONTROL);
        let (code, headers) =
            status(site.respond(&ask("HEAD", "/css/app.css", &[]), false, false)).unwrap();
        assert_eq!(code, 200);
        assert_eq!(headers[CONTENT_TYPE], "text/css; charset=utf-8");
        assert_eq!(headers[CACHE_CONTROL], ASSET_CACHE_CONTROL);
        let etag = headers[ETAG].to_str().unwrap().to_string();
        let (code, _) = status(site.respond(
            &ask(
                "GET",
                "/css/app.css",
                &[("if-none-match", &format!("W/{etag}, \"x\""))],
            ),
            false,
            false,
        ))
        .unwrap();
        assert_eq!(code, 304);
        let (code, headers) =
            status(site.respond(&ask("GET", "/docs?x=1", &[]), false, false)).unwrap();
        assert_eq!(
            (code, &headers[LOCATION]),
            (301, &HeaderValue::from_static("./docs/?x=1"))
        );
        let (code, _) = status(site.respond(&ask("GET", "/docs/", &[]), false, false)).unwrap();
        assert_eq!(code, 200);
        for bad in ["/../index.html", "/css/%2e%2e/index.html", "/a%2fb"] {
            let (code, _) = status(site.respond(&ask("GET", bad, &[]), false, false)).unwrap();
            assert_eq!(code, 400, "{bad}");
            assert!(status(site.respond(&ask("GET", bad, &[]), false, true)).is_none());
        }
        let (code, _) =
            status(site.respond(&ask("GET", "/.git/config", &[]), false, false)).unwrap();
        assert_eq!(code, 404);
        let (code, headers) = status(site.respond(&ask("POST", "/", &[]), false, false)).unwrap();
        assert_eq!(
            (code, &headers[ALLOW]),
            (405, &HeaderValue::from_static("GET, HEAD"))
        );
        assert!(status(site.respond(&ask("POST", "/", &[]), false, true)).is_none());
    }

    #[test]
    fn single_page_apps_fall_back_to_the_index() {
        let site = site(&[("index.html", "app"), ("404.html", "gone")]);
        let spa = |uri: &str, accept: &str, has_code: bool| {
            status(site.respond(&ask("GET", uri, &[("accept", accept)]), true, has_code))
                .map(|(code, _)| code)
        };
        assert_eq!(spa("/users/7", "*/*", false), Some(200));
        assert_eq!(spa("/missing.js", "*/*", false), Some(404));
        assert_eq!(spa("/users/7", "*/*", true), None);
        assert_eq!(spa("/users/7", "text/html,*/*", true), Some(200));
        let (code, headers) =
            status(site.respond(&ask("GET", "/nope", &[]), false, false)).unwrap();
        assert_eq!(code, 404);
        assert_eq!(headers[CONTENT_TYPE], "text/html; charset=utf-8");
    }

    #[test]
    fn oversized_and_unsafe_bundles_are_refused() {
        let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
        writer
            .start_file("../evil", zip::write::SimpleFileOptions::default())
            .unwrap();
        writer.write_all(b"x").unwrap();
        let bundle = writer.finish().unwrap().into_inner();
        assert!(matches!(
            Site::from_bundle(&bundle, "h"),
            Err(StaticError::Corrupt(_))
        ));
        assert!(matches!(
            Site::from_bundle(b"not a zip", "h"),
            Err(StaticError::Corrupt(_))
        ));
    }
}
