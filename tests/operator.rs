//! A careless operator and a hostile file system: duplicate zip entries, control characters,
//! permissions, litter from crashes, failures that must not pass in silence, batches from Macs.
