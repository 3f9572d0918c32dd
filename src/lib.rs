//! obsctl: cost and usage digests for LLM-agent gateways.
//!
//! Data flows one way: command line ([`cli`]) → options and window ([`options`],
//! [`window`]) → a source answers a query with rows ([`source`]) → the [`digest`] puts
//! them in order → a renderer turns it into bytes ([`report`]).

pub mod cli;
pub mod config;
pub mod digest;
pub mod error;
pub mod gate;
pub mod man;
pub mod options;
pub mod report;
pub mod source;
pub mod usd;
pub mod window;
