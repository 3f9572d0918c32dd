//! obsctl: cost and usage digests for LLM-agent gateways, and a CI gate on them.
//!
//! Data flows one way: command line ([`cli`]) → a [`command`] turns it into a window and
//! the sources → a source answers a query with rows ([`source`]) → the [`digest`] puts
//! them in order → a renderer turns it into bytes ([`report`]). The [`gate`] compares two
//! digests (or a digest and a saved baseline) and never talks to a server itself; the
//! [`doctor`] checks the sources themselves and compares what they answer.

pub mod cli;
pub mod command;
pub mod config;
pub mod digest;
pub mod doctor;
pub mod error;
pub mod event;
pub mod gate;
pub mod man;
pub mod report;
pub mod rules;
pub mod source;
pub mod usd;
pub mod window;
