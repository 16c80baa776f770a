//! `logging`: the root Docker log driver and options, the default of every role.

use super::context::{pairs, s};
use crate::config::model::Logging;
use crate::config::raw::RawLogging;

pub(super) fn validate_logging(raw: Option<&RawLogging>) -> Logging {
    match raw {
        Some(l) => Logging {
            driver: s(&l.driver),
            options: pairs(&l.options),
        },
        None => Logging::default(),
    }
}
