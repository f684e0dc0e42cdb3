//! Integration tests of orb-reconcile: snapshot scenarios (one per behaviour), multi-step
//! scenarios through the `World` harness, and convergence properties.

// The harness helpers are not `#[test]` functions, so clippy's test allowances do not
// reach them.
#![allow(clippy::unwrap_used, reason = "test helpers: a panic is a failed test")]

#[path = "orb_reconcile/world.rs"]
mod world;

#[path = "orb_reconcile/scenarios.rs"]
mod scenarios;

#[path = "orb_reconcile/convergence.rs"]
mod convergence;
