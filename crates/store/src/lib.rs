//! ssdit-store (to be written).
