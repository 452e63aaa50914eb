//! Helpers shared by the integration tests.

pub mod torch_pt;
