//! ssdit-bus (to be written).
