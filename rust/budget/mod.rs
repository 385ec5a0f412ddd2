//! Budget pacing: spend a span budget evenly over a calendar period.
//!
//! The pacer keeps the spending rate near the allowance (remaining budget over
//! remaining time) by scaling the probability with an estimate of full demand,
//! re-estimated once per interval from what the interval actually saw. Every
//! kept span (children of kept traces included) reserves one unit of budget
//! atomically, so the total never exceeds the budget, whatever the threads.

pub mod pacer;
pub mod period;
pub mod settings;
pub mod tail;
pub mod wall;
