//! The lifecycle state machine of one instance, free of I/O.
//!
//! `Created → Starting → Idle ⇄ Busy → Draining → Stopping → Stopped`, and on a crash
//! (process exit, launch failure, readiness timeout, failed health, hung job)
//! `Crashed → Restarting → Starting…` with exponential backoff, or `Crashed → Quarantined →
//! Starting…` when the crash-loop breaker trips. An operator may drain an instance
//! (`Busy → Retiring → Parking → Parked`: its jobs finish, its process stops, and it stays
//! stopped) or restart it (`→ Relaunching → Starting`: its jobs are handed back as after a crash,
//! its process stops, and a fresh one starts at once; not counted by the crash-loop breaker). The actor feeds [`Event`]s with the current time
//! and performs the [`Effect`]s returned, in the order returned: that order is the order they
//! must happen in (a crash is reported before the jobs it aborts are, so their retries are not
//! placed on this instance; jobs are given up before the process is stopped, and a shutdown is
//! confirmed last). Every transition is logged with the instance, GPU, from, to, reason and the
//! delay before the next attempt.
//!
//! Results of asynchronous work carry the process *generation* they belong to (one per launch),
//! timers and health pings carry the state *epoch* (one per transition): anything that arrives
//! for an older generation or epoch is stale and ignored.

use std::fmt;
use std::time::{Duration, Instant};

use crate::ids::{GpuId, InstanceId, JobId};
use crate::instance::config::InstanceConfig;
use crate::instance::health::{HealthCheck, HealthVerdict};
use crate::instance::supervision::{RestartDecision, Supervision};
use crate::messages::{InstancePhase, InstanceUpdate};

/// Why an instance counts as crashed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CrashCause {
    /// The launcher could not start the process.
    LaunchFailed(String),
    /// The process exited on its own.
    Exited(String),
    /// Not ready within the readiness timeout.
    NotReady { within: Duration },
    /// A readiness step failed for good (e.g. the warm-up prompt was refused).
    ReadinessFailed(String),
    /// Too many consecutive failed health pings.
    Unhealthy { failures: u32, last_error: String },
    /// A job stayed silent past the watchdog while ComfyUI still had it queued or running.
    JobHung { job: JobId, silent_for: Duration },
}

impl fmt::Display for CrashCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::LaunchFailed(reason) => write!(f, "launch failed: {reason}"),
            Self::Exited(exit) => write!(f, "process exited ({exit})"),
            Self::NotReady { within } => write!(
                f,
                "not ready within the readiness timeout of {}",
                humantime::format_duration(*within)
            ),
            Self::ReadinessFailed(reason) => write!(f, "readiness failed: {reason}"),
            Self::Unhealthy {
                failures,
                last_error,
            } => write!(
                f,
                "{failures} health checks failed in a row (last: {last_error})"
            ),
            Self::JobHung { job, silent_for } => write!(
                f,
                "job {job} hung: no event for {} while ComfyUI still had it",
                crate::duration_text::rounded(*silent_for)
            ),
        }
    }
}

/// Why the in-flight jobs must be given up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AbortReason {
    /// The instance crashed under them.
    Crash(CrashCause),
    /// The shutdown deadline passed before they finished.
    Shutdown,
    /// An operator restarts the instance.
    OperatorRestart,
}

/// The reason logged and reported for an operator's drain.
pub const OPERATOR_DRAIN: &str = "operator drain";
/// The reason logged and reported for an operator's restart.
pub const OPERATOR_RESTART: &str = "operator restart";

/// The timers the lifecycle arms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timer {
    ReadinessTimeout,
    Backoff,
    Cooldown,
    Health,
    DrainDeadline,
}

/// What happened, as the actor tells it.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// Start the instance (once, after construction).
    Start,
    /// The process of `generation` is up at `url` (attach mode: the remote URL was chosen).
    Launched {
        generation: u64,
        url: String,
    },
    LaunchFailed {
        generation: u64,
        reason: String,
    },
    /// HTTP up, `object_info` loaded, warm-up run.
    ReadinessPassed {
        generation: u64,
    },
    ReadinessFailed {
        generation: u64,
        reason: String,
    },
    /// The process of `generation` has exited.
    ProcessExited {
        generation: u64,
        exit: String,
    },
    /// A timer armed in `epoch` fired.
    TimerFired {
        timer: Timer,
        epoch: u64,
    },
    /// A health ping sent in `epoch` answered.
    HealthChecked {
        epoch: u64,
        result: Result<(), String>,
    },
    /// The first job was accepted while idle.
    JobsStarted,
    /// The last in-flight job ended.
    JobsIdle,
    /// The watchdog found a hung job (already interrupted) on the process of `generation`.
    JobHung {
        generation: u64,
        job: JobId,
        silent_for: Duration,
    },
    /// Stop gracefully: in-flight jobs get `deadline` to finish.
    Shutdown {
        deadline: Duration,
    },
    /// An operator drains the instance: no new jobs, in-flight ones finish, then the process
    /// stops and stays stopped until [`Event::Restart`].
    Drain,
    /// An operator restarts the instance: in-flight jobs are handed back (retried elsewhere),
    /// the process stops and a fresh one starts at once.
    Restart,
}

/// What the actor must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Launch a process (attach mode: connect to the remote URL) for `generation`.
    Launch { generation: u64 },
    /// Probe readiness (ping until up, object_info, warm-up) of `generation`.
    ProbeReadiness { generation: u64 },
    /// Stop probing readiness (the start was given up).
    CancelProbe,
    /// Send one health ping; answer with [`Event::HealthChecked`] for `epoch`.
    Ping { epoch: u64 },
    /// Stop the running process: SIGTERM, `grace`, SIGKILL.
    StopProcess { grace: Duration },
    /// Give up every in-flight job, each reported finished with the failure `reason` makes of
    /// it; when `interrupt`, ask ComfyUI to cancel them too (the server is believed alive).
    AbortJobs {
        reason: AbortReason,
        interrupt: bool,
    },
    /// Call back with [`Event::TimerFired`] after `after`.
    Arm {
        timer: Timer,
        after: Duration,
        epoch: u64,
    },
    /// Tell the scheduler the new phase (with the URL once known).
    Report(InstanceUpdate),
    /// The instance is stopped and its process gone: resolve pending `Shutdown`s.
    ShutdownComplete,
}

/// The states of an instance.
#[derive(Debug, Clone, PartialEq)]
pub enum State {
    Created,
    Starting {
        since: Instant,
    },
    /// Ready, no job in flight (health-checked).
    Idle,
    /// Ready with jobs in flight (watched by the per-job watchdog).
    Busy,
    /// Finishing in-flight jobs before stopping; takes no new ones.
    Draining,
    /// Crashed; waiting for the process to be gone before applying `decision`.
    Crashed {
        cause: CrashCause,
        decision: RestartDecision,
    },
    Restarting {
        until: Instant,
    },
    Quarantined {
        until: Instant,
    },
    /// Shutting down; waiting for the process to exit.
    Stopping,
    Stopped,
    /// Drained by an operator: finishing in-flight jobs; takes no new ones.
    Retiring,
    /// Drained by an operator: waiting for the process to exit.
    Parking,
    /// Drained by an operator: no process, until an operator restarts it.
    Parked,
    /// Restarted by an operator: waiting for the old process to exit before a fresh launch.
    Relaunching,
}

impl State {
    /// Short name for logs.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Starting { .. } => "starting",
            Self::Idle => "idle",
            Self::Busy => "busy",
            Self::Draining => "draining",
            Self::Crashed { .. } => "crashed",
            Self::Restarting { .. } => "restarting",
            Self::Quarantined { .. } => "quarantined",
            Self::Stopping => "stopping",
            Self::Stopped => "stopped",
            Self::Retiring => "retiring",
            Self::Parking => "parking",
            Self::Parked => "parked",
            Self::Relaunching => "relaunching",
        }
    }

    /// The phase the scheduler sees.
    pub fn phase(&self) -> InstancePhase {
        match self {
            Self::Created | Self::Starting { .. } => InstancePhase::Starting,
            Self::Idle | Self::Busy => InstancePhase::Ready,
            Self::Draining | Self::Stopping | Self::Retiring | Self::Parking => {
                InstancePhase::Draining
            }
            Self::Crashed { .. } => InstancePhase::Crashed,
            Self::Restarting { .. } | Self::Relaunching => InstancePhase::Restarting,
            Self::Quarantined { .. } => InstancePhase::Quarantined,
            Self::Stopped | Self::Parked => InstancePhase::Stopped,
        }
    }
}

/// The lifecycle of one instance.
pub struct Lifecycle {
    instance: InstanceId,
    gpu: Option<GpuId>,
    /// We launch (and stop) the process; false in attach mode.
    managed: bool,
    readiness_timeout: Duration,
    health_interval: Duration,
    stop_grace: Duration,
    supervision: Supervision,
    health: HealthCheck,
    jitter: Box<dyn FnMut() -> f64>,
    state: State,
    generation: u64,
    epoch: u64,
    url: Option<String>,
    process_alive: bool,
    launch_pending: bool,
}

impl Lifecycle {
    /// `jitter` yields uniform samples in `[0, 1)` for the backoff spread.
    pub fn new(
        instance: InstanceId,
        gpu: Option<GpuId>,
        managed: bool,
        config: &InstanceConfig,
        jitter: Box<dyn FnMut() -> f64>,
    ) -> Self {
        Self {
            instance,
            gpu,
            managed,
            readiness_timeout: config.readiness_timeout,
            health_interval: config.health_interval,
            stop_grace: config.stop_grace,
            supervision: Supervision::new(config.backoff.clone(), &config.restart_intensity),
            health: HealthCheck::new(config.health_failures),
            jitter,
            state: State::Created,
            generation: 0,
            epoch: 0,
            url: None,
            process_alive: false,
            launch_pending: false,
        }
    }

    pub fn state(&self) -> &State {
        &self.state
    }

    pub fn phase(&self) -> InstancePhase {
        self.state.phase()
    }

    /// The current process generation (one per launch).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The current state epoch (one per transition).
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The server's URL once launched.
    pub fn url(&self) -> Option<&str> {
        self.url.as_deref()
    }

    /// Whether a launch of `generation` that just completed is still wanted; when not, the
    /// caller stops the process it was handed instead of adopting it.
    pub fn accepts_launch(&self, generation: u64) -> bool {
        generation == self.generation && self.launch_pending
    }

    /// Whether new jobs may be accepted.
    pub fn accepts_jobs(&self) -> bool {
        matches!(self.state, State::Idle | State::Busy)
    }

    /// Feeds one event; returns the effects to perform, in the order they must happen.
    pub fn handle(&mut self, event: Event, now: Instant) -> Vec<Effect> {
        let mut fx = Vec::new();
        match event {
            Event::Start => {
                if self.state == State::Created {
                    self.launch(now, "first start", &mut fx);
                }
            }
            Event::Launched { generation, url } => {
                if !self.accepts_launch(generation) {
                    return fx;
                }
                self.launch_pending = false;
                self.process_alive = self.managed;
                self.url = Some(url);
                match self.state {
                    State::Starting { .. } => fx.push(Effect::ProbeReadiness { generation }),
                    // Shut down, drained or restarted while launching: stop what was just
                    // launched.
                    State::Stopping | State::Parking | State::Relaunching if self.managed => fx
                        .push(Effect::StopProcess {
                            grace: self.stop_grace,
                        }),
                    _ => {}
                }
            }
            Event::LaunchFailed { generation, reason } => {
                if generation != self.generation || !self.launch_pending {
                    return fx;
                }
                self.launch_pending = false;
                match self.state {
                    State::Starting { .. } => {
                        self.crash(CrashCause::LaunchFailed(reason), now, &mut fx)
                    }
                    State::Stopping => self.finish_stop("launch failed during shutdown", &mut fx),
                    State::Parking => {
                        self.goto(State::Parked, "launch failed while draining", None, &mut fx)
                    }
                    State::Relaunching => self.launch(now, OPERATOR_RESTART, &mut fx),
                    _ => {}
                }
            }
            Event::ReadinessPassed { generation } => {
                if generation == self.generation && matches!(self.state, State::Starting { .. }) {
                    self.supervision.on_ready();
                    self.health.reset();
                    self.goto(State::Idle, "ready", None, &mut fx);
                    self.arm(Timer::Health, self.health_interval, &mut fx);
                }
            }
            Event::ReadinessFailed { generation, reason } => {
                if generation == self.generation && matches!(self.state, State::Starting { .. }) {
                    fx.push(Effect::CancelProbe);
                    self.crash(CrashCause::ReadinessFailed(reason), now, &mut fx);
                }
            }
            Event::ProcessExited { generation, exit } => {
                if generation != self.generation || !self.process_alive {
                    return fx;
                }
                self.process_alive = false;
                self.on_process_gone(CrashCause::Exited(exit), now, &mut fx);
            }
            Event::TimerFired { timer, epoch } => {
                if epoch == self.epoch {
                    self.on_timer(timer, now, &mut fx);
                }
            }
            Event::HealthChecked { epoch, result } => {
                if epoch == self.epoch && self.state == State::Idle {
                    self.on_health(result, now, &mut fx);
                }
            }
            Event::JobsStarted => {
                if self.state == State::Idle {
                    self.goto(State::Busy, "job accepted", None, &mut fx);
                }
            }
            Event::JobsIdle => match self.state {
                State::Busy => {
                    self.goto(State::Idle, "no job in flight", None, &mut fx);
                    self.arm(Timer::Health, self.health_interval, &mut fx);
                }
                State::Draining => self.stop_for_shutdown("in-flight jobs finished", &mut fx),
                State::Retiring => self.park("in-flight jobs finished", &mut fx),
                _ => {}
            },
            Event::JobHung {
                generation,
                job,
                silent_for,
            } => {
                if generation == self.generation && matches!(self.state, State::Idle | State::Busy)
                {
                    self.crash(CrashCause::JobHung { job, silent_for }, now, &mut fx);
                } else if generation == self.generation && self.state == State::Retiring {
                    // Draining anyway: give the jobs up as after a crash and stop.
                    let cause = CrashCause::JobHung { job, silent_for };
                    let reason = format!("{cause} while draining");
                    fx.push(Effect::AbortJobs {
                        reason: AbortReason::Crash(cause),
                        interrupt: false,
                    });
                    self.park(&reason, &mut fx);
                }
            }
            Event::Shutdown { deadline } => self.on_shutdown(deadline, &mut fx),
            Event::Drain => self.on_drain(&mut fx),
            Event::Restart => self.on_restart(now, &mut fx),
        }
        fx
    }

    fn on_timer(&mut self, timer: Timer, now: Instant, fx: &mut Vec<Effect>) {
        match (timer, &self.state) {
            (Timer::ReadinessTimeout, State::Starting { .. }) => {
                fx.push(Effect::CancelProbe);
                let within = self.readiness_timeout;
                self.crash(CrashCause::NotReady { within }, now, fx);
            }
            (Timer::Backoff, State::Restarting { .. }) => {
                self.launch(now, "backoff elapsed", fx);
            }
            (Timer::Cooldown, State::Quarantined { .. }) => {
                self.supervision.on_quarantine_over();
                self.launch(now, "quarantine cooldown over", fx);
            }
            (Timer::Health, State::Idle) => fx.push(Effect::Ping { epoch: self.epoch }),
            (Timer::DrainDeadline, State::Draining) => {
                fx.push(Effect::AbortJobs {
                    reason: AbortReason::Shutdown,
                    interrupt: true,
                });
                self.stop_for_shutdown("shutdown deadline passed", fx);
            }
            _ => {}
        }
    }

    fn on_health(&mut self, result: Result<(), String>, now: Instant, fx: &mut Vec<Effect>) {
        let error = result.err();
        match self.health.record(error.is_none()) {
            HealthVerdict::Healthy => {}
            HealthVerdict::Degraded { failures } => {
                tracing::warn!(
                    instance = %self.instance,
                    gpu = %self.gpu_name(),
                    failures,
                    error = error.as_deref().unwrap_or(""),
                    "health check failed"
                );
            }
            HealthVerdict::Dead { failures } => {
                let cause = CrashCause::Unhealthy {
                    failures,
                    last_error: error.unwrap_or_default(),
                };
                self.crash(cause, now, fx);
                return;
            }
        }
        self.arm(Timer::Health, self.health_interval, fx);
    }

    fn on_process_gone(&mut self, cause: CrashCause, now: Instant, fx: &mut Vec<Effect>) {
        match self.state.clone() {
            State::Starting { .. } => {
                fx.push(Effect::CancelProbe);
                self.crash(cause, now, fx);
            }
            State::Idle | State::Busy => self.crash(cause, now, fx),
            State::Crashed { decision, .. } => self.apply_decision(decision, now, fx),
            State::Draining => {
                fx.push(Effect::AbortJobs {
                    reason: AbortReason::Crash(cause.clone()),
                    interrupt: false,
                });
                self.finish_stop(&format!("{cause} while draining"), fx);
            }
            State::Stopping => self.finish_stop("process exited", fx),
            State::Retiring => {
                fx.push(Effect::AbortJobs {
                    reason: AbortReason::Crash(cause.clone()),
                    interrupt: false,
                });
                self.goto(State::Parked, &format!("{cause} while draining"), None, fx);
            }
            State::Parking => self.goto(State::Parked, "process exited", None, fx),
            State::Relaunching => self.launch(now, OPERATOR_RESTART, fx),
            State::Created
            | State::Restarting { .. }
            | State::Quarantined { .. }
            | State::Stopped
            | State::Parked => {}
        }
    }

    fn on_shutdown(&mut self, deadline: Duration, fx: &mut Vec<Effect>) {
        match self.state {
            State::Created | State::Restarting { .. } | State::Quarantined { .. } => {
                self.finish_stop("shutdown requested", fx)
            }
            State::Stopped => fx.push(Effect::ShutdownComplete),
            State::Starting { .. } => {
                fx.push(Effect::CancelProbe);
                self.stop_for_shutdown("shutdown requested while starting", fx);
            }
            State::Idle => self.stop_for_shutdown("shutdown requested", fx),
            State::Busy => {
                self.goto(State::Draining, "shutdown requested", None, fx);
                self.arm(Timer::DrainDeadline, deadline, fx);
            }
            State::Crashed { .. } => {
                // The stop is already under way; wait for the exit.
                if self.process_alive {
                    self.goto(
                        State::Stopping,
                        "shutdown requested while crashed",
                        None,
                        fx,
                    );
                } else {
                    self.finish_stop("shutdown requested", fx);
                }
            }
            State::Retiring => {
                self.goto(State::Draining, "shutdown requested", None, fx);
                self.arm(Timer::DrainDeadline, deadline, fx);
            }
            // The stop is already under way; wait for the exit.
            State::Parking | State::Relaunching => self.stop_for_shutdown("shutdown requested", fx),
            State::Parked => self.finish_stop("shutdown requested", fx),
            State::Draining | State::Stopping => {}
        }
    }

    /// An operator's drain: the jobs in flight finish, then the process stops for good.
    fn on_drain(&mut self, fx: &mut Vec<Effect>) {
        match self.state {
            State::Starting { .. } => {
                fx.push(Effect::CancelProbe);
                self.park(OPERATOR_DRAIN, fx);
            }
            State::Idle => self.park(OPERATOR_DRAIN, fx),
            State::Busy => self.goto(State::Retiring, OPERATOR_DRAIN, None, fx),
            // The crash's stop or the restart's is under way (its jobs are already given up).
            State::Crashed { .. } | State::Relaunching => self.park(OPERATOR_DRAIN, fx),
            State::Restarting { .. } | State::Quarantined { .. } => {
                self.goto(State::Parked, OPERATOR_DRAIN, None, fx)
            }
            // Not started yet, shutting down, or already draining for the operator.
            State::Created
            | State::Draining
            | State::Stopping
            | State::Stopped
            | State::Retiring
            | State::Parking
            | State::Parked => {
                tracing::debug!(instance = %self.instance, state = self.state.name(), "operator drain ignored");
            }
        }
    }

    /// An operator's restart: the jobs in flight are handed back, the process stops and a fresh
    /// one starts at once (without waiting for a backoff or a quarantine cooldown).
    fn on_restart(&mut self, now: Instant, fx: &mut Vec<Effect>) {
        match self.state {
            State::Starting { .. } => {
                fx.push(Effect::CancelProbe);
                if self.process_alive {
                    self.goto(State::Relaunching, OPERATOR_RESTART, None, fx);
                    fx.push(Effect::StopProcess {
                        grace: self.stop_grace,
                    });
                } else {
                    // A launch still under way becomes stale; its late process is stopped.
                    self.launch(now, OPERATOR_RESTART, fx);
                }
            }
            State::Idle | State::Busy | State::Retiring => {
                // Reported before the jobs are handed back, so their retries go elsewhere.
                self.goto(State::Relaunching, OPERATOR_RESTART, None, fx);
                fx.push(Effect::AbortJobs {
                    reason: AbortReason::OperatorRestart,
                    interrupt: false,
                });
                if self.process_alive {
                    fx.push(Effect::StopProcess {
                        grace: self.stop_grace,
                    });
                } else {
                    self.launch(now, OPERATOR_RESTART, fx);
                }
            }
            // A stop is under way (or was never needed): launch once the process is gone.
            State::Crashed { .. } | State::Parking => {
                if self.process_alive || self.launch_pending {
                    self.goto(State::Relaunching, OPERATOR_RESTART, None, fx);
                } else {
                    self.launch(now, OPERATOR_RESTART, fx);
                }
            }
            State::Restarting { .. } | State::Parked => self.launch(now, OPERATOR_RESTART, fx),
            State::Quarantined { .. } => {
                self.supervision.on_quarantine_over();
                self.launch(now, OPERATOR_RESTART, fx);
            }
            // Not started yet, shutting down, or already restarting.
            State::Created
            | State::Draining
            | State::Stopping
            | State::Stopped
            | State::Relaunching => {
                tracing::debug!(instance = %self.instance, state = self.state.name(), "operator restart ignored");
            }
        }
    }

    /// Launches generation `n + 1`.
    fn launch(&mut self, now: Instant, reason: &str, fx: &mut Vec<Effect>) {
        self.generation += 1;
        self.process_alive = false;
        self.launch_pending = true;
        if self.managed {
            // A new process gets a new port; the old URL no longer applies.
            self.url = None;
        }
        self.health.reset();
        self.goto(State::Starting { since: now }, reason, None, fx);
        fx.push(Effect::Launch {
            generation: self.generation,
        });
        self.arm(Timer::ReadinessTimeout, self.readiness_timeout, fx);
    }

    /// Reports the crash, then gives up the jobs (whose retries must not come back here), then
    /// stops the process or, when none runs, schedules the restart.
    fn crash(&mut self, cause: CrashCause, now: Instant, fx: &mut Vec<Effect>) {
        let unit = (self.jitter)();
        let decision = self.supervision.on_crash(now, unit);
        let reason = cause.to_string();
        let abort = AbortReason::Crash(cause.clone());
        self.goto(State::Crashed { cause, decision }, &reason, None, fx);
        fx.push(Effect::AbortJobs {
            reason: abort,
            interrupt: false,
        });
        if self.process_alive {
            // Apply the decision once the process is gone (`ProcessExited`).
            fx.push(Effect::StopProcess {
                grace: self.stop_grace,
            });
        } else {
            if self.launch_pending {
                // Give up the launch still under way: a newer generation makes its outcome
                // stale, and a process it hands over late is refused (`accepts_launch`), so
                // the actor stops it at once.
                self.launch_pending = false;
                self.generation += 1;
            }
            self.apply_decision(decision, now, fx);
        }
    }

    fn apply_decision(&mut self, decision: RestartDecision, now: Instant, fx: &mut Vec<Effect>) {
        let cause = match &self.state {
            State::Crashed { cause, .. } => cause.to_string(),
            other => other.name().to_string(),
        };
        match decision {
            RestartDecision::Restart { delay, restart } => {
                let reason = format!("restart {restart} after: {cause}");
                self.goto(
                    State::Restarting { until: now + delay },
                    &reason,
                    Some(delay),
                    fx,
                );
                self.arm(Timer::Backoff, delay, fx);
            }
            RestartDecision::Quarantine { cooldown, crashes } => {
                let reason = format!(
                    "{crashes} crashes within the restart period, GPU excluded (last: {cause})"
                );
                self.goto(
                    State::Quarantined {
                        until: now + cooldown,
                    },
                    &reason,
                    Some(cooldown),
                    fx,
                );
                self.arm(Timer::Cooldown, cooldown, fx);
            }
        }
    }

    /// Stops the process for a shutdown, or finishes at once when none runs.
    fn stop_for_shutdown(&mut self, reason: &str, fx: &mut Vec<Effect>) {
        if self.managed && (self.process_alive || self.launch_pending) {
            self.goto(State::Stopping, reason, None, fx);
            if self.process_alive {
                fx.push(Effect::StopProcess {
                    grace: self.stop_grace,
                });
            }
        } else {
            self.finish_stop(reason, fx);
        }
    }

    /// Stops the process for an operator's drain, or parks at once when none runs.
    fn park(&mut self, reason: &str, fx: &mut Vec<Effect>) {
        if self.managed && (self.process_alive || self.launch_pending) {
            let stop_under_way = matches!(self.state, State::Crashed { .. } | State::Relaunching);
            self.goto(State::Parking, reason, None, fx);
            if self.process_alive && !stop_under_way {
                fx.push(Effect::StopProcess {
                    grace: self.stop_grace,
                });
            }
        } else {
            self.goto(State::Parked, reason, None, fx);
        }
    }

    fn finish_stop(&mut self, reason: &str, fx: &mut Vec<Effect>) {
        self.process_alive = false;
        self.goto(State::Stopped, reason, None, fx);
        fx.push(Effect::ShutdownComplete);
    }

    fn arm(&self, timer: Timer, after: Duration, fx: &mut Vec<Effect>) {
        fx.push(Effect::Arm {
            timer,
            after,
            epoch: self.epoch,
        });
    }

    fn gpu_name(&self) -> String {
        self.gpu
            .as_ref()
            .map_or_else(|| "none".to_string(), ToString::to_string)
    }

    fn goto(
        &mut self,
        to: State,
        reason: &str,
        next_attempt_in: Option<Duration>,
        fx: &mut Vec<Effect>,
    ) {
        let from = std::mem::replace(&mut self.state, to);
        self.epoch += 1;
        let next = next_attempt_in.map(|d| crate::duration_text::rounded(d).to_string());
        let phase_changed = from.phase() != self.state.phase() || from == State::Created;
        if phase_changed {
            tracing::info!(
                instance = %self.instance,
                gpu = %self.gpu_name(),
                from = from.name(),
                to = self.state.name(),
                reason,
                next_attempt_in = next.as_deref().unwrap_or("-"),
                "instance transition"
            );
            let detail = match (&self.state, &next) {
                (State::Idle | State::Busy, _) => None,
                (_, Some(next)) => Some(format!("{reason}; next attempt in {next}")),
                (_, None) => Some(reason.to_string()),
            };
            fx.push(Effect::Report(InstanceUpdate {
                instance: self.instance.clone(),
                phase: self.state.phase(),
                url: self.url.clone(),
                detail,
            }));
        } else {
            tracing::debug!(
                instance = %self.instance,
                gpu = %self.gpu_name(),
                from = from.name(),
                to = self.state.name(),
                reason,
                "instance transition"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::instance::config::{BackoffConfig, RestartIntensity};

    const S: fn(u64) -> Duration = Duration::from_secs;

    fn config() -> InstanceConfig {
        InstanceConfig {
            readiness_timeout: S(10),
            health_interval: S(1),
            health_failures: 2,
            stop_grace: S(3),
            backoff: BackoffConfig {
                initial: S(1),
                max: S(8),
                multiplier: 2.0,
                jitter: 0.5,
            },
            restart_intensity: RestartIntensity {
                max_restarts: 2,
                period: S(60),
                cooldown: S(30),
            },
            ..InstanceConfig::default()
        }
    }

    fn lifecycle(managed: bool) -> Lifecycle {
        // A sample of 0.5 puts the jittered delay on its base: delays are exact in assertions.
        Lifecycle::new(
            InstanceId::new("gpu0"),
            Some(GpuId("GPU-test".into())),
            managed,
            &config(),
            Box::new(|| 0.5),
        )
    }

    fn phases(fx: &[Effect]) -> Vec<InstancePhase> {
        fx.iter()
            .filter_map(|e| match e {
                Effect::Report(update) => Some(update.phase),
                _ => None,
            })
            .collect()
    }

    /// The effects in order, in short: `report crashed`, `abort`, `stop`, `arm Backoff`…
    fn steps(fx: &[Effect]) -> Vec<String> {
        fx.iter()
            .map(|e| match e {
                Effect::Launch { .. } => "launch".to_string(),
                Effect::ProbeReadiness { .. } => "probe".to_string(),
                Effect::CancelProbe => "cancel probe".to_string(),
                Effect::Ping { .. } => "ping".to_string(),
                Effect::StopProcess { .. } => "stop".to_string(),
                Effect::AbortJobs { interrupt, .. } => if *interrupt {
                    "abort, interrupting"
                } else {
                    "abort"
                }
                .to_string(),
                Effect::Arm { timer, .. } => format!("arm {timer:?}"),
                Effect::Report(update) => format!("report {}", update.phase.name()),
                Effect::ShutdownComplete => "shutdown complete".to_string(),
            })
            .collect()
    }

    fn armed(fx: &[Effect], timer: Timer) -> Option<(Duration, u64)> {
        fx.iter().find_map(|e| match e {
            Effect::Arm {
                timer: t,
                after,
                epoch,
            } if *t == timer => Some((*after, *epoch)),
            _ => None,
        })
    }

    fn fire(l: &mut Lifecycle, fx: &[Effect], timer: Timer, now: Instant) -> Vec<Effect> {
        let (_, epoch) = armed(fx, timer).unwrap_or_else(|| panic!("{timer:?} not armed: {fx:?}"));
        l.handle(Event::TimerFired { timer, epoch }, now)
    }

    /// Boots to Idle; returns the effects of the readiness step (health timer armed).
    fn boot(l: &mut Lifecycle, now: Instant) -> Vec<Effect> {
        let fx = l.handle(Event::Start, now);
        assert!(
            fx.contains(&Effect::Launch {
                generation: l.generation()
            }),
            "{fx:?}"
        );
        ready(l, now)
    }

    fn ready(l: &mut Lifecycle, now: Instant) -> Vec<Effect> {
        let generation = l.generation();
        let fx = l.handle(
            Event::Launched {
                generation,
                url: "http://127.0.0.1:8188".into(),
            },
            now,
        );
        assert_eq!(fx, vec![Effect::ProbeReadiness { generation }]);
        let fx = l.handle(Event::ReadinessPassed { generation }, now);
        assert_eq!(phases(&fx), vec![InstancePhase::Ready]);
        assert_eq!(l.state(), &State::Idle);
        fx
    }

    fn exit(l: &mut Lifecycle, now: Instant) -> Vec<Effect> {
        let generation = l.generation();
        l.handle(
            Event::ProcessExited {
                generation,
                exit: "exit code 1".into(),
            },
            now,
        )
    }

    #[test]
    fn start_launches_and_arms_the_readiness_timeout() {
        let mut l = lifecycle(true);
        assert_eq!(l.phase(), InstancePhase::Starting);
        assert!(!l.accepts_jobs());
        let fx = l.handle(Event::Start, Instant::now());
        assert_eq!(phases(&fx), vec![InstancePhase::Starting]);
        assert!(fx.contains(&Effect::Launch { generation: 1 }));
        assert_eq!(
            armed(&fx, Timer::ReadinessTimeout).map(|a| a.0),
            Some(S(10))
        );
        // A second Start does nothing.
        assert!(l.handle(Event::Start, Instant::now()).is_empty());
    }

    #[test]
    fn ready_reports_the_url_and_arms_health_checks() {
        let mut l = lifecycle(true);
        let fx = boot(&mut l, Instant::now());
        assert!(
            fx.contains(&Effect::Report(InstanceUpdate {
                instance: InstanceId::new("gpu0"),
                phase: InstancePhase::Ready,
                url: Some("http://127.0.0.1:8188".into()),
                detail: None
            })),
            "{fx:?}"
        );
        assert_eq!(armed(&fx, Timer::Health).map(|a| a.0), Some(S(1)));
        assert!(l.accepts_jobs());
        assert_eq!(l.url(), Some("http://127.0.0.1:8188"));
    }

    #[test]
    fn readiness_timeout_after_ready_is_stale() {
        let mut l = lifecycle(true);
        let t0 = Instant::now();
        let start = l.handle(Event::Start, t0);
        ready(&mut l, t0);
        assert!(fire(&mut l, &start, Timer::ReadinessTimeout, t0 + S(10)).is_empty());
        assert_eq!(l.state(), &State::Idle);
    }

    #[test]
    fn busy_and_idle_are_both_ready_and_health_pings_only_while_idle() {
        let mut l = lifecycle(true);
        let t0 = Instant::now();
        let idle = boot(&mut l, t0);
        let fx = l.handle(Event::JobsStarted, t0);
        assert_eq!(l.state(), &State::Busy);
        assert!(
            phases(&fx).is_empty(),
            "Idle→Busy is not a phase change: {fx:?}"
        );
        assert!(l.accepts_jobs());
        // The health timer armed while idle is stale once busy: no ping.
        assert!(fire(&mut l, &idle, Timer::Health, t0 + S(1)).is_empty());
        let fx = l.handle(Event::JobsIdle, t0 + S(2));
        assert_eq!(l.state(), &State::Idle);
        let ping = fire(&mut l, &fx, Timer::Health, t0 + S(3));
        assert_eq!(ping, vec![Effect::Ping { epoch: l.epoch() }]);
    }

    #[test]
    fn consecutive_health_failures_crash_stop_and_restart_with_backoff() {
        let mut l = lifecycle(true);
        let t0 = Instant::now();
        let fx = boot(&mut l, t0);
        let fx = fire(&mut l, &fx, Timer::Health, t0 + S(1));
        let Effect::Ping { epoch } = fx[0] else {
            panic!("{fx:?}")
        };
        let fx = l.handle(
            Event::HealthChecked {
                epoch,
                result: Err("refused".into()),
            },
            t0 + S(1),
        );
        assert_eq!(l.state(), &State::Idle, "one failure is not a crash");
        let fx = fire(&mut l, &fx, Timer::Health, t0 + S(2));
        let Effect::Ping { epoch } = fx[0] else {
            panic!("{fx:?}")
        };
        let fx = l.handle(
            Event::HealthChecked {
                epoch,
                result: Err("refused".into()),
            },
            t0 + S(2),
        );
        assert_eq!(steps(&fx), ["report crashed", "abort", "stop"]);
        assert!(matches!(
            &fx[1],
            Effect::AbortJobs {
                reason: AbortReason::Crash(CrashCause::Unhealthy { failures: 2, .. }),
                interrupt: false
            }
        ));
        assert!(fx.contains(&Effect::StopProcess { grace: S(3) }));
        // Restart waits for the process to be gone.
        let fx = exit(&mut l, t0 + S(3));
        assert_eq!(phases(&fx), vec![InstancePhase::Restarting]);
        assert_eq!(armed(&fx, Timer::Backoff).map(|a| a.0), Some(S(1)));
        let Effect::Report(InstanceUpdate {
            detail: Some(detail),
            ..
        }) = &fx[0]
        else {
            panic!("{fx:?}")
        };
        assert!(
            detail.contains("health checks failed") && detail.contains("next attempt in 1s"),
            "{detail}"
        );
        let fx = fire(&mut l, &fx, Timer::Backoff, t0 + S(4));
        assert_eq!(phases(&fx), vec![InstancePhase::Starting]);
        assert!(fx.contains(&Effect::Launch { generation: 2 }));
        assert_eq!(l.url(), None, "the crashed process's URL is forgotten");
    }

    #[test]
    fn a_successful_ping_clears_the_failure_count() {
        let mut l = lifecycle(true);
        let t0 = Instant::now();
        let mut fx = boot(&mut l, t0);
        for result in [Err("x".to_string()), Ok(()), Err("x".to_string()), Ok(())] {
            fx = fire(&mut l, &fx, Timer::Health, t0);
            let Effect::Ping { epoch } = fx[0] else {
                panic!("{fx:?}")
            };
            fx = l.handle(Event::HealthChecked { epoch, result }, t0);
            assert_eq!(l.state(), &State::Idle);
        }
    }

    #[test]
    fn process_exit_while_ready_restarts_with_growing_backoff_reset_by_readiness() {
        let mut l = lifecycle(true);
        let t0 = Instant::now();
        boot(&mut l, t0);
        l.handle(Event::JobsStarted, t0);
        let fx = exit(&mut l, t0 + S(1));
        assert_eq!(
            phases(&fx),
            vec![InstancePhase::Crashed, InstancePhase::Restarting]
        );
        assert!(
            !fx.iter().any(|e| matches!(e, Effect::StopProcess { .. })),
            "{fx:?}"
        );
        // The crash is reported before the jobs are given up, so the scheduler knows the
        // instance is down before their retries are placed.
        assert_eq!(
            steps(&fx),
            [
                "report crashed",
                "abort",
                "report restarting",
                "arm Backoff"
            ]
        );
        assert!(matches!(
            &fx[1],
            Effect::AbortJobs {
                reason: AbortReason::Crash(CrashCause::Exited(_)),
                ..
            }
        ));
        assert_eq!(armed(&fx, Timer::Backoff).map(|a| a.0), Some(S(1)));
        // Second crash before readiness (exit while starting): the delay doubles.
        let fx = fire(&mut l, &fx, Timer::Backoff, t0 + S(2));
        let generation = l.generation();
        l.handle(
            Event::Launched {
                generation,
                url: "u".into(),
            },
            t0 + S(2),
        );
        let fx2 = exit(&mut l, t0 + S(3));
        assert!(fx2.contains(&Effect::CancelProbe));
        assert_eq!(armed(&fx2, Timer::Backoff).map(|a| a.0), Some(S(2)));
        assert!(fx.contains(&Effect::Launch { generation }));
        // After a successful start the next crash backs off from the initial delay again;
        // the period is long past, so the breaker does not trip.
        fire(&mut l, &fx2, Timer::Backoff, t0 + S(100));
        ready(&mut l, t0 + S(100));
        let fx = exit(&mut l, t0 + S(101));
        assert_eq!(armed(&fx, Timer::Backoff).map(|a| a.0), Some(S(1)));
    }

    #[test]
    fn readiness_timeout_is_a_crash_that_stops_the_process() {
        let mut l = lifecycle(true);
        let t0 = Instant::now();
        let start = l.handle(Event::Start, t0);
        l.handle(
            Event::Launched {
                generation: 1,
                url: "u".into(),
            },
            t0,
        );
        let fx = fire(&mut l, &start, Timer::ReadinessTimeout, t0 + S(10));
        assert_eq!(
            steps(&fx),
            ["cancel probe", "report crashed", "abort", "stop"]
        );
        assert!(matches!(
            &fx[2],
            Effect::AbortJobs { reason: AbortReason::Crash(CrashCause::NotReady { within }), .. } if *within == S(10)
        ));
        assert!(fx.contains(&Effect::StopProcess { grace: S(3) }));
        // A readiness success arriving after the timeout is stale.
        assert!(
            l.handle(Event::ReadinessPassed { generation: 1 }, t0 + S(11))
                .is_empty()
        );
        let fx = exit(&mut l, t0 + S(12));
        assert_eq!(phases(&fx), vec![InstancePhase::Restarting]);
    }

    #[test]
    fn readiness_timeout_while_the_launch_hangs_gives_the_launch_up() {
        let mut l = lifecycle(true);
        let t0 = Instant::now();
        let start = l.handle(Event::Start, t0);
        let fx = fire(&mut l, &start, Timer::ReadinessTimeout, t0 + S(10));
        assert_eq!(
            phases(&fx),
            vec![InstancePhase::Crashed, InstancePhase::Restarting]
        );
        // The launch completes late: its process is refused (the actor stops it).
        assert!(!l.accepts_launch(1));
        let fx = l.handle(
            Event::Launched {
                generation: 1,
                url: "u".into(),
            },
            t0 + S(11),
        );
        assert!(fx.is_empty());
        assert!(matches!(l.state(), State::Restarting { .. }));
    }

    #[test]
    fn failed_readiness_step_is_a_crash() {
        let mut l = lifecycle(true);
        let t0 = Instant::now();
        l.handle(Event::Start, t0);
        l.handle(
            Event::Launched {
                generation: 1,
                url: "u".into(),
            },
            t0,
        );
        let fx = l.handle(
            Event::ReadinessFailed {
                generation: 1,
                reason: "warm-up refused".into(),
            },
            t0,
        );
        assert_eq!(fx[0], Effect::CancelProbe);
        assert!(matches!(
            l.state(),
            State::Crashed {
                cause: CrashCause::ReadinessFailed(_),
                ..
            }
        ));
        assert!(fx.contains(&Effect::StopProcess { grace: S(3) }));
    }

    #[test]
    fn launch_failure_backs_off_without_a_process_to_stop() {
        let mut l = lifecycle(true);
        let t0 = Instant::now();
        l.handle(Event::Start, t0);
        let fx = l.handle(
            Event::LaunchFailed {
                generation: 1,
                reason: "no such file".into(),
            },
            t0,
        );
        assert_eq!(
            phases(&fx),
            vec![InstancePhase::Crashed, InstancePhase::Restarting]
        );
        assert!(!fx.iter().any(|e| matches!(e, Effect::StopProcess { .. })));
    }

    #[test]
    fn crash_loop_quarantines_then_retries_after_the_cooldown() {
        let mut l = lifecycle(true);
        let t0 = Instant::now();
        boot(&mut l, t0);
        let fx = exit(&mut l, t0 + S(1));
        let fx = fire(&mut l, &fx, Timer::Backoff, t0 + S(2));
        assert!(fx.contains(&Effect::Launch { generation: 2 }));
        ready(&mut l, t0 + S(2));
        let fx = exit(&mut l, t0 + S(3));
        fire(&mut l, &fx, Timer::Backoff, t0 + S(4));
        ready(&mut l, t0 + S(4));
        // Third crash within 60 s with max_restarts = 2: quarantine.
        let fx = exit(&mut l, t0 + S(5));
        assert_eq!(
            phases(&fx),
            vec![InstancePhase::Crashed, InstancePhase::Quarantined]
        );
        assert_eq!(l.state(), &State::Quarantined { until: t0 + S(35) });
        assert_eq!(armed(&fx, Timer::Cooldown).map(|a| a.0), Some(S(30)));
        let Some(Effect::Report(InstanceUpdate {
            detail: Some(detail),
            ..
        })) = fx.iter().rev().find(|e| matches!(e, Effect::Report(_)))
        else {
            panic!("{fx:?}")
        };
        assert!(
            detail.contains("3 crashes") && detail.contains("next attempt in 30s"),
            "{detail}"
        );
        assert!(!l.accepts_jobs());
        // Cooldown over: a fresh start, and the breaker starts from zero.
        let fx = fire(&mut l, &fx, Timer::Cooldown, t0 + S(35));
        assert_eq!(phases(&fx), vec![InstancePhase::Starting]);
        assert!(fx.contains(&Effect::Launch { generation: 4 }));
        ready(&mut l, t0 + S(35));
        let fx = exit(&mut l, t0 + S(36));
        assert_eq!(
            phases(&fx),
            vec![InstancePhase::Crashed, InstancePhase::Restarting]
        );
    }

    #[test]
    fn events_of_an_older_process_are_ignored() {
        let mut l = lifecycle(true);
        let t0 = Instant::now();
        boot(&mut l, t0);
        let fx = exit(&mut l, t0);
        fire(&mut l, &fx, Timer::Backoff, t0 + S(1));
        assert_eq!(l.generation(), 2);
        let stale = l.handle(
            Event::ProcessExited {
                generation: 1,
                exit: "x".into(),
            },
            t0 + S(1),
        );
        assert!(stale.is_empty());
        let stale = l.handle(Event::ReadinessPassed { generation: 1 }, t0 + S(1));
        assert!(stale.is_empty());
        assert!(matches!(l.state(), State::Starting { .. }));
    }

    #[test]
    fn hung_job_is_a_crash_that_stops_the_process() {
        let mut l = lifecycle(true);
        let t0 = Instant::now();
        boot(&mut l, t0);
        l.handle(Event::JobsStarted, t0);
        let job = JobId::new();
        let fx = l.handle(
            Event::JobHung {
                generation: 1,
                job,
                silent_for: S(600),
            },
            t0 + S(600),
        );
        assert_eq!(steps(&fx), ["report crashed", "abort", "stop"]);
        assert!(matches!(
            &fx[1],
            Effect::AbortJobs { reason: AbortReason::Crash(CrashCause::JobHung { job: j, .. }), interrupt: false } if *j == job
        ));
        assert!(fx.contains(&Effect::StopProcess { grace: S(3) }));
    }

    #[test]
    fn shutdown_while_idle_stops_the_process_and_completes_on_exit() {
        let mut l = lifecycle(true);
        let t0 = Instant::now();
        boot(&mut l, t0);
        let fx = l.handle(Event::Shutdown { deadline: S(30) }, t0);
        assert_eq!(steps(&fx), ["report draining", "stop"]);
        assert!(fx.contains(&Effect::StopProcess { grace: S(3) }));
        assert!(!l.accepts_jobs());
        let fx = exit(&mut l, t0 + S(1));
        assert_eq!(steps(&fx), ["report stopped", "shutdown complete"]);
        // A later shutdown resolves at once.
        assert_eq!(
            l.handle(Event::Shutdown { deadline: S(1) }, t0),
            vec![Effect::ShutdownComplete]
        );
    }

    #[test]
    fn shutdown_while_busy_drains_then_stops() {
        let mut l = lifecycle(true);
        let t0 = Instant::now();
        boot(&mut l, t0);
        l.handle(Event::JobsStarted, t0);
        let fx = l.handle(Event::Shutdown { deadline: S(30) }, t0);
        assert_eq!(l.state(), &State::Draining);
        assert_eq!(armed(&fx, Timer::DrainDeadline).map(|a| a.0), Some(S(30)));
        assert!(!fx.iter().any(|e| matches!(e, Effect::StopProcess { .. })));
        let fx = l.handle(Event::JobsIdle, t0 + S(5));
        assert_eq!(l.state(), &State::Stopping);
        assert!(fx.contains(&Effect::StopProcess { grace: S(3) }));
        let fx = exit(&mut l, t0 + S(6));
        assert!(fx.contains(&Effect::ShutdownComplete));
        assert_eq!(l.phase(), InstancePhase::Stopped);
    }

    #[test]
    fn drain_deadline_cancels_the_remaining_jobs_then_stops() {
        let mut l = lifecycle(true);
        let t0 = Instant::now();
        boot(&mut l, t0);
        l.handle(Event::JobsStarted, t0);
        let fx = l.handle(Event::Shutdown { deadline: S(30) }, t0);
        let fx = fire(&mut l, &fx, Timer::DrainDeadline, t0 + S(30));
        // The jobs are given up (and interrupted) before the process is stopped.
        assert_eq!(steps(&fx), ["abort, interrupting", "stop"]);
        assert_eq!(
            fx[0],
            Effect::AbortJobs {
                reason: AbortReason::Shutdown,
                interrupt: true
            }
        );
        assert!(fx.contains(&Effect::StopProcess { grace: S(3) }));
        assert_eq!(l.state(), &State::Stopping);
        // The stop is confirmed last, once the process is gone.
        let fx = exit(&mut l, t0 + S(31));
        assert_eq!(steps(&fx), ["report stopped", "shutdown complete"]);
    }

    #[test]
    fn process_exit_while_draining_fails_the_jobs_and_stops() {
        let mut l = lifecycle(true);
        let t0 = Instant::now();
        boot(&mut l, t0);
        l.handle(Event::JobsStarted, t0);
        l.handle(Event::Shutdown { deadline: S(30) }, t0);
        let fx = exit(&mut l, t0 + S(1));
        assert_eq!(steps(&fx), ["abort", "report stopped", "shutdown complete"]);
        assert!(matches!(
            fx[0],
            Effect::AbortJobs {
                reason: AbortReason::Crash(_),
                ..
            }
        ));
        assert_eq!(l.phase(), InstancePhase::Stopped);
    }

    #[test]
    fn shutdown_without_a_process_completes_at_once() {
        let t0 = Instant::now();
        // Restarting.
        let mut l = lifecycle(true);
        boot(&mut l, t0);
        exit(&mut l, t0);
        assert!(matches!(l.state(), State::Restarting { .. }));
        let fx = l.handle(Event::Shutdown { deadline: S(1) }, t0);
        assert_eq!(phases(&fx), vec![InstancePhase::Stopped]);
        assert!(fx.contains(&Effect::ShutdownComplete));
        // The backoff timer of the old state no longer restarts anything.
        assert!(
            l.handle(
                Event::TimerFired {
                    timer: Timer::Backoff,
                    epoch: l.epoch() - 1
                },
                t0
            )
            .is_empty()
        );
        // Never started.
        let mut l = lifecycle(true);
        assert!(
            l.handle(Event::Shutdown { deadline: S(1) }, t0)
                .contains(&Effect::ShutdownComplete)
        );
    }

    #[test]
    fn shutdown_while_crashed_waits_for_the_exit() {
        let mut l = lifecycle(true);
        let t0 = Instant::now();
        boot(&mut l, t0);
        l.handle(
            Event::JobHung {
                generation: 1,
                job: JobId::new(),
                silent_for: S(1),
            },
            t0,
        );
        let fx = l.handle(Event::Shutdown { deadline: S(1) }, t0);
        assert_eq!(l.state(), &State::Stopping);
        assert!(!fx.contains(&Effect::ShutdownComplete));
        let fx = exit(&mut l, t0);
        assert!(fx.contains(&Effect::ShutdownComplete));
    }

    #[test]
    fn shutdown_during_the_launch_stops_the_process_once_it_is_handed_over() {
        let mut l = lifecycle(true);
        let t0 = Instant::now();
        l.handle(Event::Start, t0);
        let fx = l.handle(Event::Shutdown { deadline: S(1) }, t0);
        assert_eq!(fx[0], Effect::CancelProbe);
        assert_eq!(l.state(), &State::Stopping);
        let fx = l.handle(
            Event::Launched {
                generation: 1,
                url: "u".into(),
            },
            t0,
        );
        assert_eq!(fx, vec![Effect::StopProcess { grace: S(3) }]);
        let fx = exit(&mut l, t0);
        assert!(fx.contains(&Effect::ShutdownComplete));
    }

    #[test]
    fn attach_mode_reprobes_instead_of_stopping_a_process() {
        let mut l = lifecycle(false);
        let t0 = Instant::now();
        let fx = boot(&mut l, t0);
        // Unreachable twice: a crash, with no process to stop, straight to the backoff.
        let fx = fire(&mut l, &fx, Timer::Health, t0);
        let Effect::Ping { epoch } = fx[0] else {
            panic!()
        };
        let fx = l.handle(
            Event::HealthChecked {
                epoch,
                result: Err("refused".into()),
            },
            t0,
        );
        let fx = fire(&mut l, &fx, Timer::Health, t0);
        let Effect::Ping { epoch } = fx[0] else {
            panic!()
        };
        let fx = l.handle(
            Event::HealthChecked {
                epoch,
                result: Err("refused".into()),
            },
            t0,
        );
        assert_eq!(
            phases(&fx),
            vec![InstancePhase::Crashed, InstancePhase::Restarting]
        );
        assert!(!fx.iter().any(|e| matches!(e, Effect::StopProcess { .. })));
        let fx = fire(&mut l, &fx, Timer::Backoff, t0 + S(1));
        assert!(fx.contains(&Effect::Launch { generation: 2 }));
        ready(&mut l, t0 + S(1));
        let fx = l.handle(Event::Shutdown { deadline: S(1) }, t0);
        assert_eq!(phases(&fx), vec![InstancePhase::Stopped]);
        assert!(fx.contains(&Effect::ShutdownComplete));
    }

    #[test]
    fn an_operator_drain_lets_jobs_finish_then_stops_the_process_for_good() {
        let mut l = lifecycle(true);
        let t0 = Instant::now();
        boot(&mut l, t0);
        l.handle(Event::JobsStarted, t0);
        let fx = l.handle(Event::Drain, t0);
        assert_eq!(steps(&fx), ["report draining"]);
        assert_eq!(l.state(), &State::Retiring);
        assert!(!l.accepts_jobs());
        let fx = l.handle(Event::JobsIdle, t0 + S(5));
        assert_eq!(
            steps(&fx),
            ["stop"],
            "no deadline, no abort: the jobs finished"
        );
        assert_eq!(l.state(), &State::Parking);
        let fx = exit(&mut l, t0 + S(6));
        assert_eq!(steps(&fx), ["report stopped"]);
        assert_eq!(l.state(), &State::Parked);
        assert!(
            !fx.contains(&Effect::ShutdownComplete),
            "a drained instance is not shut down"
        );
        // It stays stopped: nothing is armed, and a second drain changes nothing.
        assert!(l.handle(Event::Drain, t0 + S(7)).is_empty());
        // The operator brings it back: a fresh launch at once.
        let fx = l.handle(Event::Restart, t0 + S(8));
        assert_eq!(
            steps(&fx),
            ["report starting", "launch", "arm ReadinessTimeout"]
        );
        ready(&mut l, t0 + S(8));
        // A shutdown of a parked instance completes at once.
        l.handle(Event::Drain, t0 + S(9));
        let fx = exit(&mut l, t0 + S(9));
        assert_eq!(l.state(), &State::Parked, "{fx:?}");
        let fx = l.handle(Event::Shutdown { deadline: S(1) }, t0 + S(10));
        assert_eq!(
            steps(&fx),
            ["shutdown complete"],
            "already reported stopped"
        );
        assert_eq!(l.state(), &State::Stopped);
    }

    #[test]
    fn an_operator_restart_hands_the_jobs_back_then_launches_afresh() {
        let mut l = lifecycle(true);
        let t0 = Instant::now();
        boot(&mut l, t0);
        l.handle(Event::JobsStarted, t0);
        let fx = l.handle(Event::Restart, t0);
        // The phase first, so the handed-back jobs are not placed here again.
        assert_eq!(steps(&fx), ["report restarting", "abort", "stop"]);
        assert!(matches!(
            fx[1],
            Effect::AbortJobs {
                reason: AbortReason::OperatorRestart,
                interrupt: false
            }
        ));
        let Effect::Report(update) = &fx[0] else {
            panic!("{fx:?}")
        };
        assert_eq!(update.detail.as_deref(), Some(OPERATOR_RESTART));
        let fx = exit(&mut l, t0 + S(1));
        assert_eq!(
            steps(&fx),
            ["report starting", "launch", "arm ReadinessTimeout"]
        );
        assert!(fx.contains(&Effect::Launch { generation: 2 }));
        ready(&mut l, t0 + S(1));
        // Not a crash: many restarts never trip the crash-loop breaker (2 restarts per minute).
        for n in 0..4u64 {
            let at = t0 + S(2 + n);
            l.handle(Event::Restart, at);
            exit(&mut l, at);
            ready(&mut l, at);
        }
        let fx = exit(&mut l, t0 + S(10));
        assert_eq!(
            phases(&fx),
            [InstancePhase::Crashed, InstancePhase::Restarting],
            "the first real crash restarts with backoff: {fx:?}"
        );
    }

    #[test]
    fn an_operator_restart_skips_the_backoff_and_the_quarantine() {
        let t0 = Instant::now();
        let mut l = lifecycle(true);
        boot(&mut l, t0);
        exit(&mut l, t0);
        assert!(matches!(l.state(), State::Restarting { .. }));
        let fx = l.handle(Event::Restart, t0);
        assert_eq!(
            steps(&fx),
            ["report starting", "launch", "arm ReadinessTimeout"]
        );
        // Crashed and waiting for the exit: launches once the process is gone.
        ready(&mut l, t0);
        l.handle(
            Event::JobHung {
                generation: l.generation(),
                job: JobId::new(),
                silent_for: S(1),
            },
            t0,
        );
        let fx = l.handle(Event::Restart, t0);
        assert_eq!(steps(&fx), ["report restarting"]);
        let fx = exit(&mut l, t0);
        assert!(fx.contains(&Effect::Launch { generation: 3 }), "{fx:?}");
        // Restarting while a launch is under way: that launch is dropped for a fresh one.
        let fx = l.handle(Event::Restart, t0);
        assert_eq!(
            steps(&fx),
            ["cancel probe", "launch", "arm ReadinessTimeout"],
            "starting → starting is no phase change"
        );
        assert!(!l.accepts_launch(3));
        assert!(l.accepts_launch(4));
    }

    #[test]
    fn drain_while_starting_stops_the_process_once_launched_and_a_crash_while_draining_parks() {
        let t0 = Instant::now();
        let mut l = lifecycle(true);
        l.handle(Event::Start, t0);
        let fx = l.handle(Event::Drain, t0);
        assert_eq!(steps(&fx), ["cancel probe", "report draining"]);
        let fx = l.handle(
            Event::Launched {
                generation: 1,
                url: "u".into(),
            },
            t0,
        );
        assert_eq!(steps(&fx), ["stop"]);
        exit(&mut l, t0);
        assert_eq!(l.state(), &State::Parked);

        let mut l = lifecycle(true);
        boot(&mut l, t0);
        l.handle(Event::JobsStarted, t0);
        l.handle(Event::Drain, t0);
        let fx = exit(&mut l, t0);
        assert_eq!(steps(&fx), ["abort", "report stopped"]);
        assert!(matches!(
            fx[0],
            Effect::AbortJobs {
                reason: AbortReason::Crash(CrashCause::Exited(_)),
                ..
            }
        ));
        assert_eq!(
            l.state(),
            &State::Parked,
            "a drained instance is not restarted"
        );

        // A shutdown while draining for the operator gets the shutdown's deadline.
        let mut l = lifecycle(true);
        boot(&mut l, t0);
        l.handle(Event::JobsStarted, t0);
        l.handle(Event::Drain, t0);
        let fx = l.handle(Event::Shutdown { deadline: S(4) }, t0);
        assert_eq!(l.state(), &State::Draining);
        assert_eq!(armed(&fx, Timer::DrainDeadline).map(|a| a.0), Some(S(4)));
    }

    #[test]
    fn attach_mode_drain_and_restart_need_no_process() {
        let t0 = Instant::now();
        let mut l = lifecycle(false);
        boot(&mut l, t0);
        let fx = l.handle(Event::Drain, t0);
        assert_eq!(steps(&fx), ["report stopped"]);
        let fx = l.handle(Event::Restart, t0);
        assert!(fx.contains(&Effect::Launch { generation: 2 }), "{fx:?}");
        ready(&mut l, t0);
        let fx = l.handle(Event::Restart, t0);
        assert_eq!(
            steps(&fx),
            [
                "report restarting",
                "abort",
                "report starting",
                "launch",
                "arm ReadinessTimeout"
            ]
        );
    }
}
