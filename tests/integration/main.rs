//! The one integration test binary. Each module pins one area's behaviour.

mod fleet;
mod support;
