//! `check`: judges a snapshot against the compatibility data. Pure: the evaluation date is an input.
