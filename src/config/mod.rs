//! Configuration: `config/deploy.yml` (+ `<base>.<dest>.yml`), rendered as a template, parsed
//! into raw serde structs, merged and validated into the [`Config`] model that everything
//! downstream reads. Nothing downstream sees raw YAML.
//!
//! - [`load`](mod@load): reading the files in order and running the steps below;
//!   [`load_options`]: what it needs from the outside world; [`sources`]: the files read, for
//!   error positions.
//! - [`template`]: tera + the ERB subset, before YAML parsing.
//! - [`node`]: YAML → a tree with locations; deep merge of the destination overlay.
//! - [`de`]: serde over that tree, keeping key paths and locations in errors.
//! - [`raw`]: the raw structs, Kamal's schema key for key.
//! - [`validate`]: defaults and semantic checks → [`model`].
//! - [`secrets`]: `.kamal/secrets*`, read only when a command needs them.

pub mod de;
pub mod error;
pub mod load;
pub mod load_options;
pub mod model;
pub mod node;
pub mod raw;
pub mod secrets;
pub mod sources;
pub mod template;
pub mod validate;

pub use error::ConfigError;
pub use load::{load, load_with_policy};
pub use load_options::LoadOptions;
pub use model::Config;
pub use validate::COMMAND_NAMES;
