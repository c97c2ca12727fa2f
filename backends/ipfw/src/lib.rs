//! The ipfw backend (being written).
