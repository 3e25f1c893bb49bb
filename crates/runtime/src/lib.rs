//! Instance runtimes behind `strato_core::runtime::Runtime`.
//!
//! `qemu` runs every instance as a QEMU microVM (KVM where the host has
//! hardware virtualisation, TCG otherwise) and is what `strato serve` uses.
//! `simulated` keeps instances as records in memory; it is the test double for
//! the control plane and never the default.

pub mod accel;
pub mod qemu;
mod qmp;
pub mod simulated;
