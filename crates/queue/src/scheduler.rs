//! Turns the live versions' `[[schedule]]` entries into queued events. Each node
//! computes the same ticks; a tick fires through `Store::fire_schedule`, a
//! compare-and-set on the schedule's last tick committed together with the event, so
//! exactly one node fires it and a fired tick is never lost. A tick that passed while no
//! node ran (found when a node starts tracking the schedule, or seen more than
//! [`MISSED_AFTER`] late) was missed: the latest one runs once if the schedule says
//! `missed = "run-once"` (the default) and is skipped otherwise; older missed ticks are
//! never run one by one. A changed cron line starts from its next tick.
//!
//! The scheduler task wakes every 100 ms and compares against ticks computed in memory:
//! it reads a schedule's state when it starts tracking it, and writes only when a tick
//! is due.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use gureum_manifest::Cadence;
use gureum_store::StoreError;

use crate::Queue;
use crate::events::{self, ScheduleView};

/// A tick seen this late was missed while no node was running.
pub const MISSED_AFTER: Duration = Duration::from_secs(10);
/// How often the scheduler looks at the clock.
const TICK: Duration = Duration::from_millis(100);

struct Tracked {
    cron: String,
    tz: String,
    cadence: Cadence,
    /// The last tick fired or skipped, as far as this node knows.
    last_tick_ms: i64,
    /// The first tick after it: nothing to do before then.
    next_due_ms: i64,
    /// The stored last tick was behind when tracking began: the next firing is a
    /// missed tick.
    catching_up: bool,
}

pub(crate) async fn run(queue: Arc<Queue>) {
    let mut tracked: HashMap<(String, String), Tracked> = HashMap::new();
    let mut interval = tokio::time::interval(TICK);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            () = queue.stop.cancelled() => return,
        }
        let now = gureum_model::now_ms();
        let mut seen = Vec::new();
        for (function, _, spec) in queue.invoker.live_functions() {
            for schedule in &spec.schedules {
                let key = (function.clone(), schedule.name.clone());
                seen.push(key.clone());
                let known = tracked.get(&key);
                let edited = known.is_some_and(|t| t.cron != schedule.cron || t.tz != schedule.tz);
                if known.is_none() || edited {
                    match track(&queue, &function, schedule, now, edited).await {
                        Ok(Some(entry)) => {
                            tracked.insert(key.clone(), entry);
                        }
                        Ok(None) => continue,
                        Err(error) => {
                            tracing::warn!(%error, function, schedule = schedule.name, "reading a schedule's state failed; retrying");
                            continue;
                        }
                    }
                }
                let Some(entry) = tracked.get_mut(&key) else {
                    continue;
                };
                if now < entry.next_due_ms {
                    continue;
                }
                let Some(due) = entry.cadence.latest_at_or_before(now) else {
                    continue;
                };
                if due <= entry.last_tick_ms {
                    entry.next_due_ms = entry.cadence.next_after(now).unwrap_or(i64::MAX);
                    continue;
                }
                let missed = entry.catching_up || now - due > crate::millis(MISSED_AFTER);
                let event = (!missed || schedule.catch_up).then(|| {
                    events::cron_event(&function, &schedule.name, &schedule.body, due, now)
                });
                match queue
                    .store
                    .fire_schedule(&function, &schedule.name, due, event.as_ref(), now)
                    .await
                {
                    Ok(fired) => {
                        if fired && event.is_some() {
                            if missed {
                                tracing::info!(
                                    function,
                                    schedule = schedule.name,
                                    "running a tick missed while the server was down"
                                );
                            }
                            queue.wake.notify_one();
                        }
                        entry.last_tick_ms = due;
                        entry.next_due_ms = entry.cadence.next_after(due).unwrap_or(i64::MAX);
                        entry.catching_up = false;
                    }
                    Err(error) => {
                        tracing::warn!(%error, function, schedule = schedule.name, "firing a schedule failed; retrying");
                    }
                }
            }
        }
        tracked.retain(|key, _| seen.contains(key));
    }
}

/// Starts tracking a schedule: its state from the store, created (as if the tick before
/// now had fired) when new, so a fresh deploy waits for its first tick; an `edited`
/// schedule (its cron line changed under this node) also starts from its next tick.
async fn track(
    queue: &Queue,
    function: &str,
    schedule: &gureum_model::Schedule,
    now: i64,
    edited: bool,
) -> Result<Option<Tracked>, StoreError> {
    let cadence = match Cadence::parse(&schedule.cron, &schedule.tz) {
        Ok(cadence) => cadence,
        Err(reason) => {
            // Deploy validates with the same parser, so this is a manifest from an older
            // gureum; say so once per change instead of failing every tick.
            tracing::warn!(
                function,
                schedule = schedule.name,
                reason,
                "schedule not understood; it will not fire"
            );
            return Ok(None);
        }
    };
    let before = cadence.latest_at_or_before(now).unwrap_or(now);
    let mut state = queue
        .store
        .schedule_state_or_insert(function, &schedule.name, before)
        .await?;
    if edited && state.last_tick_ms < before {
        // Not a missed tick of the new line: move on without firing (a no-op when
        // another node did it first).
        queue
            .store
            .fire_schedule(function, &schedule.name, before, None, now)
            .await?;
        state.last_tick_ms = before;
    }
    let next_due_ms = cadence.next_after(state.last_tick_ms).unwrap_or(i64::MAX);
    Ok(Some(Tracked {
        cron: schedule.cron.clone(),
        tz: schedule.tz.clone(),
        cadence,
        last_tick_ms: state.last_tick_ms,
        next_due_ms,
        catching_up: state.last_tick_ms < before,
    }))
}

pub(crate) async fn views(queue: &Queue) -> Result<Vec<ScheduleView>, StoreError> {
    let states = queue.store.schedule_states().await?;
    let now = gureum_model::now_ms();
    let mut views = Vec::new();
    let mut functions = queue.invoker.live_functions();
    functions.sort_by(|a, b| a.0.cmp(&b.0));
    for (function, _, spec) in functions {
        for schedule in &spec.schedules {
            let state = states
                .iter()
                .find(|state| state.function == function && state.name == schedule.name);
            let next_at_ms = Cadence::parse(&schedule.cron, &schedule.tz)
                .ok()
                .and_then(|cadence| cadence.next_after(now));
            views.push(ScheduleView {
                function: function.clone(),
                name: schedule.name.clone(),
                cron: schedule.cron.clone(),
                tz: schedule.tz.clone(),
                next_at_ms,
                last_tick_ms: state.map(|s| s.last_tick_ms),
                last_invocation_id: state.and_then(|s| s.last_invocation_id.clone()),
                last_status: state.and_then(|s| s.last_status.clone()),
                last_finished_at_ms: state.and_then(|s| s.last_finished_at_ms),
            });
        }
    }
    Ok(views)
}
