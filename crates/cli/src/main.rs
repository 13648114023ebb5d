//! The `suanli` command.
fn main() {}
