//! Code packages: a lambda function's code travels as one zip file (what Lambda users
//! already build), is checked at deploy, and is unpacked once per version into a
//! read-only directory that becomes the process's `LAMBDA_TASK_ROOT`. [`pack`] makes the
//! zip for the CLI, [`check`] runs at deploy, and [`unpack`] writes `DATA_DIR/code/<sha256>`
//! once per version; a package holds at most [`MAX_UNPACKED_BYTES`] (250 MiB) in at most
//! [`MAX_ENTRIES`] (50,000) entries.

use std::io::{Cursor, Read, Write};
use std::path::{Path, PathBuf};

use zip::write::SimpleFileOptions;

/// Largest unpacked code package (Lambda's limit for unzipped code).
pub const MAX_UNPACKED_BYTES: u64 = 250 * 1024 * 1024;
/// Most entries in one package; guards against archives of millions of empty files.
pub const MAX_ENTRIES: usize = 50_000;

/// Why a code package cannot be made, accepted or unpacked.
#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    /// Reading the user's files failed.
    #[error("reading {path}: {message}")]
    Read {
        /// The file or directory.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// The bytes are not a zip archive.
    #[error(
        "the lambda artifact is not a zip archive ({0}); point `artifact` at the code directory, the bootstrap file or a .zip of them"
    )]
    NotZip(String),
    /// An entry would land outside the code directory.
    #[error("the code package has an unsafe entry {0:?} (absolute or with `..`); rebuild the zip")]
    UnsafeEntry(String),
    /// Too big once unpacked.
    #[error(
        "the code package unpacks to more than {} MiB or {MAX_ENTRIES} files; leave build outputs and caches out of the artifact",
        MAX_UNPACKED_BYTES / 1024 / 1024
    )]
    TooLarge,
    /// The command's program is not in the package.
    #[error(
        "command {program:?} is not in the artifact (it holds: {listing}); put the executable at the root of the code, or set `command` in gureum.toml, e.g. [\"python3\", \"-m\", \"awslambdaric\", \"app.handler\"]"
    )]
    MissingProgram {
        /// The program named by `command[0]`.
        program: String,
        /// A few top-level names of the package.
        listing: String,
    },
    /// The command's program has no execute permission.
    #[error(
        "command {0:?} is in the artifact but not executable; run `chmod +x` on it and deploy again"
    )]
    NotExecutable(String),
    /// Writing the unpacked directory failed.
    #[error("unpacking the code to {path}: {message}")]
    Unpack {
        /// The directory.
        path: String,
        /// What went wrong.
        message: String,
    },
}

fn read_error(path: &Path, error: impl std::fmt::Display) -> PackageError {
    PackageError::Read {
        path: path.display().to_string(),
        message: error.to_string(),
    }
}

/// Packs the artifact a manifest names: a directory becomes a zip of its tree, a zip
/// file is taken as it is, any other file becomes a zip holding just that file.
/// Timestamps are fixed so the same code gives the same bytes (and the same hash).
pub fn pack(path: &Path) -> Result<Vec<u8>, PackageError> {
    let meta = std::fs::metadata(path).map_err(|error| read_error(path, error))?;
    if meta.is_file() {
        let bytes = std::fs::read(path).map_err(|error| read_error(path, error))?;
        if bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(b"PK\x05\x06") {
            return Ok(bytes);
        }
        let name = path
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_else(|| "bootstrap".into());
        let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
        add_file(&mut writer, &name, &bytes, mode_of(&meta), path)?;
        return finish(writer, path);
    }
    let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let mut total = 0u64;
    let mut entries = 0usize;
    add_dir(&mut writer, path, path, &mut total, &mut entries)?;
    finish(writer, path)
}

fn finish(writer: zip::ZipWriter<Cursor<Vec<u8>>>, path: &Path) -> Result<Vec<u8>, PackageError> {
    writer
        .finish()
        .map(Cursor::into_inner)
        .map_err(|error| read_error(path, error))
}

fn options(mode: u32) -> SimpleFileOptions {
    SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .unix_permissions(mode & 0o777)
        .large_file(false)
}

fn add_file(
    writer: &mut zip::ZipWriter<Cursor<Vec<u8>>>,
    name: &str,
    bytes: &[u8],
    mode: u32,
    path: &Path,
) -> Result<(), PackageError> {
    writer
        .start_file(name, options(mode))
        .and_then(|()| writer.write_all(bytes).map_err(Into::into))
        .map_err(|error| read_error(path, error))
}

fn add_dir(
    writer: &mut zip::ZipWriter<Cursor<Vec<u8>>>,
    root: &Path,
    dir: &Path,
    total: &mut u64,
    entries: &mut usize,
) -> Result<(), PackageError> {
    let mut children: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|error| read_error(dir, error))?
        .map(|entry| entry.map(|entry| entry.path()))
        .collect::<Result<_, _>>()
        .map_err(|error| read_error(dir, error))?;
    children.sort();
    for child in children {
        *entries += 1;
        if *entries > MAX_ENTRIES {
            return Err(PackageError::TooLarge);
        }
        let relative = child
            .strip_prefix(root)
            .unwrap_or(&child)
            .components()
            .map(|part| part.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/");
        // Follows symlinks: the package must stand on its own once unpacked.
        let meta = std::fs::metadata(&child).map_err(|error| read_error(&child, error))?;
        if meta.is_dir() {
            writer
                .add_directory(relative.as_str(), options(mode_of(&meta)))
                .map_err(|error| read_error(&child, error))?;
            add_dir(writer, root, &child, total, entries)?;
        } else {
            *total += meta.len();
            if *total > MAX_UNPACKED_BYTES {
                return Err(PackageError::TooLarge);
            }
            let bytes = std::fs::read(&child).map_err(|error| read_error(&child, error))?;
            add_file(writer, &relative, &bytes, mode_of(&meta), &child)?;
        }
    }
    Ok(())
}

#[cfg(unix)]
fn mode_of(meta: &std::fs::Metadata) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode()
}

#[cfg(not(unix))]
fn mode_of(meta: &std::fs::Metadata) -> u32 {
    if meta.is_dir() { 0o755 } else { 0o644 }
}

/// Checks a package before it is stored: a readable zip, safe entry names, within the
/// size limits, and (for a `./program` command) holding that program, executable.
pub fn check(bytes: &[u8], command: &[String]) -> Result<(), PackageError> {
    let mut archive = open(bytes)?;
    let mut total = 0u64;
    let mut names = Vec::new();
    for index in 0..archive.len() {
        let file = archive
            .by_index(index)
            .map_err(|error| PackageError::NotZip(error.to_string()))?;
        let name = file.enclosed_name().ok_or_else(|| {
            PackageError::UnsafeEntry(String::from_utf8_lossy(file.name_raw()).into_owned())
        })?;
        total += file.size();
        if total > MAX_UNPACKED_BYTES {
            return Err(PackageError::TooLarge);
        }
        names.push((name, file.is_dir(), file.unix_mode()));
    }
    let Some(program) = command.first() else {
        return Ok(());
    };
    // Only a path inside the code is checked; `python3` is looked up on PATH at start.
    if !program.contains('/') || program.starts_with('/') {
        return Ok(());
    }
    let wanted = Path::new(program.trim_start_matches("./"));
    match names
        .iter()
        .find(|(name, is_dir, _)| name == wanted && !is_dir)
    {
        Some((_, _, Some(mode))) if mode & 0o111 == 0 => {
            Err(PackageError::NotExecutable(program.clone()))
        }
        Some(_) => Ok(()),
        None => {
            let mut top: Vec<String> = names
                .iter()
                .filter_map(|(name, _, _)| name.components().next())
                .map(|part| part.as_os_str().to_string_lossy().into_owned())
                .collect();
            top.dedup();
            let listing = if top.is_empty() {
                "nothing".to_string()
            } else if top.len() > 8 {
                format!("{}, …", top[..8].join(", "))
            } else {
                top.join(", ")
            };
            Err(PackageError::MissingProgram {
                program: program.clone(),
                listing,
            })
        }
    }
}

fn open(bytes: &[u8]) -> Result<zip::ZipArchive<Cursor<&[u8]>>, PackageError> {
    let archive = zip::ZipArchive::new(Cursor::new(bytes))
        .map_err(|error| PackageError::NotZip(error.to_string()))?;
    if archive.len() > MAX_ENTRIES {
        return Err(PackageError::TooLarge);
    }
    Ok(archive)
}

/// Unpacks a package into `dest` (which must not exist) atomically: into a sibling
/// temporary directory first, then renamed. Files and directories end up read-only.
pub fn unpack(bytes: &[u8], dest: &Path) -> Result<(), PackageError> {
    let unpack_error = |error: &dyn std::fmt::Display| PackageError::Unpack {
        path: dest.display().to_string(),
        message: error.to_string(),
    };
    let parent = dest.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|error| unpack_error(&error))?;
    let staging = tempfile::Builder::new()
        .prefix(".unpack-")
        .tempdir_in(parent)
        .map_err(|error| unpack_error(&error))?;
    let mut archive = open(bytes)?;
    let mut total = 0u64;
    let mut dirs = vec![staging.path().to_path_buf()];
    for index in 0..archive.len() {
        let mut file = archive
            .by_index(index)
            .map_err(|error| PackageError::NotZip(error.to_string()))?;
        let name = file.enclosed_name().ok_or_else(|| {
            PackageError::UnsafeEntry(String::from_utf8_lossy(file.name_raw()).into_owned())
        })?;
        let target = staging.path().join(&name);
        if file.is_dir() {
            std::fs::create_dir_all(&target).map_err(|error| unpack_error(&error))?;
            dirs.push(target);
            continue;
        }
        if let Some(dir) = target.parent() {
            std::fs::create_dir_all(dir).map_err(|error| unpack_error(&error))?;
            dirs.push(dir.to_path_buf());
        }
        let mut out = std::fs::File::create(&target).map_err(|error| unpack_error(&error))?;
        // The declared size may lie; never write more than the limit allows.
        let budget = MAX_UNPACKED_BYTES - total;
        let written = std::io::copy(&mut (&mut file).take(budget + 1), &mut out)
            .map_err(|error| unpack_error(&error))?;
        total += written;
        if total > MAX_UNPACKED_BYTES {
            return Err(PackageError::TooLarge);
        }
        let mode = file.unix_mode().unwrap_or(0o644);
        set_mode(&target, (mode & 0o555) | 0o444).map_err(|error| unpack_error(&error))?;
    }
    dirs.sort();
    dirs.dedup();
    // Deepest first, so no directory loses its write bit before its children exist.
    for dir in dirs.iter().rev() {
        set_mode(dir, 0o555).map_err(|error| unpack_error(&error))?;
    }
    let staged = staging.keep();
    if let Err(error) = std::fs::rename(&staged, dest) {
        // Another task unpacked the same package first: theirs is as good as ours.
        let _ = remove_tree(&staged);
        if !dest.is_dir() {
            return Err(unpack_error(&error));
        }
    }
    Ok(())
}

/// Removes a tree made read-only by [`unpack`].
pub fn remove_tree(path: &Path) -> std::io::Result<()> {
    fn writable(path: &Path) -> std::io::Result<()> {
        for entry in std::fs::read_dir(path)? {
            let entry = entry?;
            if entry.file_type()?.is_dir() {
                set_mode(&entry.path(), 0o755)?;
                writable(&entry.path())?;
            }
        }
        Ok(())
    }
    set_mode(path, 0o755)?;
    writable(path)?;
    std::fs::remove_dir_all(path)
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn set_mode(_path: &Path, _mode: u32) -> std::io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("bootstrap"), b"#!/bin/sh\necho hi\n").unwrap();
        set_mode(&dir.path().join("bootstrap"), 0o755).unwrap();
        std::fs::create_dir(dir.path().join("lib")).unwrap();
        std::fs::write(dir.path().join("lib/data.txt"), b"data").unwrap();
        dir
    }

    #[test]
    fn a_directory_round_trips_with_modes_and_read_only() {
        let src = tree();
        let bytes = pack(src.path()).unwrap();
        assert_eq!(bytes, pack(src.path()).unwrap(), "packing is deterministic");
        check(&bytes, &["./bootstrap".into()]).unwrap();
        let out = tempfile::tempdir().unwrap();
        let dest = out.path().join("code");
        unpack(&bytes, &dest).unwrap();
        assert_eq!(std::fs::read(dest.join("lib/data.txt")).unwrap(), b"data");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dest.join("bootstrap"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o555);
        let dir_mode = std::fs::metadata(dest.join("lib"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(dir_mode & 0o777, 0o555);
        remove_tree(&dest).unwrap();
        assert!(!dest.exists());
    }

    #[test]
    fn a_single_file_becomes_a_package_and_a_zip_is_kept() {
        let src = tree();
        let bytes = pack(&src.path().join("bootstrap")).unwrap();
        check(&bytes, &["./bootstrap".into()]).unwrap();
        let zip_path = src.path().join("code.zip");
        std::fs::write(&zip_path, &bytes).unwrap();
        assert_eq!(pack(&zip_path).unwrap(), bytes);
    }

    #[test]
    fn check_names_a_missing_or_non_executable_program() {
        let src = tree();
        let bytes = pack(src.path()).unwrap();
        let missing = check(&bytes, &["./server".into()]).unwrap_err().to_string();
        assert!(
            missing.contains("\"./server\" is not in the artifact"),
            "{missing}"
        );
        assert!(missing.contains("bootstrap, lib"), "{missing}");
        let not_exec = check(&bytes, &["lib/data.txt".into()]).unwrap_err();
        assert!(matches!(not_exec, PackageError::NotExecutable(_)));
        check(&bytes, &["python3".into(), "-m".into(), "x".into()]).unwrap();
        assert!(matches!(check(b"nope", &[]), Err(PackageError::NotZip(_))));
    }

    #[test]
    fn entries_escaping_the_directory_are_refused() {
        let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
        writer.start_file("../evil", options(0o644)).unwrap();
        writer.write_all(b"x").unwrap();
        let bytes = writer.finish().unwrap().into_inner();
        assert!(matches!(
            check(&bytes, &[]),
            Err(PackageError::UnsafeEntry(_))
        ));
        let out = tempfile::tempdir().unwrap();
        assert!(unpack(&bytes, &out.path().join("code")).is_err());
        assert!(!out.path().join("evil").exists());
    }
}
