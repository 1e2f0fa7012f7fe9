//! What the in-process platform tests share: the wasm `testbed` fixture.

use std::path::PathBuf;

/// The wasm testbed component (`cargo xtask build-fixtures` builds it).
pub fn testbed() -> Vec<u8> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let path = target.join("fixtures/testbed.wasm");
    std::fs::read(&path).unwrap_or_else(|error| {
        panic!(
            "{}: {error}; run `cargo xtask build-fixtures` first",
            path.display()
        )
    })
}
