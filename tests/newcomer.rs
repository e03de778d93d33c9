//! A newcomer's first hour: warnings instead of silently empty results, help that teaches,
//! the things people expect from a command-line tool.
