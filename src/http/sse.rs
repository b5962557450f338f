//! Server-sent-event framing of a job's stream: one frame per [`StreamEvent`], and a comment
//! line (`: keep-alive`) whenever the stream has been quiet for the keep-alive interval, so
//! proxies and clients do not drop a stream that waits in a long queue.

use std::time::Duration;

use bytes::Bytes;
use comfy_fleet_actors::JobEvent;
use futures_util::Stream;
use tokio::time::{Instant, Interval, MissedTickBehavior};

use crate::fleet::events::EventReceiver;
use crate::http::api_types::StreamEvent;

/// The comment sent on a quiet stream; clients ignore lines starting with `:`.
pub const KEEP_ALIVE: &str = ": keep-alive\n\n";

/// `event: <name>` and `data: <JSON>` of one event.
pub fn frame(event: &StreamEvent) -> Bytes {
    let name = event.name();
    // The data is plain structs and strings: serialising it cannot fail, but if it ever did
    // the client still learns which event happened.
    let data = serde_json::to_string(event).unwrap_or_else(|_| format!("{{\"event\":\"{name}\"}}"));
    Bytes::from(format!("event: {name}\ndata: {data}\n\n"))
}

struct JobStream {
    past: std::vec::IntoIter<JobEvent>,
    live: EventReceiver,
    keep_alive: Option<Interval>,
    ended: bool,
}

enum Next {
    Event(Option<JobEvent>),
    KeepAlive,
}

impl JobStream {
    async fn next(&mut self) -> Option<Bytes> {
        if self.ended {
            return None;
        }
        let event = match self.past.next() {
            Some(event) => event,
            None => {
                let next = match &mut self.keep_alive {
                    Some(ticks) => tokio::select! {
                        biased;
                        event = self.live.recv() => Next::Event(event),
                        _ = ticks.tick() => Next::KeepAlive,
                    },
                    None => Next::Event(self.live.recv().await),
                };
                match next {
                    Next::KeepAlive => return Some(Bytes::from_static(KEEP_ALIVE.as_bytes())),
                    Next::Event(event) => event?,
                }
            }
        };
        if let Some(ticks) = &mut self.keep_alive {
            // The interval counts quiet time: an event restarts it.
            ticks.reset();
        }
        let view = StreamEvent::from(&event);
        self.ended = view.is_final();
        Some(frame(&view))
    }
}

/// The frames of a job's stream: the events so far, then live ones, with a keep-alive comment
/// after each `keep_alive` of quiet (never, when zero). It ends after the final event, or when
/// the live events end.
pub fn job_stream(
    past: Vec<JobEvent>,
    live: EventReceiver,
    keep_alive: Duration,
) -> impl Stream<Item = Result<Bytes, actix_web::Error>> {
    let keep_alive = (!keep_alive.is_zero()).then(|| {
        let mut ticks = tokio::time::interval_at(Instant::now() + keep_alive, keep_alive);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        ticks
    });
    let stream = JobStream {
        past: past.into_iter(),
        live,
        keep_alive,
        ended: false,
    };
    futures_util::stream::unfold(stream, |mut stream| async move {
        let frame = stream.next().await?;
        Some((Ok(frame), stream))
    })
}

#[cfg(test)]
mod tests {
    use comfy_fleet_actors::JobId;
    use futures_util::StreamExt;
    use tokio::sync::mpsc;

    use super::*;

    fn text(frame: Bytes) -> String {
        String::from_utf8(frame.to_vec()).unwrap()
    }

    #[test]
    fn a_frame_names_the_event_and_carries_its_json() {
        let frame = frame(&StreamEvent::Queued {
            position: 1,
            eta_seconds: Some(2.25),
        });
        assert_eq!(
            text(frame),
            "event: queued\ndata: {\"event\":\"queued\",\"position\":1,\"eta_seconds\":2.25}\n\n"
        );
    }

    #[actix_rt::test]
    async fn a_quiet_stream_gets_keep_alives_and_ends_after_the_final_event() {
        let job = JobId::new();
        let (tx, rx) = mpsc::unbounded_channel();
        let past = vec![JobEvent::Queued {
            job,
            position: 0,
            eta: None,
        }];
        let mut stream = Box::pin(job_stream(past, rx, Duration::from_millis(5)));
        assert!(text(stream.next().await.unwrap().unwrap()).starts_with("event: queued\n"));
        // Nothing happens to the job: the stream says it is still there.
        assert_eq!(text(stream.next().await.unwrap().unwrap()), KEEP_ALIVE);
        assert_eq!(text(stream.next().await.unwrap().unwrap()), KEEP_ALIVE);
        tx.send(JobEvent::Cancelled { job }).unwrap();
        // Events go before keep-alives that fell due meanwhile.
        let last = text(stream.next().await.unwrap().unwrap());
        assert!(last.starts_with("event: cancelled\n"), "{last}");
        // The sender is still open, yet the stream is over.
        assert!(stream.next().await.is_none());
        drop(tx);
    }

    #[actix_rt::test]
    async fn a_finished_job_replays_its_story_and_ends_at_once() {
        let job = JobId::new();
        let (tx, rx) = mpsc::unbounded_channel::<JobEvent>();
        drop(tx);
        let past = vec![
            JobEvent::Queued {
                job,
                position: 0,
                eta: None,
            },
            JobEvent::Done {
                job,
                outputs: vec![],
            },
        ];
        let frames: Vec<String> = job_stream(past, rx, Duration::ZERO)
            .map(|f| text(f.unwrap()))
            .collect()
            .await;
        assert_eq!(frames.len(), 2, "{frames:?}");
        assert!(frames[1].starts_with("event: done\n"));
    }
}
