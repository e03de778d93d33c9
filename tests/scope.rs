//! Results and logs must belong to the sender's scope, and an older copy never replaces a
//! newer one, at the centre and at central.
