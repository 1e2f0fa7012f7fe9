//! The `gureum` binary: parses the command line and hands over to one module per
//! subcommand. No business logic lives here.

mod commands;

fn main() -> std::process::ExitCode {
    // Inside a process function's sandbox this binary is only the last step before the
    // function's command (gureum_sandbox::exec_main): nothing else of it runs there.
    let mut args = std::env::args_os().skip(1);
    if args
        .next()
        .is_some_and(|first| first == gureum_sandbox::EXEC_ARG)
    {
        gureum_sandbox::exec_main(&args.collect::<Vec<_>>());
    }
    let cli = match commands::parse() {
        Ok(cli) => cli,
        Err(error) => {
            eprintln!("error: {error:#}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: starting the async runtime: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(commands::run(cli));
    // A blocking stdin reader (see `up --exit-on-stdin-close`) never returns on its own;
    // everything that matters has been flushed by now.
    runtime.shutdown_timeout(std::time::Duration::from_millis(200));
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
