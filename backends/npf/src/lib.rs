//! The npf backend (being written).
