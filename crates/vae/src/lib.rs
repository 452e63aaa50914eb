//! ssdit-vae (to be written).
