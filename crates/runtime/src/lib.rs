//! Instance runtimes behind `strato_core::runtime::Runtime`.
//!
//! `simulated` keeps instances as records in memory and reports state changes
//! after a short delay. It is the test double for the control plane and is
//! never what Strato runs by default once a real runtime exists.

pub mod simulated;
