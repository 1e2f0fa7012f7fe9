//! `not-handler`: a valid WASI 0.2 component that exports `wasi:cli/run` but
//! not `wasi:http/incoming-handler`. Deploy must reject it with a clear error.

fn main() {
    println!("hi");
}
