//! The Loki source (being written): per-session and per-variant figures from LogQL.
