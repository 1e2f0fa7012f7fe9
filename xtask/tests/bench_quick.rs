//! The benchmark command works end to end: `cargo xtask bench --quick` starts gureum,
//! drives it with wrk and prints the table (a smoke run of a few seconds, not a
//! measurement). It needs the debug `gureum` and `hello-lambda-rust` binaries built.

use std::process::Command;

#[test]
fn a_quick_bench_run_prints_the_table() {
    let output = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["bench", "--quick", "--no-build"])
        .output()
        .expect("running xtask bench");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "bench failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("| warm c=16 | gureum |"), "{stdout}");
    assert!(
        stdout.contains("cold start after scale-to-zero"),
        "{stdout}"
    );
    // The Lambda scenarios (the debug `hello-lambda-rust` that build-fixtures leaves).
    assert!(
        stdout.contains("| lambda warm c=16 | gureum, lambda |"),
        "{stdout}"
    );
    // Sandboxed and unsandboxed, side by side.
    assert!(
        stdout.contains("| gureum, lambda, unsandboxed |"),
        "{stdout}"
    );
    for how in ["in its sandbox", "--unsandboxed-processes"] {
        assert!(
            stdout.contains(&format!("lambda cold start, {how}, after scale-to-zero")),
            "{stdout}"
        );
    }
}
