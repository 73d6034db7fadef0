//! The training loop: Keras's training of the study (shuffled mini-batches, last partial batch
//! kept; SGD, momentum or Adam), written as a fixed sequence of kernel calls so a run replays bit
//! for bit.

use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering};
use std::time::Instant;

use drift_data::{epoch_order, fill_batch, Dataset, Split};
use drift_kernels::{
    bias_grad, gemm_fused, gemm_with, sgd_update, softmax_cross_entropy, team, BatchLoss, Epilogue, Kernel, LossMode,
    MatMut, MatRef,
};

use crate::checkpoint::TrainState;
use crate::config::{ConfigError, TrainConfig};
use crate::model::Params;
use crate::observer::{EpochRecord, Observer, ObserverError, RunStatus, RunSummary};
use crate::optimizer::{OptimizerState, UpdateRule};

/// Rows per forward pass when evaluating a whole split. Fixed, so the loss sums of an
/// evaluation are added in the same order on any machine.
const EVAL_ROWS: usize = 1000;

/// Why a run could not be carried out (a diverged run is not an error: see [`RunStatus`]).
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The configuration does not fit the data (a bad `--train-size`, say), or a checkpoint does
    /// not fit the configuration; `key` names the option or file at fault.
    #[error("{key}: {message}")]
    DataMismatch { key: &'static str, message: String },
    #[error("cannot start {threads} worker threads: {message}")]
    Threads { threads: usize, message: String },
    #[error("{0}")]
    Observer(ObserverError),
}

/// Activation and gradient buffers for batches of up to `rows` samples, allocated once.
pub struct Workspace {
    kernel: Kernel,
    sizes: Vec<usize>,
    rows: usize,
    /// `acts[0]` is the input batch; `acts[l]` the output of layer `l` (logits for the last).
    acts: Vec<Vec<f32>>,
    /// `dz[l - 1]` is `∂loss/∂Z_l`, the gradient at layer `l`'s pre-activation.
    dz: Vec<Vec<f32>>,
    dw: Vec<Vec<f32>>,
    db: Vec<Vec<f32>>,
    labels: Vec<u16>,
}

impl Workspace {
    /// Buffers for a network of layer sizes `sizes` and batches of up to `rows` samples, whose
    /// products run on `kernel`.
    pub fn new(sizes: &[usize], rows: usize, kernel: Kernel) -> Self {
        let pairs = sizes.windows(2);
        Workspace {
            kernel,
            sizes: sizes.to_vec(),
            rows,
            acts: sizes.iter().map(|&s| vec![0.0; rows * s]).collect(),
            dz: sizes[1..].iter().map(|&s| vec![0.0; rows * s]).collect(),
            dw: pairs.clone().map(|p| vec![0.0; p[0] * p[1]]).collect(),
            db: sizes[1..].iter().map(|&s| vec![0.0; s]).collect(),
            labels: vec![0; rows],
        }
    }

    /// Loads samples `indices` of `split` as the current batch.
    pub fn load_batch(&mut self, split: &Split, indices: &[u32]) {
        let rows = indices.len();
        assert!(rows <= self.rows, "batch of {rows} rows in a workspace for {}", self.rows);
        fill_batch(split, indices, &mut self.acts[0][..rows * self.sizes[0]], &mut self.labels[..rows]);
    }

    /// Loads an explicit batch (for tests and reference comparisons).
    pub fn set_batch(&mut self, x: &[f32], labels: &[u16]) {
        let rows = labels.len();
        assert!(rows <= self.rows && x.len() == rows * self.sizes[0], "set_batch: shapes");
        self.acts[0][..x.len()].copy_from_slice(x);
        self.labels[..rows].copy_from_slice(labels);
    }

    /// Forward pass of the first `rows` loaded samples; returns the logits (`rows × classes`).
    pub fn forward(&mut self, params: &Params, rows: usize) -> &[f32] {
        let last = params.layers.len();
        for (l, layer) in params.layers.iter().enumerate() {
            let (inputs, outputs) = self.acts.split_at_mut(l + 1);
            let x = &inputs[l][..rows * layer.fan_in];
            let z = &mut outputs[0][..rows * layer.fan_out];
            // Z = X·Wᵀ + b (W is fan_out × fan_in, so Wᵀ is a strided view), through the ReLU
            // for a hidden layer; both applied to each tile of Z as it is finished.
            let epilogue = if l + 1 < last { Epilogue::BiasRelu(&layer.b) } else { Epilogue::Bias(&layer.b) };
            gemm_fused(
                self.kernel,
                MatRef::new(x, rows, layer.fan_in),
                MatRef::new(&layer.w, layer.fan_out, layer.fan_in).t(),
                MatMut::new(z, rows, layer.fan_out),
                epilogue,
            );
        }
        &self.acts[last][..rows * self.sizes[last]]
    }

    /// Forward pass and loss of the first `rows` loaded samples, leaving `∂loss/∂logits` of the
    /// batch-mean loss in the last `dz`.
    fn forward_loss(&mut self, params: &Params, rows: usize, mode: LossMode) -> BatchLoss {
        self.forward(params, rows);
        let last = params.layers.len();
        let classes = self.sizes[last];
        softmax_cross_entropy(
            &self.acts[last][..rows * classes],
            &self.labels[..rows],
            mode,
            1.0 / rows as f32,
            &mut self.dz[last - 1][..rows * classes],
        )
    }

    /// `dz[l - 1] = (dZ_l · W_l)` masked by the ReLU of layer `l` (whose output is `acts[l]`):
    /// the gradient at layer `l`'s pre-activation, from the one above it.
    fn backward_data(&mut self, w: &[f32], l: usize, rows: usize) {
        let (fan_in, fan_out) = (self.sizes[l], self.sizes[l + 1]);
        let (below, here) = self.dz.split_at_mut(l);
        gemm_fused(
            self.kernel,
            MatRef::new(&here[0][..rows * fan_out], rows, fan_out),
            MatRef::new(w, fan_out, fan_in),
            MatMut::new(&mut below[l - 1][..rows * fan_in], rows, fan_in),
            Epilogue::ReluMask(&self.acts[l][..rows * fan_in]),
        );
    }

    /// Forward and backward of the first `rows` loaded samples: the loss of the batch mean and
    /// its gradients, left in [`Workspace::dw`] and [`Workspace::db`].
    pub fn gradients(&mut self, params: &Params, rows: usize, mode: LossMode) -> BatchLoss {
        // As in `train_step`, the products on one team.
        team(|| self.gradients_on_team(params, rows, mode))
    }

    fn gradients_on_team(&mut self, params: &Params, rows: usize, mode: LossMode) -> BatchLoss {
        let loss = self.forward_loss(params, rows, mode);
        for l in (0..params.layers.len()).rev() {
            let (fan_in, fan_out) = (self.sizes[l], self.sizes[l + 1]);
            let dz = &self.dz[l][..rows * fan_out];
            // dW = dZᵀ·X (fan_out × fan_in), db = column sums of dZ.
            gemm_with(
                self.kernel,
                MatRef::new(dz, rows, fan_out).t(),
                MatRef::new(&self.acts[l][..rows * fan_in], rows, fan_in),
                MatMut::new(&mut self.dw[l], fan_out, fan_in),
            );
            bias_grad(dz, &mut self.db[l]);
            if l > 0 {
                self.backward_data(&params.layers[l].w, l, rows);
            }
        }
        loss
    }

    /// One SGD step on the first `rows` loaded samples: what [`Workspace::gradients`] followed
    /// by [`Workspace::apply_sgd`] computes, bit for bit, with each weight update taken straight
    /// from the weight-gradient tiles ([`Epilogue::Sgd`]) so that dW is never stored or re-read.
    /// Layer by layer from the top: the gradient below first (it needs the old `W_l`), then the
    /// step on `W_l` and `b_l`. Returns the batch's loss; when its sum is not finite the
    /// parameters are left unchanged (the run has diverged).
    pub fn train_step(&mut self, params: &mut Params, rows: usize, mode: LossMode, lr: f32) -> BatchLoss {
        // The step's products on one team of the pool's threads, without a fork-join each.
        team(|| self.train_step_on_team(params, rows, mode, lr))
    }

    fn train_step_on_team(&mut self, params: &mut Params, rows: usize, mode: LossMode, lr: f32) -> BatchLoss {
        let loss = self.forward_loss(params, rows, mode);
        if !loss.loss_sum.is_finite() {
            return loss;
        }
        for l in (0..params.layers.len()).rev() {
            let (fan_in, fan_out) = (self.sizes[l], self.sizes[l + 1]);
            bias_grad(&self.dz[l][..rows * fan_out], &mut self.db[l]);
            if l > 0 {
                self.backward_data(&params.layers[l].w, l, rows);
            }
            let layer = &mut params.layers[l];
            gemm_fused(
                self.kernel,
                MatRef::new(&self.dz[l][..rows * fan_out], rows, fan_out).t(),
                MatRef::new(&self.acts[l][..rows * fan_in], rows, fan_in),
                MatMut::new(&mut layer.w, fan_out, fan_in),
                Epilogue::Sgd { lr },
            );
            sgd_update(&mut layer.b, &self.db[l], lr);
        }
        loss
    }

    /// One step of `rule` on the first `rows` loaded samples, `state` its optimiser state. SGD
    /// takes the fused path ([`Workspace::train_step`]); momentum and Adam need dW whole, so
    /// they compute the gradients ([`Workspace::gradients`]) and then update in element-wise
    /// passes. When the loss is not finite the parameters and the state are left unchanged.
    pub fn optimizer_step(
        &mut self,
        params: &mut Params,
        state: &mut OptimizerState,
        rule: UpdateRule,
        rows: usize,
        mode: LossMode,
    ) -> BatchLoss {
        if let UpdateRule::Sgd { lr } = rule {
            return self.train_step(params, rows, mode, lr as f32);
        }
        let loss = self.gradients(params, rows, mode);
        if loss.loss_sum.is_finite() {
            state.apply(rule, params, &self.dw, &self.db);
        }
        loss
    }

    /// Weight gradients of the last [`Workspace::gradients`] call, per layer (`fan_out × fan_in`).
    pub fn dw(&self) -> &[Vec<f32>] {
        &self.dw
    }

    /// Bias gradients of the last [`Workspace::gradients`] call, per layer.
    pub fn db(&self) -> &[Vec<f32>] {
        &self.db
    }

    /// `params ← params − lr · gradients`.
    pub fn apply_sgd(&self, params: &mut Params, lr: f32) {
        for (layer, (dw, db)) in params.layers.iter_mut().zip(self.dw.iter().zip(&self.db)) {
            sgd_update(&mut layer.w, dw, lr);
            sgd_update(&mut layer.b, db, lr);
        }
    }
}

/// Mean loss and accuracy over a set of samples.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Evaluation {
    pub loss: f64,
    pub acc: f64,
}

/// Evaluates the first `n` samples of `split` in fixed chunks of 1000, loss sums added in order.
pub fn evaluate(params: &Params, split: &Split, n: usize, mode: LossMode, ws: &mut Workspace) -> Evaluation {
    let mut total = BatchLoss::default();
    let indices: Vec<u32> = (0..n as u32).collect();
    for chunk in indices.chunks(ws.rows) {
        ws.load_batch(split, chunk);
        let rows = chunk.len();
        let classes = ws.sizes[ws.sizes.len() - 1];
        team(|| ws.forward(params, rows));
        let logits = &ws.acts[ws.sizes.len() - 1][..rows * classes];
        let part = softmax_cross_entropy(logits, &ws.labels[..rows], mode, 1.0, &mut []);
        total.loss_sum += part.loss_sum;
        total.correct += part.correct;
    }
    Evaluation { loss: total.loss_sum / n as f64, acc: total.correct as f64 / n as f64 }
}

/// Trains a network on `data` as `config` says, calling `observer` before training, after
/// every epoch, and at the end. Runs on a pool of `config.threads` threads (0: all cores).
pub fn train(config: &TrainConfig, data: &Dataset, observer: &mut dyn Observer) -> Result<RunSummary, TrainError> {
    train_with(config, data, observer, None, RunControl::default())
}

/// What may steer a run from outside while it trains, between batches or epochs; neither ever
/// changes a result bit.
#[derive(Clone, Copy, Debug, Default)]
pub struct RunControl<'a> {
    /// Once set, the run stops between two batches: the observer receives a last
    /// [`Observer::checkpoint`] and the run ends [`RunStatus::Interrupted`].
    pub stop: Option<&'a AtomicBool>,
    /// The cores of the machine shared with other runs: the run holds its threads' cores and
    /// takes any the others leave idle, between two epochs.
    pub cores: Option<&'a SpareCores>,
}

/// The cores of one machine shared by the runs of a sweep trained on it. Each run holds the
/// cores its threads use; once the sweep has no run left to start ([`SpareCores::close`]), the
/// cores that finished runs give back go to the runs still training, which take them at their
/// next epoch. So the last runs of a sweep do not leave cores idle, and since a run's thread
/// count never changes its bits, neither does when it takes them.
#[derive(Debug)]
pub struct SpareCores {
    /// Cores less the threads of the runs training: below zero when more threads run than
    /// there are cores (`--jobs` above the core count).
    idle: AtomicIsize,
    closed: AtomicBool,
}

impl SpareCores {
    /// A machine of `cores` cores, none held yet.
    pub fn new(cores: usize) -> Self {
        SpareCores { idle: AtomicIsize::new(cores as isize), closed: AtomicBool::new(false) }
    }

    /// No run will start any more: idle cores may go to the runs still training.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
    }

    /// Cores no run holds.
    pub fn idle(&self) -> usize {
        self.idle.load(Ordering::Acquire).max(0) as usize
    }

    fn hold(&self, cores: usize) {
        self.idle.fetch_sub(cores as isize, Ordering::AcqRel);
    }

    fn release(&self, cores: usize) {
        self.idle.fetch_add(cores as isize, Ordering::AcqRel);
    }

    /// Every idle core, once the sweep is closed; none before.
    fn take(&self) -> usize {
        if !self.closed.load(Ordering::Acquire) {
            return 0;
        }
        let taken = self.idle.fetch_update(Ordering::AcqRel, Ordering::Acquire, |idle| (idle > 0).then_some(0));
        taken.map_or(0, |idle| idle as usize)
    }
}

/// [`train`], continuing from `resume` (a checkpoint of this configuration) if given, steered by
/// `control` (stop between batches, cores taken between epochs). A resumed run produces the same
/// bits as one that never stopped, whatever its threads.
pub fn train_with(
    config: &TrainConfig,
    data: &Dataset,
    observer: &mut dyn Observer,
    resume: Option<TrainState>,
    control: RunControl<'_>,
) -> Result<RunSummary, TrainError> {
    config.validate()?;
    let mut threads = match config.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    if let Some(cores) = control.cores {
        cores.hold(threads);
    }
    let result = train_on(config, data, observer, resume, control, &mut threads);
    if let Some(cores) = control.cores {
        cores.release(threads);
    }
    result
}

/// The run on a pool of `threads` threads, grown between epochs by the cores `control` offers;
/// `threads` ends as the cores the run holds.
fn train_on(
    config: &TrainConfig,
    data: &Dataset,
    observer: &mut dyn Observer,
    resume: Option<TrainState>,
    control: RunControl<'_>,
    threads: &mut usize,
) -> Result<RunSummary, TrainError> {
    let pool = |threads: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .map_err(|e| TrainError::Threads { threads, message: e.to_string() })
    };
    let mut workers = pool(*threads)?;
    let mut training = workers.install(|| Training::start(config, data, observer, resume))?;
    loop {
        if let Some(summary) = workers.install(|| training.epoch(observer, control.stop))? {
            return Ok(summary);
        }
        let more = control.cores.map_or(0, SpareCores::take);
        if more > 0 {
            *threads += more;
            workers = pool(*threads)?;
        }
    }
}

/// The number of training samples a configuration uses, checked against the data (the batch
/// must fit in it too).
pub fn effective_train_size(config: &TrainConfig, data: &Dataset) -> Result<usize, TrainError> {
    let available = data.train.len();
    let n = match config.train_size {
        Some(n) if n > available => {
            return Err(TrainError::DataMismatch {
                key: "train-size",
                message: format!("{n} exceeds the {available} training samples of {}", data.name),
            })
        }
        Some(n) => n,
        None => available,
    };
    if config.batch_size > n {
        return Err(TrainError::DataMismatch {
            key: "batch",
            message: format!("{} is larger than the {n} training samples used", config.batch_size),
        });
    }
    Ok(n)
}

/// A run between two epochs: what the training loop carries from one epoch to the next.
struct Training<'a> {
    config: &'a TrainConfig,
    data: &'a Dataset,
    /// Training samples used.
    n: usize,
    ws: Workspace,
    eval_ws: Workspace,
    state: TrainState,
    started: Instant,
    /// Wall seconds of the run before this process took it up, less `started`'s offset.
    wall_before: f64,
}

impl<'a> Training<'a> {
    /// A fresh run (its initial weights observed, evaluated and checkpointed as epoch 0) or the
    /// checked continuation of `resume`.
    fn start(
        config: &'a TrainConfig,
        data: &'a Dataset,
        observer: &mut dyn Observer,
        resume: Option<TrainState>,
    ) -> Result<Self, TrainError> {
        let started = Instant::now();
        let n = effective_train_size(config, data)?;
        let sizes = Params::sizes(data.input_dim, config.width, config.depth, data.classes);
        let kernel = config.resolved_kernel();
        let ws = Workspace::new(&sizes, config.batch_size, kernel);
        let mut eval_ws = Workspace::new(&sizes, EVAL_ROWS, kernel);
        let state = match resume {
            Some(state) => {
                let expected: Vec<(usize, usize)> = sizes.windows(2).map(|p| (p[0], p[1])).collect();
                let shape = |p: &Params| p.layers.iter().map(|l| (l.fan_in, l.fan_out)).collect::<Vec<_>>();
                let found = shape(&state.params);
                let buffers = std::iter::once(&state.init).chain(state.optimizer.buffers());
                if found != expected || buffers.into_iter().any(|p| shape(p) != expected) {
                    return Err(TrainError::DataMismatch {
                        key: "checkpoint",
                        message: format!("layer sizes {found:?}, expected {expected:?}"),
                    });
                }
                if state.optimizer.optimizer() != config.optimizer {
                    return Err(TrainError::DataMismatch {
                        key: "checkpoint",
                        message: format!(
                            "holds {} state, the run uses {}",
                            state.optimizer.optimizer(),
                            config.optimizer
                        ),
                    });
                }
                state
            }
            None => {
                let init = Params::init(&sizes, config.seed, config.init, config.mask);
                observed(observer.start(&init))?;
                let epoch_started = Instant::now();
                let before_train = evaluate(&init, &data.train, n, config.loss, &mut eval_ws);
                let before_test = evaluate(&init, &data.test, data.test.len(), config.loss, &mut eval_ws);
                let record = EpochRecord {
                    epoch: 0,
                    train_loss: before_train.loss,
                    train_acc: before_train.acc,
                    test_loss: before_test.loss,
                    test_acc: before_test.acc,
                    seconds: epoch_started.elapsed().as_secs_f64(),
                };
                observed(observer.epoch(&record, &init, &init))?;
                let state = TrainState {
                    epochs_done: 0,
                    batch: 0,
                    loss_sum: 0.0,
                    correct: 0,
                    seen: 0,
                    wall_seconds: started.elapsed().as_secs_f64(),
                    optimizer: OptimizerState::new(config.update_rule(), &init),
                    params: init.clone(),
                    init,
                };
                observed(observer.checkpoint(&state))?;
                state
            }
        };
        let wall_before = state.wall_seconds - started.elapsed().as_secs_f64();
        Ok(Training { config, data, n, ws, eval_ws, state, started, wall_before })
    }

    fn wall(&self) -> f64 {
        self.wall_before + self.started.elapsed().as_secs_f64()
    }

    /// The next epoch (or the rest of an interrupted one), observed and checkpointed; the run's
    /// summary when it has ended: all epochs done, diverged, at its target loss, or stopped
    /// between two batches once `stop` is set (checkpointed there).
    fn epoch(
        &mut self,
        observer: &mut dyn Observer,
        stop: Option<&AtomicBool>,
    ) -> Result<Option<RunSummary>, TrainError> {
        let (config, data, n) = (self.config, self.data, self.n);
        if self.state.epochs_done >= config.epochs {
            return self.finish(observer, RunStatus::Completed).map(Some);
        }
        let rule = config.update_rule();
        let mut status = RunStatus::Completed;
        let epoch = self.state.epochs_done + 1;
        let epoch_started = Instant::now();
        let order = epoch_order(n, config.seed, epoch);
        for batch in order.chunks(config.batch_size).skip(self.state.batch as usize) {
            if stop.is_some_and(|s| s.load(Ordering::Relaxed)) {
                self.state.wall_seconds = self.wall();
                observed(observer.checkpoint(&self.state))?;
                return Ok(Some(RunSummary {
                    status: RunStatus::Interrupted,
                    epochs_done: self.state.epochs_done,
                    wall_seconds: self.state.wall_seconds,
                }));
            }
            let state = &mut self.state;
            self.ws.load_batch(&data.train, batch);
            let loss = self.ws.optimizer_step(&mut state.params, &mut state.optimizer, rule, batch.len(), config.loss);
            // Keras's epoch loss: batch means weighted by batch size, i.e. the per-sample mean.
            state.loss_sum += loss.loss_sum;
            state.correct += loss.correct as u64;
            state.seen += batch.len() as u64;
            state.batch += 1;
            if !loss.loss_sum.is_finite() {
                status = RunStatus::Diverged;
                break;
            }
            observer.batch(epoch, state.seen as usize, n);
        }
        let state = &mut self.state;
        if !state.params.all_finite() {
            status = RunStatus::Diverged;
        }
        let test = evaluate(&state.params, &data.test, data.test.len(), config.loss, &mut self.eval_ws);
        let record = EpochRecord {
            epoch,
            train_loss: state.loss_sum / state.seen as f64,
            train_acc: state.correct as f64 / state.seen as f64,
            test_loss: test.loss,
            test_acc: test.acc,
            seconds: epoch_started.elapsed().as_secs_f64(),
        };
        observed(observer.epoch(&record, &state.init, &state.params))?;
        state.epochs_done = epoch;
        (state.batch, state.loss_sum, state.correct, state.seen) = (0, 0.0, 0, 0);
        self.state.wall_seconds = self.wall();
        // A run that ends here writes no checkpoint of this epoch: resumed after a crash, it
        // repeats the epoch from the last one and ends at the same bits.
        if status == RunStatus::Diverged || config.reaches_target(record.train_loss) {
            return self.finish(observer, status).map(Some);
        }
        observed(observer.checkpoint(&self.state))?;
        Ok(None)
    }

    fn finish(&self, observer: &mut dyn Observer, status: RunStatus) -> Result<RunSummary, TrainError> {
        let summary = RunSummary { status, epochs_done: self.state.epochs_done, wall_seconds: self.wall() };
        observed(observer.finish(&summary, &self.state.init, &self.state.params))?;
        Ok(summary)
    }
}

fn observed(r: Result<(), ObserverError>) -> Result<(), TrainError> {
    r.map_err(TrainError::Observer)
}

#[cfg(test)]
mod tests {
    use super::SpareCores;

    #[test]
    fn spare_cores_go_to_running_runs_only_once_the_sweep_is_closed() {
        let cores = SpareCores::new(2);
        cores.hold(1);
        cores.hold(1);
        assert_eq!((cores.idle(), cores.take()), (0, 0), "both cores held");
        cores.release(1);
        assert_eq!(cores.take(), 0, "not closed: the core waits for the sweep's next run");
        cores.close();
        assert_eq!(cores.take(), 1);
        assert_eq!((cores.idle(), cores.take()), (0, 0), "taken once");
    }

    #[test]
    fn more_threads_than_cores_are_counted_back_exactly() {
        // --jobs 3 on two cores: three single-thread runs.
        let cores = SpareCores::new(2);
        cores.close();
        (0..3).for_each(|_| cores.hold(1));
        cores.release(1);
        assert_eq!(cores.take(), 0, "two runs still hold the two cores");
        cores.release(1);
        assert_eq!(cores.take(), 1);
        cores.release(2);
        assert_eq!(cores.idle(), 2);
    }
}
