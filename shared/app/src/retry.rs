//! Retrying a mail provider's failures, for every mailer (SES in the
//! Lambda functions, SMTP in `nudge serve`): a refusal is final, a request
//! to slow down is waited out for a time budget, anything else that may
//! pass gets a few attempts; waits double and are jittered.
//!
//! The budget is time, not a count, because of bursts: every check deferred
//! by quiet hours is due the minute they end, and a provider throttling
//! that burst needs seconds, which a handful of quick attempts would not
//! give. A message that fails anyway is decided `mail_failed` (its episode
//! was claimed before sending), so giving up too early loses an email.

use std::future::Future;
use std::hash::{BuildHasher, RandomState};
use std::time::{Duration, Instant};

/// Attempts per message for failures other than throttling.
pub const SEND_ATTEMPTS: u32 = 5;

/// How long a throttled message keeps being retried: well inside the check
/// function's 30 s timeout, so a throttled check still ends with a decision.
pub const THROTTLE_BUDGET: Duration = Duration::from_secs(20);

/// The first wait; it doubles per attempt up to [`MAX_BACKOFF`].
pub const FIRST_BACKOFF: Duration = Duration::from_millis(100);

/// The longest single wait between two attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// How one attempt failed.
#[derive(Debug, Clone)]
pub enum Failure<E> {
    /// Refused for good: never retried.
    Permanent(E),
    /// The provider asks to come back later (SES `TooManyRequestsException`,
    /// an SMTP 4xx reply): retried until the throttle budget is spent.
    Throttled(E),
    /// Anything else that may pass (a timeout, a dropped connection, a 5xx
    /// from an API): retried [`Retry::attempts`] times in all.
    Transient(E),
}

/// Why retrying stopped.
#[derive(Debug)]
pub struct GaveUp<E> {
    /// The last attempt's error.
    pub error: E,
    /// It was a [`Failure::Permanent`].
    pub permanent: bool,
    pub attempts: u32,
    pub spent: Duration,
}

/// A retry policy; `Retry::default()` is the one both mailers use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    pub first_backoff: Duration,
    pub max_backoff: Duration,
    pub throttle_budget: Duration,
    pub attempts: u32,
}

impl Default for Retry {
    fn default() -> Retry {
        Retry {
            first_backoff: FIRST_BACKOFF,
            max_backoff: MAX_BACKOFF,
            throttle_budget: THROTTLE_BUDGET,
            attempts: SEND_ATTEMPTS,
        }
    }
}

impl Retry {
    /// The wait after attempt `attempt` (1-based): the first backoff
    /// doubled per attempt, at most the maximum, then a random point in its
    /// upper half ("equal jitter"), so that senders throttled together do
    /// not all come back together.
    pub fn wait(&self, attempt: u32) -> Duration {
        let full = self.first_backoff.saturating_mul(1 << attempt.saturating_sub(1).min(16)).min(self.max_backoff);
        let half = full / 2;
        let span = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX).max(1);
        // A fresh std RandomState is randomly keyed: no random-number crate for this.
        half + Duration::from_nanos(RandomState::new().hash_one(attempt) % span)
    }

    /// Runs `attempt` until it succeeds or the policy gives up, sleeping
    /// with `sleep` in between (the caller's runtime timer). Time spent
    /// counts as the larger of the wall time and the waits.
    pub async fn run<T, E, A, AF, S, SF>(&self, mut attempt: A, sleep: S) -> Result<T, GaveUp<E>>
    where
        A: FnMut() -> AF,
        AF: Future<Output = Result<T, Failure<E>>>,
        S: Fn(Duration) -> SF,
        SF: Future<Output = ()>,
    {
        let started = Instant::now();
        let (mut attempts, mut failures, mut waited) = (0u32, 0u32, Duration::ZERO);
        loop {
            attempts += 1;
            let failure = match attempt().await {
                Ok(v) => return Ok(v),
                Err(f) => f,
            };
            let wait = self.wait(attempts);
            let spent = started.elapsed().max(waited);
            let (error, permanent, done) = match failure {
                Failure::Permanent(e) => (e, true, true),
                Failure::Throttled(e) => (e, false, spent + wait > self.throttle_budget),
                Failure::Transient(e) => {
                    failures += 1;
                    (e, false, failures >= self.attempts)
                }
            };
            if done {
                return Err(GaveUp { error, permanent, attempts, spent });
            }
            tracing::warn!(attempt = attempts, wait_ms = wait.as_millis(), "send failed; backing off");
            sleep(wait).await;
            waited += wait;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use super::*;
    use crate::replay::now_or_never;

    /// Runs `policy` over scripted outcomes with a sleep that only records
    /// its waits; returns the result, the attempts made and the waits.
    fn scripted(
        policy: Retry,
        script: &[Result<u32, Failure<&'static str>>],
    ) -> (Result<u32, GaveUp<&'static str>>, usize, Vec<Duration>) {
        let calls = RefCell::new(0usize);
        let waits = RefCell::new(Vec::new());
        let result = now_or_never(policy.run(
            || {
                let i = *calls.borrow();
                *calls.borrow_mut() += 1;
                std::future::ready(script[i.min(script.len() - 1)].clone())
            },
            |d| {
                waits.borrow_mut().push(d);
                std::future::ready(())
            },
        ));
        (result, calls.into_inner(), waits.into_inner())
    }

    #[test]
    fn waits_double_up_to_the_cap_and_are_drawn_from_the_upper_half() {
        let policy = Retry::default();
        for (attempt, full) in [(1, 100), (2, 200), (3, 400), (5, 1_600), (6, 2_000), (40, 2_000)] {
            let full = Duration::from_millis(full);
            let waits: Vec<Duration> = (0..50).map(|_| policy.wait(attempt)).collect();
            assert!(waits.iter().all(|w| *w >= full / 2 && *w <= full), "attempt {attempt}: {waits:?}");
            let distinct: std::collections::HashSet<_> = waits.iter().collect();
            assert!(distinct.len() > 10, "attempt {attempt}: spread, not one value: {waits:?}");
        }
    }

    #[test]
    fn a_burst_of_throttling_longer_than_the_attempt_count_is_waited_out() {
        let mut script = vec![Err(Failure::Throttled("slow down")); 3 * SEND_ATTEMPTS as usize];
        script.push(Ok(7));
        let (result, calls, waits) = scripted(Retry::default(), &script);
        assert_eq!(result.unwrap(), 7);
        assert_eq!(calls, script.len());
        assert!(waits.iter().sum::<Duration>() <= THROTTLE_BUDGET);
    }

    #[test]
    fn endless_throttling_gives_up_before_a_wait_would_overrun_the_budget() {
        let (result, calls, waits) = scripted(Retry::default(), &[Err(Failure::Throttled("slow down"))]);
        let gave_up = result.unwrap_err();
        assert!(!gave_up.permanent);
        assert_eq!(gave_up.attempts as usize, calls);
        let waited: Duration = waits.iter().sum();
        assert!(waited <= THROTTLE_BUDGET, "{waited:?}");
        assert!(waited + MAX_BACKOFF > THROTTLE_BUDGET, "stopped early: {waited:?}");
    }

    #[test]
    fn other_transient_failures_get_the_attempt_count() {
        let (result, calls, waits) = scripted(Retry::default(), &[Err(Failure::Transient("timed out"))]);
        assert_eq!(result.unwrap_err().attempts, SEND_ATTEMPTS);
        assert_eq!(calls, SEND_ATTEMPTS as usize);
        assert_eq!(waits.len(), SEND_ATTEMPTS as usize - 1);
    }

    #[test]
    fn a_permanent_refusal_is_never_retried() {
        let script = [Err(Failure::Throttled("slow down")), Err(Failure::Permanent("no such user")), Ok(1)];
        let (result, calls, _) = scripted(Retry::default(), &script);
        let gave_up = result.unwrap_err();
        assert!(gave_up.permanent);
        assert_eq!(gave_up.error, "no such user");
        assert_eq!(calls, 2);
    }
}
