//! Configuration: `config/deploy.yml` (+ `<base>.<dest>.yml`), rendered as a template, parsed
//! into raw serde structs, merged and validated into the [`Config`] model that everything
//! downstream reads. Nothing downstream sees raw YAML.

pub mod secrets;
pub mod template;
pub mod node;
pub mod de;
