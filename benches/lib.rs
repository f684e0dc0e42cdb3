//! Criterion benchmarks of orb's hot paths live in this package's `[[bench]]` targets.
//!
//! The library itself is empty on purpose: benches need a package to belong to, and a
//! virtual workspace root cannot own them.
