//! ssdit-proto (to be written).
