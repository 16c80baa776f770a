//! Engine unit tests over a fake [`Remote`]: no SSH, milliseconds each.
