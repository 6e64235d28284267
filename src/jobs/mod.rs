//! Background work: the offline export worker, its retention sweep, and the periodic sweep
//! of expired sessions and list entries.

pub mod alerts;
pub mod exports;
pub mod maintenance;
pub mod sink;
