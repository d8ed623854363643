//! Service output on its way to the event loop: one reader task per process, a byte budget per service, drops counted instead of memory growing.
//!
//! A service can write faster than gantry can mask, log and show its lines (`yes` writes
//! hundreds of MB/s). Each service has an [`OUTPUT_BUDGET`] of bytes in flight: a line
//! the reader cannot fit is dropped and counted, never queued, so gantry's memory stays
//! bounded and the pipe keeps draining (the service is never blocked on a full pipe).
//! The count reaches the log as a marker line and `/metrics` as
//! `gantry_output_dropped_lines_total`. Output travels on its own channel, which the
//! loop serves after signals, API commands, probe results and timers: a flood can delay
//! only output.

use crate::process::{LineStream, StreamKind};
use crate::reaper::{ExitStatus, ExitWatch};
use gantry_engine as eng;
use gantry_engine::UnitId;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Semaphore, mpsc};

/// Bytes of one service's output that may wait for the event loop at once.
pub(super) const OUTPUT_BUDGET: usize = 1 << 20;

/// What a reader task reports, in the order it happened for its process.
pub(super) enum Out {
    Line {
        unit: UnitId,
        stream: StreamKind,
        line: String,
        /// A [`crate::process::MAX_LINE`] chunk that the next line of this stream continues.
        cut: bool,
        /// Budget held by this line; the loop gives it back once the line is handled.
        cost: u32,
    },
    /// Lines dropped since the last report, because the budget was spent.
    Dropped { unit: UnitId, lines: u64 },
    /// The process exited and its output has drained (sent last, so the final lines —
    /// usually the ones that explain a failure — are handled before the exit).
    Exited {
        unit: UnitId,
        r#gen: eng::Gen,
        status: ExitStatus,
    },
}

/// The budget a line costs: its bytes plus the bookkeeping around it.
fn cost(line: &str) -> u32 {
    u32::try_from(line.len() + 64).unwrap_or(u32::MAX)
}

/// A fresh budget for one service.
pub(super) fn budget() -> Arc<Semaphore> {
    Arc::new(Semaphore::new(OUTPUT_BUDGET))
}

/// Reads both streams and the exit of one process until the output has drained (EOF on
/// both pipes, or a short grace for a daemon that keeps them open after the exit).
pub(super) fn spawn_reader(
    unit: UnitId,
    r#gen: eng::Gen,
    (mut out, mut err): (LineStream, LineStream),
    mut exit: ExitWatch,
    budget: Arc<Semaphore>,
    tx: mpsc::UnboundedSender<Out>,
) {
    tokio::spawn(async move {
        let (mut out_open, mut err_open) = (true, true);
        let mut status = None;
        let mut dropped = 0u64;
        // Made only once the process has exited: a timer held inline for the whole life of
        // every reader was a tenth of each task's memory.
        let mut grace: Option<std::pin::Pin<Box<tokio::time::Sleep>>> = None;
        loop {
            let read = tokio::select! {
                line = out.next_line(), if out_open => match line {
                    Ok(Some(line)) => Some((StreamKind::Out, line, out.was_cut())),
                    _ => { out_open = false; None }
                },
                line = err.next_line(), if err_open => match line {
                    Ok(Some(line)) => Some((StreamKind::Err, line, err.was_cut())),
                    _ => { err_open = false; None }
                },
                st = &mut exit, if status.is_none() => {
                    status = Some(st.unwrap_or(ExitStatus { code: None, signal: Some(9) }));
                    grace = Some(Box::pin(tokio::time::sleep(Duration::from_millis(200))));
                    None
                }
                _ = async { grace.as_mut().expect("guarded").await }, if grace.is_some() => break,
            };
            if let Some((stream, line, cut)) = read {
                let cost = cost(&line);
                match budget.try_acquire_many(cost) {
                    Ok(permit) => {
                        permit.forget();
                        if dropped > 0 {
                            let _ = tx.send(Out::Dropped {
                                unit,
                                lines: std::mem::take(&mut dropped),
                            });
                        }
                        let _ = tx.send(Out::Line {
                            unit,
                            stream,
                            line,
                            cut,
                            cost,
                        });
                    }
                    Err(_) => dropped += 1,
                }
            }
            if status.is_some() && !out_open && !err_open {
                break;
            }
        }
        if dropped > 0 {
            let _ = tx.send(Out::Dropped {
                unit,
                lines: dropped,
            });
        }
        if let Some(status) = status {
            let _ = tx.send(Out::Exited {
                unit,
                r#gen,
                status,
            });
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_costs_its_bytes_and_never_more_than_the_budget_holds() {
        assert_eq!(cost("abc"), 67);
        let max = "x".repeat(crate::process::MAX_LINE);
        assert!((cost(&max) as usize) < OUTPUT_BUDGET / 8);
    }
}
