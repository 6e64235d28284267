//! Demo data: plausible mail, events, opens, clicks and list entries for trying the
//! dashboard and for measuring it (`mailtrail generate`, `serve --demo`). Not part of the
//! product's own paths: nothing but the command line and the tests call it.

pub mod catalogue;
mod content;
mod draw;
pub mod generate;
