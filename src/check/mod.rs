//! (being written)
pub mod model;
pub mod registry;
pub mod resolve;
pub mod shapes;
pub use model::*;
