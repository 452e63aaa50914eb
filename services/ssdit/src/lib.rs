//! The `ssdit` command's library: the parts of the command that tests drive
//! directly. [`run`] is `ssdit run`, the whole pipeline in one process.

pub mod run;
