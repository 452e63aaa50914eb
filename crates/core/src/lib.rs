//! ssdit-core (to be written).
