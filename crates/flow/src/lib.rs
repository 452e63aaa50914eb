//! ssdit-flow (to be written).
