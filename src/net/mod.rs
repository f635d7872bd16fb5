//! Networking helpers shared by the player and, later, chat.

pub mod backoff;
