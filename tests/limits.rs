//! Bounded work for any input: record limits, numbers, memory.
