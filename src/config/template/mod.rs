//! Templates in configuration files: tera, plus the ERB subset real Kamal configs use.
//!
//! [`render`] turns the text of one configuration file into plain YAML text, before any YAML
//! parsing. Two syntaxes are accepted in the same file:
//!
//! - **tera**: `{{ … }}`, `{% … %}`, `{# … #}`, with the functions `env(name="X", default="d")`
//!   (also available as `get_env`, reading the context's environment, not the process's) and
//!   `cmd(command="…")` (runs `sh -c` in the context's directory, output with trailing newlines
//!   removed).
//! - **ERB** (Kamal's `ERB.new(text, trim_mode: "-")`), evaluated by dray's own interpreter
//!   over nil, booleans, integers, strings and arrays: `ENV[…]`, `ENV.fetch` (unset without a
//!   default is an error), literals with `#{…}` interpolation, `==`, `!=`, `&&`, `||`, `!`,
//!   `? :`, `+`, string and array methods (`.strip`, `.split`, `.present?`, `.delete_prefix`, …),
//!   local variables, `if`/`elsif`/`else`/`unless` and `each`/`for` blocks across tags,
//!   `File.read`, `Dotenv.load`, backticks and `%x()` (output kept as is, trailing newline
//!   included, as in Ruby), `Kamal::Utils.docker_arch` (asks `docker info`), `<%# comments %>`,
//!   `<%%`, and the trim marks `-%>` and `<%-`. docs/erb.md lists the whole subset. Any other
//!   Ruby is an error at the tag's line with the tera form to use in the hint.
//!
//! # Order of evaluation
//!
//! One scan of the original text splits it into plain text, ERB tags and tera tags (ERB is not
//! recognised inside a tera tag or `{% raw %}` block, and `{{` inside an ERB tag is not tera).
//! The ERB tags are compiled into one program (`erb.rs`) and run, in file order, with the
//! file's local variables. When the file has no tera tag, the output is what the program wrote
//! and tera never runs. When it has tera tags (and then no ERB blocks, which would make text
//! conditional), each ERB tag is replaced by a call to an internal tera function that returns
//! the tag's value, and the whole file is rendered by tera once. Either way, the value of an ERB
//! tag is never read again as a template (a value containing `{{` or `<%` stays as it is), and
//! tera output is never read as ERB. One consequence: ERB tags inside a tera `{% if %}` branch
//! that is not taken are still evaluated.
//!
//! # Commands
//!
//! Backticks, `%x()` and `cmd()` run `/bin/sh -c <command>` in [`TemplateContext::cwd`] with
//! exactly [`TemplateContext::env`] as the environment and no stdin. Unlike Ruby's backticks, a
//! command that exits non-zero is an error (with its exit status and the end of its stderr):
//! a silently empty registry password or version is worse than a clear stop. Append `|| true`
//! to a command whose failure is expected. [`render_with_policy`] with [`CommandPolicy::Deny`]
//! renders without ever starting a process (property tests, offline inspection).
//! `Kamal::Utils.docker_arch` starts `docker info` itself (no shell), and is the architecture
//! of this machine when Docker cannot answer or commands are denied; `Dotenv.load` runs the
//! `$(…)` of the files it reads under the same policy.
//!
//! Files without any `{{`, `{%`, `{#` or `<%` are returned unchanged without further work.
//!
//! # Files
//!
//! - `scan.rs`: the one scan into text, ERB tags and tera tags;
//! - ERB: `erb_lex.rs` lexes the Ruby of a tag, `erb_parser.rs` parses it (statements in
//!   `erb_stmt.rs`, expressions in `erb_expr.rs`) into `erb_ast.rs`; `erb_program.rs` compiles a
//!   file's tags into one program (blocks matched across tags), `erb.rs` runs it and
//!   `erb_eval.rs` evaluates expressions over `erb_value.rs`'s values and `erb_methods.rs`;
//! - `tera_render.rs`: rendering with tera, within `tera_limits.rs`, with errors mapped back to
//!   the file by `tera_error.rs`;
//! - `shell.rs`: running commands; `context.rs`: [`TemplateContext`] and [`CommandPolicy`];
//!   `error.rs`: [`TemplateError`];
//! - tests beside them: `erb_tests.rs`, `erb_lang_tests.rs`, `tera_tests.rs` and, for the whole, `render_tests.rs`.

pub(crate) mod context;
mod erb;
mod erb_ast;
mod erb_eval;
mod erb_expr;
mod erb_lex;
mod erb_methods;
mod erb_parser;
mod erb_program;
mod erb_stmt;
mod erb_value;
mod error;
mod isolate;
mod scan;
pub(crate) mod shell;
mod tera_error;
mod tera_limits;
mod tera_render;

#[cfg(test)]
mod erb_lang_tests;
#[cfg(test)]
mod erb_tests;
#[cfg(test)]
mod render_tests;
#[cfg(test)]
mod tera_tests;
#[cfg(test)]
mod test_support;

pub use context::{CommandPolicy, TemplateContext, FAKE_OUTPUT};
pub(crate) use error::lowercase_first;
pub use error::TemplateError;
pub use isolate::{
    enter as enter_render_child, reuse_children as reuse_render_children,
    take_child_stats as take_render_child_stats, use_child_exe as use_render_child_exe,
    ChildStats as RenderChildStats,
};

use scan::{scan, Segment};
use tera_render::render_tera;

/// Render `source` (the text of one configuration file) into plain YAML text.
pub fn render(source: &str, ctx: &TemplateContext) -> Result<String, TemplateError> {
    render_with_policy(source, ctx, CommandPolicy::Run)
}

/// [`render`], with the choice of whether commands (`cmd()`, backticks, `%x()`) may run.
pub fn render_with_policy(
    source: &str,
    ctx: &TemplateContext,
    policy: CommandPolicy,
) -> Result<String, TemplateError> {
    render_file(source, &mut ctx.clone(), policy)
}

/// [`render_with_policy`], and `ctx.env` gets the variables the file's `Dotenv.load` loaded
/// (as Ruby's `ENV` does for the files read after it). A file with tera tags is rendered in a
/// render child, whose loads stay in that file.
pub fn render_file(
    source: &str,
    ctx: &mut TemplateContext,
    policy: CommandPolicy,
) -> Result<String, TemplateError> {
    if !has_template_syntax(source) {
        return Ok(source.to_string());
    }
    if let Some(exe) = isolate::child_exe() {
        let segments = scan(source)?;
        if segments.iter().any(|s| matches!(s, Segment::Tera { .. })) {
            let offset = tera_error::first_tera_offset(&segments);
            return isolate::render_in_child(exe, source, ctx, policy, offset);
        }
    }
    render_in_process(source, ctx, policy, tera_limits::TERA_STACK)
}

/// [`render_file`] in this process, tera on a thread with `stack` bytes of stack.
fn render_in_process(
    source: &str,
    ctx: &mut TemplateContext,
    policy: CommandPolicy,
    stack: usize,
) -> Result<String, TemplateError> {
    let segments = scan(source)?;
    let program = erb::compile(source, &segments)?;
    let has_tera = segments.iter().any(|s| matches!(s, Segment::Tera { .. }));
    if has_tera {
        if let Some(offset) = program.first_block(&segments) {
            return Err(TemplateError::at(
                source,
                offset,
                "ERB blocks (if, unless, each) cannot be mixed with tera tags in one file",
            )
            .hint("write the file's conditions and loops in one syntax: ERB's <% if %>…<% end %> or tera's {% if %}…{% endif %}"));
        }
    }
    let pieces = erb::run(source, &segments, &program, ctx, policy)?;
    if !has_tera {
        return Ok(join_pieces(source, &segments, &pieces));
    }
    let values = pieces
        .into_iter()
        .filter_map(|p| match p {
            erb::Piece::Value(v) => Some(v),
            erb::Piece::Segment(_) => None,
        })
        .collect();
    render_tera(source, &segments, values, ctx, policy, stack)
}

/// The text a run of ERB wrote: its values and the file's plain text, in order.
fn join_pieces(source: &str, segments: &[Segment<'_>], pieces: &[erb::Piece]) -> String {
    let mut out = String::with_capacity(source.len());
    for piece in pieces {
        match piece {
            erb::Piece::Value(v) => out.push_str(v),
            erb::Piece::Segment(i) => {
                if let Some(Segment::Text { text, .. }) = segments.get(*i) {
                    out.push_str(text);
                }
            }
        }
    }
    out
}

/// Render `source` as ERB alone, as Kamal renders an accessory's `*.erb` file (`ERB.new(text)
/// .result` with the accessory's env in `ENV`): `{{`, `{%` and `{#` are plain text here.
pub fn render_erb(source: &str, ctx: &TemplateContext) -> Result<String, TemplateError> {
    let segments = scan::scan_with(source, false)?;
    let program = erb::compile(source, &segments)?;
    let mut ctx = ctx.clone();
    let pieces = erb::run(source, &segments, &program, &mut ctx, CommandPolicy::Run)?;
    Ok(join_pieces(source, &segments, &pieces))
}

fn has_template_syntax(source: &str) -> bool {
    source.as_bytes().windows(2).any(|w| {
        matches!(
            (w[0], w[1]),
            (b'{', b'{') | (b'{', b'%') | (b'{', b'#') | (b'<', b'%')
        )
    })
}
