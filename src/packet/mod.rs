//! Packet parsing (placeholder; see the packet parser work).
