//! The `orb` command line.
fn main() {}
