//! Faithful emulators of the services orb talks to, served over loopback HTTP for tests,
//! `orb demo` and benchmarks: Microsoft Graph and its identity platform ([`graph`]), the
//! TOPdesk REST API ([`topdesk`]), plus the shared
//! loopback-server plumbing ([`loopback`]).
//!
//! Never binds anything but `127.0.0.1`, never reaches the network, and never shares
//! code or types with the clients it stands in for: each emulator implements the
//! published schemas on its own, so a client mistake cannot hide behind a shared bug.

pub mod graph;
pub mod loopback;
pub mod topdesk;
