//! The pf backend (being written).
