//! The Ruby of ERB tags, parsed: [`Expr`]essions and [`Stmt`]atements (blocks appear as
//! their markers: `if`, `elsif`, `else`, `each`, `end`), the methods values have, and
//! [`ParseError`] for Ruby outside the subset.

use super::erb_lex::LexError;

/// An expression at its offset in the tag's code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Expr {
    pub(super) kind: ExprKind,
    pub(super) at: usize,
}

/// A piece of an interpolating literal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Part {
    Lit(String),
    Expr(Expr),
}

/// What an expression is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum ExprKind {
    Nil,
    Bool(bool),
    Int(i64),
    /// A string literal, interpolations included.
    Str(Vec<Part>),
    /// `` `cmd` ``, `%x(cmd)`.
    Shell(Vec<Part>),
    /// `[a, b]`, `%w[a b]`.
    Array(Vec<Expr>),
    /// `&:name`, only as a method argument.
    Symbol(String),
    /// A local variable.
    Var(String),
    /// `ENV["X"]`.
    Env(Box<Expr>),
    /// `ENV.fetch("X")`, with the default of its second argument or its block.
    EnvFetch(Box<Expr>, Option<Box<Expr>>),
    /// `ENV.key?("X")` (also `has_key?`, `include?`, `member?`).
    EnvKey(Box<Expr>),
    /// `Kamal::Utils.docker_arch`.
    DockerArch,
    /// `File.read("x")`.
    FileRead(Box<Expr>),
    /// `File.exist?("x")`.
    FileExist(Box<Expr>),
    /// `recv.name(args)`; `safe` for `&.`.
    Call {
        recv: Box<Expr>,
        name: String,
        args: Vec<Expr>,
        safe: bool,
    },
    /// `recv[index]`.
    Index(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    /// `a == b` (`negated`: `!=`).
    Eq {
        left: Box<Expr>,
        right: Box<Expr>,
        negated: bool,
    },
    /// `a < b`, `a <= b`, `a > b`, `a >= b` (`op`).
    Compare {
        left: Box<Expr>,
        right: Box<Expr>,
        op: &'static str,
    },
    /// `a + b`.
    Add(Box<Expr>, Box<Expr>),
    Ternary(Box<Expr>, Box<Expr>, Box<Expr>),
}

/// A statement of a code tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Stmt {
    /// An expression evaluated for nothing (or a no-op such as `require "dotenv"`).
    Expr(Expr),
    /// `stmt if cond`, `stmt unless cond` (`negated`).
    Guarded {
        stmt: Box<Stmt>,
        cond: Expr,
        negated: bool,
    },
    /// `name = value`; `or_assign` for `||=`.
    Assign {
        name: String,
        value: Expr,
        or_assign: bool,
        at: usize,
    },
    /// `Dotenv.load(files…)` (`.env` without files), `Dotenv.load!` (`must`: a missing file
    /// is an error), `Dotenv.overload` (`overload`: set values win), `require "dotenv/load"`.
    DotenvLoad {
        files: Vec<Expr>,
        must: bool,
        overload: bool,
        at: usize,
    },
    /// `if cond` (`negated`: `unless cond`).
    If {
        cond: Expr,
        negated: bool,
        at: usize,
    },
    Elsif {
        cond: Expr,
        at: usize,
    },
    Else {
        at: usize,
    },
    /// `items.each do |x|`, `items.each_with_index do |x, i|`, `for x in items`.
    Each {
        items: Expr,
        var: String,
        index: Option<String>,
        at: usize,
    },
    End {
        at: usize,
    },
}

/// Ruby outside the subset, at an offset of the tag's code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ParseError {
    pub(super) at: usize,
    pub(super) message: String,
}

impl From<LexError> for ParseError {
    fn from(e: LexError) -> Self {
        ParseError {
            at: e.at,
            message: e.message,
        }
    }
}

/// Methods that may be called on values, with how many arguments they take.
pub(super) const METHODS: &[(&str, usize, usize)] = &[
    ("to_s", 0, 0),
    ("to_i", 0, 0),
    ("to_str", 0, 0),
    ("strip", 0, 0),
    ("lstrip", 0, 0),
    ("rstrip", 0, 0),
    ("chomp", 0, 1),
    ("chop", 0, 0),
    ("upcase", 0, 0),
    ("downcase", 0, 0),
    ("capitalize", 0, 0),
    ("squish", 0, 0),
    ("present?", 0, 0),
    ("blank?", 0, 0),
    ("presence", 0, 0),
    ("nil?", 0, 0),
    ("empty?", 0, 0),
    ("any?", 0, 0),
    ("delete_prefix", 1, 1),
    ("delete_suffix", 1, 1),
    ("start_with?", 1, 8),
    ("end_with?", 1, 8),
    ("include?", 1, 1),
    ("split", 0, 2),
    ("lines", 0, 0),
    ("join", 0, 1),
    ("first", 0, 0),
    ("last", 0, 0),
    ("length", 0, 0),
    ("size", 0, 0),
    ("count", 0, 0),
    ("reverse", 0, 0),
    ("uniq", 0, 0),
    ("compact", 0, 0),
    ("sort", 0, 0),
    ("map", 1, 1),
    ("reject", 1, 1),
    ("select", 1, 1),
    ("to_a", 0, 0),
    ("tr", 2, 2),
    ("sub", 2, 2),
    ("gsub", 2, 2),
    ("freeze", 0, 0),
    ("dup", 0, 0),
    ("itself", 0, 0),
];

/// Whether `name` is a method the evaluator knows (`map(&:name)` takes one without arguments).
pub(super) fn is_method(name: &str) -> bool {
    METHODS.iter().any(|(m, _, _)| *m == name)
}

pub(super) const KEYWORDS: &[&str] = &[
    "if", "elsif", "else", "end", "unless", "do", "then", "for", "in", "while", "until", "not",
    "and", "or", "def", "class", "module", "case", "when", "begin", "rescue", "return", "yield",
];
