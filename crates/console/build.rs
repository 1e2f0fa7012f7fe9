//! Rebuilds the crate when the console's built assets change (or appear): the embed
//! macro sees the files of `web/dist` only when it runs.

fn main() {
    println!("cargo:rerun-if-changed=web/dist");
}
