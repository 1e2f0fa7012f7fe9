//! Rebuilds the crate when the console's built assets change (or appear): the embed
//! macro sees the files of `web/dist` only when it runs.

fn main() {
    // Cargo treats a missing watched path as always changed, which would rebuild this
    // crate and its dependents on every run on a machine without Node.js; an empty
    // directory (ignored by git, replaced by `vite build`) is watched instead.
    let _ = std::fs::create_dir_all("web/dist");
    println!("cargo:rerun-if-changed=web/dist");
}
