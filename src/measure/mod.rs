//! Measurements read from the operating system: process memory and kernel socket
//! counters. Every reader returns `None` when the figure cannot be read, so a report
//! can say "not measured" instead of inventing a number.

pub mod procfs;
