//! A team of threads held for a stretch of work made of many short products (a training step),
//! so that each product starts on every core at once instead of through a fork-join.
//!
//! A product of a W = 512 step takes 15–430 µs; through rayon the second core began its first
//! task ≈ 8–11 µs after the caller (the time for an idle worker to find the job), and a product of
//! 128 × 10 × 512 lasts only a few times that. Inside [`team`], the pool's other threads wait in
//! a spin loop for the caller's next product, see it within a cache-line transfer, and take
//! their share of its tasks. Which thread runs which task never changes a bit: tasks write
//! disjoint parts of C and each is computed the same way wherever it runs.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::thread::ThreadId;

use rayon::prelude::*;

/// Runs `f` with the current rayon pool's other threads held as one team: every blocked product
/// `f` calls on this thread runs its tasks on the whole team without a fork-join. Between
/// products the team's threads spin (yielding after a while), so use it around work that is
/// mostly products, and not around other parallel work (a rayon call inside `f` finds the
/// other threads busy and runs on this one). Results are the same bits as without it.
///
/// Only a thread of a rayon pool leads a team (inside `ThreadPool::install`, as the trainer runs):
/// elsewhere, on a pool of one thread, or inside another `team`, this just calls `f`. (Teams led
/// from outside a pool would hold its threads against each other's rayon calls.)
///
/// A panic in `f` or in a product's task reaches the caller once every thread has left the
/// product; a task that panicked on a helper leaves its part of C unwritten while `f` goes on
/// to its end.
pub fn team<R>(f: impl FnOnce() -> R) -> R {
    let threads = rayon::current_num_threads();
    if threads < 2 || leading() || rayon::current_thread_index().is_none() {
        return f();
    }
    let team = Team::new(threads);
    rayon::in_place_scope(|scope| {
        for _ in 1..threads {
            scope.spawn(|_| team.help());
        }
        let _lead = Lead::start(&team);
        f()
    })
}

/// Runs `run(t)` for every task `t < tasks`, on the team this thread leads if there is one,
/// else on the current rayon pool through one fork-join (see [`Job`] for the schedule).
pub(crate) fn run_tasks(tasks: usize, run: &(dyn Fn(usize) + Sync)) {
    let team = LEADING.with(Cell::get);
    if team.is_null() {
        let job = Job::new(run, tasks, rayon::current_num_threads());
        (0..job.workers).into_par_iter().for_each(|w| {
            job.share(w);
            job.wait_done();
        });
    } else {
        // SAFETY: `LEADING` points at the team of the enclosing `team` call on this thread,
        // which outlives this call (`Lead` resets it before the team is dropped).
        let team = unsafe { &*team };
        team.lead(&Job::new(run, tasks, team.members));
    }
}

/// Whether this thread leads a team (inside [`team`]), whose products may then be split finer.
pub(crate) fn leading() -> bool {
    LEADING.with(|l| !l.get().is_null())
}

thread_local! {
    /// The team this thread leads, inside [`team`]; null outside.
    static LEADING: Cell<*const Team> = const { Cell::new(std::ptr::null()) };
}

/// One product's tasks. Worker `w` of `workers` owns the contiguous range `w·tasks/workers ..
/// (w+1)·tasks/workers` and takes its tasks in order through its cursor; when its range is
/// exhausted it helps with the others' ranges through theirs. So each thread keeps the same part
/// of C (and of the packed operands) from one product to the next — moving 64 KiB of C between
/// cores costs microseconds on the small products — and a late or slow thread is covered.
struct Job<'a> {
    run: &'a (dyn Fn(usize) + Sync),
    tasks: usize,
    workers: usize,
    cursors: Vec<AtomicUsize>,
    done: AtomicUsize,
}

impl<'a> Job<'a> {
    /// The tasks shared by `threads` threads (no more workers than tasks).
    fn new(run: &'a (dyn Fn(usize) + Sync), tasks: usize, threads: usize) -> Self {
        let workers = threads.clamp(1, tasks.max(1));
        let cursors = (0..workers).map(|w| AtomicUsize::new(w * tasks / workers)).collect();
        Job { run, tasks, workers, cursors, done: AtomicUsize::new(0) }
    }

    /// Runs tasks as worker `w` (any `w`; one past the workers only helps) until none is left.
    fn share(&self, w: usize) {
        /// Counts a task as done even if it panics, so that waiters stop and the panic can
        /// propagate.
        struct Done<'a>(&'a AtomicUsize);
        impl Drop for Done<'_> {
            fn drop(&mut self) {
                self.0.fetch_add(1, Ordering::Release);
            }
        }
        for v in (0..self.workers).map(|i| (w + i) % self.workers) {
            let end = (v + 1) * self.tasks / self.workers;
            loop {
                let t = self.cursors[v].fetch_add(1, Ordering::Relaxed);
                if t >= end {
                    break;
                }
                let _done = Done(&self.done);
                (self.run)(t);
            }
        }
    }

    /// Leaves every task not yet started unstarted: each cursor goes past its range.
    fn cancel(&self) {
        self.cursors.iter().for_each(|c| {
            c.fetch_max(self.tasks, Ordering::Relaxed);
        });
    }

    /// Spins until every task is done, rather than going to sleep: waking a sleeping thread
    /// costs ≈ 30 µs on a VM, which the caller would pay at the end of every product.
    fn wait_done(&self) {
        spin_until(WAIT_SPINS, || self.done.load(Ordering::Acquire) >= self.tasks);
    }
}

/// Spins before yielding while the leader or a helper waits for the others within a product.
const WAIT_SPINS: u32 = 1 << 14;

/// Spins before yielding while a helper waits for the next product: through the short gaps
/// between the products of a step, yielding in a long one (the leader's own serial work, or a
/// descheduled leader).
const HELPER_SPINS: u32 = 1 << 16;

/// Spins until `ready()`, yielding the core after `spins` tries (a descheduled peer needs it).
fn spin_until(spins: u32, mut ready: impl FnMut() -> bool) {
    let mut tries = 0u32;
    while !ready() {
        if tries < spins {
            tries += 1;
            std::hint::spin_loop();
        } else {
            std::thread::yield_now();
        }
    }
}

/// The state the leader and its helpers share.
struct Team {
    leader: ThreadId,
    members: usize,
    /// The product being run (a `Job` on the leader's stack), or null between products.
    job: AtomicPtr<()>,
    /// Bumped for each product, so that a helper enters each one once.
    generation: AtomicU64,
    /// Helpers inside a product; the leader waits for none before its `Job` goes away.
    active: AtomicUsize,
    /// Helpers seen so far, which gives each its index (1, 2, …) in the task ranges.
    joined: AtomicUsize,
    stop: AtomicBool,
}

impl Team {
    fn new(members: usize) -> Self {
        Team {
            leader: std::thread::current().id(),
            members,
            job: AtomicPtr::new(std::ptr::null_mut()),
            generation: AtomicU64::new(0),
            active: AtomicUsize::new(0),
            joined: AtomicUsize::new(1),
            stop: AtomicBool::new(false),
        }
    }

    /// Publishes `job`, runs its tasks with whoever joins, and returns once no helper can reach
    /// it any more.
    fn lead(&self, job: &Job<'_>) {
        self.job.store(std::ptr::from_ref(job).cast_mut().cast(), Ordering::SeqCst);
        self.generation.fetch_add(1, Ordering::Release);
        // A task that panics here must not unwind past `job` (and what its tasks borrow) while a
        // helper may still be in it: stop handing out tasks, then wait for the helpers below.
        let shared = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job.share(0)));
        match shared {
            Ok(()) => job.wait_done(),
            Err(_) => job.cancel(),
        }
        // A helper counts itself in `active` before it reads `job` (both SeqCst): it either
        // reads null or is seen here.
        self.job.store(std::ptr::null_mut(), Ordering::SeqCst);
        spin_until(WAIT_SPINS, || self.active.load(Ordering::SeqCst) == 0);
        if let Err(panic) = shared {
            std::panic::resume_unwind(panic);
        }
    }

    /// A helper's loop: join each new product until the leader stops the team.
    fn help(&self) {
        // The leader itself, running a helper job nobody else took (at the end of the scope, or
        // while it waits in some rayon call of its own): nothing to help with.
        if std::thread::current().id() == self.leader {
            return;
        }
        let me = self.joined.fetch_add(1, Ordering::Relaxed);
        let mut seen = 0;
        loop {
            let mut generation = seen;
            spin_until(HELPER_SPINS, || {
                generation = self.generation.load(Ordering::Acquire);
                generation != seen || self.stop.load(Ordering::Acquire)
            });
            if self.stop.load(Ordering::Acquire) {
                return;
            }
            seen = generation;
            self.active.fetch_add(1, Ordering::SeqCst);
            let _leave = Leave(&self.active);
            let job = self.job.load(Ordering::SeqCst);
            if !job.is_null() {
                // SAFETY: a non-null `job` is the leader's current `Job`, which stays alive until
                // `active` is back to zero (`lead`), and we are counted in it.
                unsafe { (*job.cast::<Job<'_>>()).share(me) };
            }
        }
    }
}

/// Takes a helper out of `active` when it leaves a product, even by a panic.
struct Leave<'a>(&'a AtomicUsize);

impl Drop for Leave<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Marks this thread as the team's leader; on drop (also by a panic in the leader's work)
/// unmarks it and stops the helpers, so that the scope can end.
struct Lead<'t>(&'t Team);

impl<'t> Lead<'t> {
    fn start(team: &'t Team) -> Self {
        LEADING.with(|l| l.set(team));
        Lead(team)
    }
}

impl Drop for Lead<'_> {
    fn drop(&mut self) {
        LEADING.with(|l| l.set(std::ptr::null()));
        self.0.stop.store(true, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::panic::{catch_unwind, AssertUnwindSafe};
    use std::time::{Duration, Instant};

    fn pool(threads: usize) -> rayon::ThreadPool {
        rayon::ThreadPoolBuilder::new().num_threads(threads).build().expect("rayon pool")
    }

    #[test]
    fn the_other_threads_take_tasks() {
        let helped = AtomicBool::new(false);
        pool(2).install(|| {
            let leader = rayon::current_thread_index();
            team(|| {
                let start = Instant::now();
                while !helped.load(Ordering::Relaxed) && start.elapsed() < Duration::from_secs(20) {
                    run_tasks(8, &|_| {
                        if rayon::current_thread_index() != leader {
                            helped.store(true, Ordering::Relaxed);
                        }
                        std::thread::sleep(Duration::from_micros(200));
                    });
                }
            });
        });
        assert!(helped.load(Ordering::Relaxed), "no task of a team ran on another thread in 20 s");
    }

    /// Four tasks, the first ending at once and the others not before `run_tasks` has returned
    /// (or half a second has passed); `fails(t)` says which one panics. Whether the panic left
    /// `run_tasks`, and how many tasks had started but not finished when it returned.
    fn run_failing(fails: &(dyn Fn(usize) -> bool + Sync)) -> (bool, usize) {
        let (started, finished, returned) = (AtomicUsize::new(0), AtomicUsize::new(0), AtomicBool::new(false));
        let left = catch_unwind(AssertUnwindSafe(|| {
            run_tasks(4, &|t| {
                started.fetch_add(1, Ordering::SeqCst);
                let start = Instant::now();
                std::thread::sleep(Duration::from_millis(5));
                while t != 0 && !returned.load(Ordering::SeqCst) && start.elapsed() < Duration::from_millis(500) {
                    std::thread::sleep(Duration::from_millis(1));
                }
                assert!(!fails(t), "task {t} fails");
                finished.fetch_add(1, Ordering::SeqCst);
            })
        }));
        let unfinished = started.load(Ordering::SeqCst) - finished.load(Ordering::SeqCst);
        returned.store(true, Ordering::SeqCst);
        (left.is_err(), unfinished)
    }

    /// The leader's task panics while a helper is inside another task: the panic leaves
    /// `run_tasks` only once the helper is out (what the tasks borrow outlives them). A helper's
    /// task panics: the panic reaches the caller of `team`. Either way the pool runs teams again.
    #[test]
    fn a_panicking_task_unwinds_after_the_helpers_have_left() {
        let pool = pool(2);
        let leaders = pool.install(|| {
            let leader = rayon::current_thread_index();
            team(|| run_failing(&|t| t == 0 && rayon::current_thread_index() == leader))
        });
        // Only the task that panicked: a helper still in its task would make two.
        assert_eq!(leaders, (true, 1), "(the panic left run_tasks, tasks unfinished when it did)");
        let helpers = catch_unwind(AssertUnwindSafe(|| {
            pool.install(|| {
                let leader = rayon::current_thread_index();
                team(|| run_failing(&|_| rayon::current_thread_index() != leader))
            })
        }));
        // A helper that joined too late for any task had nothing to fail.
        assert!(helpers.is_err() || helpers.is_ok_and(|r| r == (false, 0)), "a helper's panic was lost");
        let count = AtomicUsize::new(0);
        pool.install(|| {
            team(|| {
                run_tasks(16, &|_| {
                    count.fetch_add(1, Ordering::Relaxed);
                })
            })
        });
        assert_eq!(count.load(Ordering::Relaxed), 16, "the pool no longer runs a team's tasks");
    }

    /// Callers outside any pool (test threads, say) form no team: two of them at once, each with
    /// rayon work inside, finish.
    #[test]
    fn callers_outside_a_pool_run_without_a_team() {
        let (done, finished) = std::sync::mpsc::channel();
        for _ in 0..2 {
            let done = done.clone();
            std::thread::spawn(move || {
                for _ in 0..20 {
                    let sum: u64 = team(|| {
                        assert!(!leading(), "a team led from outside a pool");
                        (0..100_000u64).into_par_iter().sum()
                    });
                    assert_eq!(sum, 4_999_950_000);
                }
                done.send(()).expect("test alive");
            });
        }
        for _ in 0..2 {
            finished.recv_timeout(Duration::from_secs(60)).expect("a caller outside the pool hung");
        }
    }
}
