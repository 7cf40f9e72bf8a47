#![doc = include_str!("../README.md")]

pub mod accounts;
mod error;
pub mod fhir;
pub mod keystore;

pub use error::{Error, Result};

#[cfg(test)]
mod tests;
