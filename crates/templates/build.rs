//! `include_dir!` re-embeds a template when one of its files changes but cannot see new
//! files; these lines make cargo rebuild the crate when anything under the embedded
//! directories changes.

fn main() {
    for path in [
        "templates",
        "shared",
        "../../sdk/src",
        "../../sdk/wit",
        "../../sdk/Cargo.toml",
    ] {
        println!("cargo:rerun-if-changed={path}");
    }
}
