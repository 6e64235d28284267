//! mailtrail: a self-hosted delivery-response dashboard for email senders.

rust_i18n::i18n!("locales", fallback = "en");

pub mod app;
pub mod classify;
pub mod db;
pub mod demo;
pub mod domain;
pub mod feeds;
pub mod ingest;
pub mod jobs;
pub mod settings;
pub mod store;
pub mod web;

pub use app::launch;
pub use settings::Settings;
pub use web::AppState;
