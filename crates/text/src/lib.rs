//! ssdit-text (to be written).
