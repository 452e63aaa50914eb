//! ssdit-data (to be written).
