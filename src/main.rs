//! The `dray` binary: parse the command line, run it, map the result to an exit code.

fn main() {
    // A child started to render a template within budgets (src/config/template/isolate.rs).
    if let Some(code) = dray::config::template::enter_render_child() {
        std::process::exit(code);
    }
    init_logging();
    tracing::debug!(version = env!("CARGO_PKG_VERSION"), "dray starting");
    let code = dray::commands::main();
    std::process::exit(code);
}

/// Debug logging, off unless `DRAY_LOG` is set: `DRAY_LOG=debug` (or any tracing `EnvFilter`
/// directives, e.g. `DRAY_LOG=dray::remote=debug`) writes log lines to stderr, never to stdout,
/// so `--output json` and other output stay as they are. A bad `DRAY_LOG` is a warning.
fn init_logging() {
    let Some(directives) = std::env::var_os("DRAY_LOG") else {
        return;
    };
    let directives = directives.to_string_lossy();
    if directives.trim().is_empty() {
        return;
    }
    let filter = match tracing_subscriber::EnvFilter::try_new(&*directives) {
        Ok(filter) => filter,
        Err(e) => {
            eprintln!("warning: DRAY_LOG={directives}: {e}; logging nothing");
            return;
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
