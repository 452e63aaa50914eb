//! ssdit-model (to be written).
