//! (being written)
pub mod ast;
pub mod lexer;
pub mod print;
