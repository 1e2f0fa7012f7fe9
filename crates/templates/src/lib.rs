//! Project templates for `gureum new`, embedded in the binary so scaffolding needs no
//! network: each directory under `templates/` is one template, copied with `{{name}}`
//! replaced by the function's name (in file contents and file names). Templates that build
//! on the Rust guest SDK also get a copy of `sdk/` as `vendor/gureum-sdk`, until the SDK is
//! published on crates.io.
//!
//! Every template answers `?name=Ada` with `Hello, Ada!`, and has a `[build]` section, a
//! README, a unit test and `#:schema ./gureum.schema.json` atop its manifest
//! (`tests/e2e/templates.rs` builds and deploys each with its real toolchain).

use std::path::{Path, PathBuf};

use include_dir::{Dir, DirEntry, include_dir};

static TEMPLATES: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/templates");
static SDK: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/../../sdk");
/// The WASI 0.2.10 WIT (world `function`: wasi:http/proxy plus the environment) the
/// componentize tools of python-wasm and js-wasm build against, kept once for both.
static WASI_HTTP_WIT: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/shared/wasi-http-wit");

/// Where a template that uses the Rust guest SDK finds it, relative to the project.
pub const SDK_VENDOR_DIR: &str = "vendor/gureum-sdk";

/// The placeholder replaced by the function's name.
const NAME_PLACEHOLDER: &str = "{{name}}";

/// One template `gureum new` can create.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Template {
    /// What users type: `gureum new rust-wasm hi`.
    pub id: &'static str,
    /// One line for `gureum new --list`.
    pub description: &'static str,
    /// The toolchain the build needs, for the list and for error messages.
    pub toolchain: &'static str,
    /// Whether the project gets the Rust guest SDK under [`SDK_VENDOR_DIR`].
    pub vendors_sdk: bool,
    /// Whether the project gets the WASI HTTP WIT files under `wit/`.
    pub wasi_wit: bool,
}

/// Every template, in the order `--list` shows them.
pub const ALL: &[Template] = &[
    Template {
        id: "rust-wasm",
        description: "Rust wasi:http component on the gureum SDK (key-value, documents, WebSockets)",
        toolchain: "cargo with the wasm32-wasip2 target (rustup target add wasm32-wasip2)",
        vendors_sdk: true,
        wasi_wit: false,
    },
    Template {
        id: "rust-lambda",
        description: "Rust AWS Lambda function with lambda_http (API Gateway HTTP API events)",
        toolchain: "cargo",
        vendors_sdk: false,
        wasi_wit: false,
    },
    Template {
        id: "python-lambda",
        description: "Python AWS Lambda function with awslambdaric (API Gateway HTTP API events)",
        toolchain: "python3 with pip",
        vendors_sdk: false,
        wasi_wit: false,
    },
    Template {
        id: "python-wasm",
        description: "Python wasi:http component built with componentize-py",
        toolchain: "componentize-py (pip install componentize-py)",
        vendors_sdk: false,
        wasi_wit: true,
    },
    Template {
        id: "js-wasm",
        description: "JavaScript wasi:http component built with jco / componentize-js",
        toolchain: "node and npm (the build installs jco into node_modules)",
        vendors_sdk: false,
        wasi_wit: true,
    },
];

/// Why a project could not be created.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    /// No template has that id.
    #[error("unknown template `{given}`; available: {}", available())]
    Unknown {
        /// What was asked for.
        given: String,
    },
    /// The name is not a valid function name.
    #[error(
        "invalid name `{0}`: a function name is 1 to 63 characters of a-z, 0-9 and '-', not starting or ending with '-'"
    )]
    InvalidName(String),
    /// A valid function name that cargo refuses as a package or binary name.
    #[error("`{name}` cannot name a Rust project: {reason}; choose another name, e.g. `fn-{name}`")]
    NotACargoName {
        /// The name given.
        name: String,
        /// Why cargo refuses it.
        reason: &'static str,
    },
    /// The destination exists and is not an empty directory.
    #[error(
        "{} already exists and is not empty; choose another name or --dir, or remove it",
        .0.display()
    )]
    NotEmpty(PathBuf),
    /// Writing a file failed.
    #[error("writing {}: {source}", .path.display())]
    Io {
        /// The file or directory being written.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

/// Why cargo would refuse `name` (already a valid function name) as a package name or, for
/// rust-wasm, a binary name.
fn cargo_refuses(name: &str) -> Option<&'static str> {
    const KEYWORDS: &[&str] = &[
        "as", "async", "await", "break", "const", "continue", "crate", "dyn", "else", "enum",
        "extern", "false", "fn", "for", "if", "impl", "in", "let", "loop", "match", "mod", "move",
        "mut", "pub", "ref", "return", "self", "static", "struct", "super", "trait", "true",
        "type", "unsafe", "use", "where", "while", "abstract", "become", "box", "do", "final",
        "gen", "macro", "override", "priv", "try", "typeof", "unsized", "virtual", "yield",
    ];
    const TARGET_DIRS: &[&str] = &["build", "deps", "examples", "incremental"];
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        Some("cargo package names cannot start with a digit")
    } else if KEYWORDS.contains(&name) {
        Some("it is a Rust keyword")
    } else if TARGET_DIRS.contains(&name) || name == "test" {
        Some("cargo reserves it for its own directories")
    } else {
        None
    }
}

fn available() -> String {
    ALL.iter().map(|t| t.id).collect::<Vec<_>>().join(", ")
}

/// The template with this id.
pub fn find(id: &str) -> Result<&'static Template, TemplateError> {
    ALL.iter()
        .find(|template| template.id == id)
        .ok_or_else(|| TemplateError::Unknown {
            given: id.to_string(),
        })
}

/// Creates the project for `template` named `name` in `dest` (created; it must not exist
/// or be empty) and returns the files written, relative to `dest`, sorted.
pub fn create(template: &Template, name: &str, dest: &Path) -> Result<Vec<PathBuf>, TemplateError> {
    if gureum_model::FunctionName::new(name).is_err() {
        return Err(TemplateError::InvalidName(name.to_string()));
    }
    if template.id.starts_with("rust-")
        && let Some(reason) = cargo_refuses(name)
    {
        return Err(TemplateError::NotACargoName {
            name: name.to_string(),
            reason,
        });
    }
    if let Ok(mut entries) = std::fs::read_dir(dest)
        && entries.next().is_some()
    {
        return Err(TemplateError::NotEmpty(dest.to_path_buf()));
    }
    let files = TEMPLATES
        .get_dir(template.id)
        .unwrap_or_else(|| panic!("template {} is listed but not embedded", template.id));
    let mut project = Copy {
        dest,
        name: Some(name),
        written: Vec::new(),
    };
    project.dir(files, Path::new(template.id), Path::new(""))?;
    if template.vendors_sdk {
        // The SDK is copied verbatim: its own sources must not be rewritten.
        project.name = None;
        project.dir(&SDK, Path::new(""), Path::new(SDK_VENDOR_DIR))?;
    }
    if template.wasi_wit {
        project.name = None;
        project.dir(&WASI_HTTP_WIT, Path::new(""), Path::new("wit"))?;
    }
    let mut written = project.written;
    written.sort();
    Ok(written)
}

/// Copies embedded directories into a project, recording what it wrote.
struct Copy<'a> {
    /// The project directory.
    dest: &'a Path,
    /// Replaces the placeholder when set.
    name: Option<&'a str>,
    /// Files written, relative to the project.
    written: Vec<PathBuf>,
}

impl Copy<'_> {
    /// Copies `dir` (whose embedded paths start with `prefix`) to `under` in the project.
    fn dir(&mut self, dir: &Dir<'_>, prefix: &Path, under: &Path) -> Result<(), TemplateError> {
        for entry in dir.entries() {
            let relative = entry.path().strip_prefix(prefix).unwrap_or(entry.path());
            let relative = under.join(match self.name {
                Some(name) => {
                    PathBuf::from(relative.to_string_lossy().replace(NAME_PLACEHOLDER, name))
                }
                None => relative.to_path_buf(),
            });
            match entry {
                DirEntry::Dir(sub) => self.dir(sub, prefix, under)?,
                DirEntry::File(file) => {
                    let target = self.dest.join(&relative);
                    if let Some(parent) = target.parent() {
                        std::fs::create_dir_all(parent).map_err(|source| TemplateError::Io {
                            path: parent.to_path_buf(),
                            source,
                        })?;
                    }
                    let contents = match (self.name, file.contents_utf8()) {
                        (Some(name), Some(text)) => {
                            text.replace(NAME_PLACEHOLDER, name).into_bytes()
                        }
                        _ => file.contents().to_vec(),
                    };
                    std::fs::write(&target, contents).map_err(|source| TemplateError::Io {
                        path: target.clone(),
                        source,
                    })?;
                    self.written.push(relative);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_template_is_embedded_with_a_manifest_readme_and_schema_line() {
        for template in ALL {
            let dir = TEMPLATES
                .get_dir(template.id)
                .unwrap_or_else(|| panic!("{} is not embedded", template.id));
            let manifest = dir
                .get_file(Path::new(template.id).join("gureum.toml"))
                .unwrap_or_else(|| panic!("{} has no gureum.toml", template.id));
            let text = manifest.contents_utf8().unwrap();
            assert!(
                text.starts_with("#:schema ./gureum.schema.json"),
                "{}: the manifest must point editors at the schema",
                template.id
            );
            assert!(text.contains("name = \"{{name}}\""), "{}", template.id);
            assert!(text.contains("[build]"), "{}: no [build]", template.id);
            assert!(
                dir.get_file(Path::new(template.id).join("README.md"))
                    .is_some(),
                "{} has no README.md",
                template.id
            );
        }
    }

    #[test]
    fn create_replaces_the_name_and_vendors_the_sdk() {
        let tmp = tempfile::tempdir().unwrap();
        let dest = tmp.path().join("my-fn");
        let written = create(find("rust-wasm").unwrap(), "my-fn", &dest).unwrap();
        assert!(written.contains(&PathBuf::from("gureum.toml")));
        assert!(written.contains(&PathBuf::from("vendor/gureum-sdk/Cargo.toml")));
        let manifest = std::fs::read_to_string(dest.join("gureum.toml")).unwrap();
        assert!(manifest.contains("name = \"my-fn\""));
        assert!(!manifest.contains("{{name}}"));
        assert!(dest.join("vendor/gureum-sdk/src/lib.rs").is_file());
        for file in &written {
            assert!(
                dest.join(file).is_file(),
                "{} listed but missing",
                file.display()
            );
        }
    }

    #[test]
    fn bad_input_names_the_problem() {
        let tmp = tempfile::tempdir().unwrap();
        let err = find("go-wasm").unwrap_err().to_string();
        assert!(
            err.contains("unknown template `go-wasm`") && err.contains("rust-wasm"),
            "{err}"
        );
        let err = create(
            find("python-lambda").unwrap(),
            "Bad_Name",
            &tmp.path().join("x"),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("invalid name `Bad_Name`"), "{err}");
        for name in ["1st-api", "fn", "build"] {
            let err = create(find("rust-wasm").unwrap(), name, &tmp.path().join(name))
                .unwrap_err()
                .to_string();
            assert!(err.contains("cannot name a Rust project"), "{err}");
        }
        create(
            find("python-lambda").unwrap(),
            "1st-api",
            &tmp.path().join("py"),
        )
        .unwrap();
        std::fs::write(tmp.path().join("file"), "x").unwrap();
        let err = create(find("python-lambda").unwrap(), "ok", tmp.path())
            .unwrap_err()
            .to_string();
        assert!(err.contains("already exists and is not empty"), "{err}");
    }
}
