//! Background work: the offline export worker and its retention sweep.

pub mod exports;
pub mod rows;
