//! (being written)
pub mod data;
pub mod init;
pub mod synthetic;
pub mod weights;
