//! Interval tests from sufficient statistics (placeholder; being written).
