//! The `dray` binary: parse the command line, run it, map the result to an exit code.

fn main() {
    let code = dray::commands::main();
    std::process::exit(code);
}
