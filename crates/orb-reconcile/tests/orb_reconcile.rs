//! Integration tests of orb-reconcile: snapshot scenarios (one per behaviour), multi-step
//! scenarios through the `World` harness, and convergence properties.

#[path = "orb_reconcile/world.rs"]
mod world;

#[path = "orb_reconcile/scenarios.rs"]
mod scenarios;

#[path = "orb_reconcile/convergence.rs"]
mod convergence;
