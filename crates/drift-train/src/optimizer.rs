//! The optimisers, as Keras defines them, and their state between steps.
//!
//! | optimiser | step (every weight and bias, element by element) |
//! |---|---|
//! | `sgd` | `w ← w − lr·g` |
//! | `momentum` | `v ← μ·v − lr·g`, `w ← w + v` (Keras `SGD(momentum=μ)`, Nesterov off) |
//! | `adam` | `t ← t+1`, `m ← β1·m + (1−β1)·g`, `v ← β2·v + (1−β2)·g²`, `α_t = lr·√(1−β2ᵗ)/(1−β1ᵗ)`, `w ← w − α_t·m/(√v + ε)` (Keras 2 `Adam`) |
//!
//! Precision, so that an independent replay can follow: `lr`, `μ`, `β1`, `β2`, `ε` are the
//! configured f64 values rounded to f32, as are `1−β1` and `1−β2` (formed in f64). Adam keeps
//! `β1ᵗ` and `β2ᵗ` as running f64 products (`βᵗ = βᵗ⁻¹·β`, no `powf`) and forms `α_t` in f64
//! (`lr · sqrt(1 − β2ᵗ) / (1 − β1ᵗ)`), rounded to f32 once per step. Everything element-wise is
//! f32, one rounding per operation, no FMA, in the order the formulas are written
//! ([`drift_kernels::momentum_update`], [`drift_kernels::adam_update`]).

use std::fmt;
use std::str::FromStr;

use drift_kernels::{adam_update, momentum_update, sgd_update, AdamStep, ParseError};

use crate::model::Params;

/// Which update rule a run trains with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Optimizer {
    #[default]
    Sgd,
    Momentum,
    Adam,
}

impl Optimizer {
    pub const ALL: [Optimizer; 3] = [Optimizer::Sgd, Optimizer::Momentum, Optimizer::Adam];

    pub fn as_str(self) -> &'static str {
        match self {
            Optimizer::Sgd => "sgd",
            Optimizer::Momentum => "momentum",
            Optimizer::Adam => "adam",
        }
    }
}

impl fmt::Display for Optimizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Optimizer {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        Optimizer::ALL.into_iter().find(|o| o.as_str() == s).ok_or_else(|| ParseError {
            what: "optimizer",
            got: s.into(),
            expected: "sgd, momentum or adam",
        })
    }
}

/// An optimiser with its hyper-parameters, as configured (f64; see the module doc for where
/// they are rounded).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum UpdateRule {
    Sgd { lr: f64 },
    Momentum { lr: f64, momentum: f64 },
    Adam { lr: f64, beta1: f64, beta2: f64, eps: f64 },
}

/// What an optimiser carries from one step to the next; part of the checkpoint.
#[derive(Clone, Debug, PartialEq)]
pub enum OptimizerState {
    Sgd,
    /// The velocity `v` of every weight and bias (zero at the start).
    Momentum {
        velocity: Params,
    },
    /// Steps taken `t`, the running products `β1ᵗ` and `β2ᵗ`, and the moments `m`, `v` (zero
    /// at the start).
    Adam {
        steps: u64,
        beta1_power: f64,
        beta2_power: f64,
        m: Params,
        v: Params,
    },
}

/// `params` with every value zero (the shape of an optimiser's buffers).
fn zeros_like(params: &Params) -> Params {
    let mut zeros = params.clone();
    for layer in &mut zeros.layers {
        layer.w.fill(0.0);
        layer.b.fill(0.0);
    }
    zeros
}

impl OptimizerState {
    /// The state before the first step of `rule` on parameters shaped like `params`.
    pub fn new(rule: UpdateRule, params: &Params) -> Self {
        match rule {
            UpdateRule::Sgd { .. } => OptimizerState::Sgd,
            UpdateRule::Momentum { .. } => OptimizerState::Momentum { velocity: zeros_like(params) },
            UpdateRule::Adam { .. } => OptimizerState::Adam {
                steps: 0,
                beta1_power: 1.0,
                beta2_power: 1.0,
                m: zeros_like(params),
                v: zeros_like(params),
            },
        }
    }

    /// The optimiser this state belongs to.
    pub fn optimizer(&self) -> Optimizer {
        match self {
            OptimizerState::Sgd => Optimizer::Sgd,
            OptimizerState::Momentum { .. } => Optimizer::Momentum,
            OptimizerState::Adam { .. } => Optimizer::Adam,
        }
    }

    /// The buffers the state holds, each shaped like the parameters.
    pub fn buffers(&self) -> Vec<&Params> {
        match self {
            OptimizerState::Sgd => vec![],
            OptimizerState::Momentum { velocity } => vec![velocity],
            OptimizerState::Adam { m, v, .. } => vec![m, v],
        }
    }

    /// One step of `rule` on `params` with the gradients `dw`, `db` (per layer, shaped like the
    /// weights and biases). Panics if `rule` is not this state's optimiser.
    pub fn apply(&mut self, rule: UpdateRule, params: &mut Params, dw: &[Vec<f32>], db: &[Vec<f32>]) {
        let grads = dw.iter().zip(db);
        match (self, rule) {
            (OptimizerState::Sgd, UpdateRule::Sgd { lr }) => {
                for (layer, (dw, db)) in params.layers.iter_mut().zip(grads) {
                    sgd_update(&mut layer.w, dw, lr as f32);
                    sgd_update(&mut layer.b, db, lr as f32);
                }
            }
            (OptimizerState::Momentum { velocity }, UpdateRule::Momentum { lr, momentum }) => {
                let (lr, momentum) = (lr as f32, momentum as f32);
                for ((layer, vel), (dw, db)) in params.layers.iter_mut().zip(&mut velocity.layers).zip(grads) {
                    momentum_update(&mut layer.w, &mut vel.w, dw, lr, momentum);
                    momentum_update(&mut layer.b, &mut vel.b, db, lr, momentum);
                }
            }
            (
                OptimizerState::Adam { steps, beta1_power, beta2_power, m, v },
                UpdateRule::Adam { lr, beta1, beta2, eps },
            ) => {
                *steps += 1;
                *beta1_power *= beta1;
                *beta2_power *= beta2;
                let step = AdamStep {
                    beta1: beta1 as f32,
                    one_minus_beta1: (1.0 - beta1) as f32,
                    beta2: beta2 as f32,
                    one_minus_beta2: (1.0 - beta2) as f32,
                    alpha: (lr * (1.0 - *beta2_power).sqrt() / (1.0 - *beta1_power)) as f32,
                    eps: eps as f32,
                };
                let moments = m.layers.iter_mut().zip(&mut v.layers);
                for ((layer, (m, v)), (dw, db)) in params.layers.iter_mut().zip(moments).zip(grads) {
                    adam_update(&mut layer.w, &mut m.w, &mut v.w, dw, step);
                    adam_update(&mut layer.b, &mut m.b, &mut v.b, db, step);
                }
            }
            (state, rule) => panic!("optimizer state {} applied with {rule:?}", state.optimizer()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::init::Init;

    #[test]
    fn names_round_trip_and_unknown_names_are_typed() {
        for o in Optimizer::ALL {
            assert_eq!(o.to_string().parse::<Optimizer>(), Ok(o));
        }
        let e = "rmsprop".parse::<Optimizer>().unwrap_err().to_string();
        assert_eq!(e, "unknown optimizer 'rmsprop', expected sgd, momentum or adam");
    }

    /// Adam's first step moves every weight with a gradient well above ε by almost exactly lr
    /// against its sign (m/√v = g/|g| after bias correction), and counts the step.
    #[test]
    fn adams_first_step_is_lr_against_the_sign() {
        let params = Params::init(&[6, 5, 3], 1, Init::GlorotUniform, None);
        let rule = UpdateRule::Adam { lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-7 };
        let mut state = OptimizerState::new(rule, &params);
        let mut after = params.clone();
        let dw: Vec<Vec<f32>> = params.layers.iter().map(|l| l.w.iter().map(|&w| w + 0.5).collect()).collect();
        let db: Vec<Vec<f32>> = params.layers.iter().map(|l| vec![-1.0; l.b.len()]).collect();
        state.apply(rule, &mut after, &dw, &db);
        for (l, (before, now)) in params.layers.iter().zip(&after.layers).enumerate() {
            for ((w0, w1), g) in before.w.iter().zip(&now.w).zip(&dw[l]) {
                assert!(((w0 - w1) - 0.01 * g.signum()).abs() < 1e-5, "{w0} → {w1} with g = {g}");
            }
            assert!(now.b.iter().all(|&b| (b - 0.01).abs() < 1e-6));
        }
        let OptimizerState::Adam { steps, beta1_power, beta2_power, .. } = state else { unreachable!() };
        assert_eq!((steps, beta1_power, beta2_power), (1, 0.9, 0.999));
    }

    /// Momentum with μ = 0 is SGD, bit for bit.
    #[test]
    fn momentum_zero_is_sgd() {
        let params = Params::init(&[7, 4, 3], 2, Init::HeNormal, None);
        let dw: Vec<Vec<f32>> = params.layers.iter().map(|l| l.w.iter().map(|&w| 0.3 - w).collect()).collect();
        let db: Vec<Vec<f32>> = params.layers.iter().map(|l| vec![0.25; l.b.len()]).collect();
        let (mut a, mut b) = (params.clone(), params.clone());
        OptimizerState::Sgd.apply(UpdateRule::Sgd { lr: 0.1 }, &mut a, &dw, &db);
        let rule = UpdateRule::Momentum { lr: 0.1, momentum: 0.0 };
        OptimizerState::new(rule, &params).apply(rule, &mut b, &dw, &db);
        assert_eq!(a, b);
        assert_ne!(a, params);
    }
}
