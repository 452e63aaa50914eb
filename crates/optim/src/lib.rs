//! ssdit-optim (to be written).
