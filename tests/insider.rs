//! A dishonest enrolled centre speaks only for itself: per-sender bundle ids, one key for one
//! centre, the organisation read from the pinned key (../shared/THREATS.md, "A dishonest insider").
