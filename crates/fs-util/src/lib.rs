#![doc = include_str!("../README.md")]

mod error;
pub mod key_file;
mod log;
mod write;

pub use error::{Error, Result};
pub use log::JsonlLog;
pub use write::{create_private, open_append_private, replace, replace_private, sync_dir};
