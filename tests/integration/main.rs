//! The one integration test binary. Each module pins one area's behaviour.

mod release;
mod support;
