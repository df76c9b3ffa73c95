//! Cron schedules of workflows: the standard five-field form (minute hour day-of-month month
//! day-of-week, as Temporal accepts) and the six/seven-field form with seconds, evaluated in UTC
//! on the command's time, so every replica computes the same next fire time.

use std::str::FromStr;

/// The parsed schedule, or why the expression is invalid.
fn schedule(expression: &str) -> Result<cron::Schedule, String> {
    let trimmed = expression.trim();
    let fields = trimmed.split_whitespace().count();
    let full = if fields == 5 {
        format!("0 {trimmed}")
    } else {
        trimmed.to_string()
    };
    cron::Schedule::from_str(&full).map_err(|e| format!("Invalid CronSchedule {expression:?}: {e}"))
}

/// Checks an expression.
pub(crate) fn validate(expression: &str) -> Result<(), String> {
    schedule(expression).map(|_| ())
}

/// Milliseconds from `now_ms` to the schedule's next fire time strictly after it; `None` if the
/// expression is invalid or never fires again.
pub(crate) fn backoff_ms(expression: &str, now_ms: i64) -> Option<i64> {
    let schedule = schedule(expression).ok()?;
    let now = chrono::DateTime::<chrono::Utc>::from_timestamp_millis(now_ms)?;
    let next = schedule.after(&now).next()?;
    Some((next.timestamp_millis() - now_ms).max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_field_schedules_fire_at_the_next_minute_boundary() {
        // 2023-11-14T22:13:20Z.
        let now_ms = 1_700_000_000_000;
        assert_eq!(backoff_ms("* * * * *", now_ms), Some(40_000));
        assert_eq!(backoff_ms("0 * * * *", now_ms), Some(40_000 + 46 * 60_000));
        assert_eq!(backoff_ms("*/5 * * * * *", now_ms), Some(5_000));
        assert!(validate("not a schedule").is_err());
        assert_eq!(backoff_ms("nope", now_ms), None);
    }
}
