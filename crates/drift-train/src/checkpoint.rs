//! [`TrainState`]: where a run stands, enough to continue it bit for bit, and its binary form.
//!
//! Nothing else is needed to continue: the order of epoch `e` comes from the stream
//! `shuffle/epoch=e` of the seed (so the RNG state is the epoch number), the partial sums
//! of an interrupted epoch are stored as they were, and so is the optimiser's state.
//!
//! The encoding is a fixed little-endian layout ending in the SHA-256 of what precedes it, and
//! names the run id and the drift version: a checkpoint of another configuration or version,
//! or a damaged one, is refused, never loaded.

use sha2::{Digest, Sha256};

use crate::model::{Layer, Params};
use crate::optimizer::OptimizerState;

const MAGIC: &[u8; 8] = b"DRIFTCKP";
/// Layout 2 added the optimiser's state after the parameters.
const LAYOUT: u32 = 2;

/// A run between two batches: `epochs_done` whole epochs, then `batch` batches of the next.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainState {
    pub epochs_done: u32,
    /// Batches of epoch `epochs_done + 1` already applied (0 at an epoch boundary).
    pub batch: u64,
    /// Running sums of that epoch: batch losses, correct predictions, samples.
    pub loss_sum: f64,
    pub correct: u64,
    pub seen: u64,
    /// Wall-clock seconds spent so far (a wall-clock figure, like `runs.wall_seconds`).
    pub wall_seconds: f64,
    pub init: Params,
    pub params: Params,
    pub optimizer: OptimizerState,
}

/// Why a checkpoint cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("not a drift checkpoint, or a damaged one ({0})")]
    Damaged(&'static str),
    #[error("has layout {found}, this drift reads layout {expected} only; the run must start again")]
    Layout { found: u32, expected: u32 },
    #[error(
        "written by drift {found}, this is drift {expected}; a run continues only with the version that started it"
    )]
    Version { found: String, expected: String },
    #[error("belongs to run {found}, not to run {expected} (another configuration)")]
    OtherRun { found: String, expected: String },
    #[error("cannot be read ({0}); it is left as it is")]
    Unreadable(String),
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn put_params(out: &mut Vec<u8>, params: &Params) {
    out.extend_from_slice(&(params.layers.len() as u32).to_le_bytes());
    for layer in &params.layers {
        out.extend_from_slice(&(layer.fan_in as u64).to_le_bytes());
        out.extend_from_slice(&(layer.fan_out as u64).to_le_bytes());
        for v in layer.w.iter().chain(&layer.b) {
            out.extend_from_slice(&v.to_bits().to_le_bytes());
        }
    }
}

/// Reads the fields back in order; every read is bounds-checked.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], CheckpointError> {
        if n > self.bytes.len() {
            return Err(CheckpointError::Damaged("truncated"));
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Ok(head)
    }
    fn u32(&mut self) -> Result<u32, CheckpointError> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("4 bytes")))
    }
    fn u64(&mut self) -> Result<u64, CheckpointError> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().expect("8 bytes")))
    }
    fn f64(&mut self) -> Result<f64, CheckpointError> {
        Ok(f64::from_bits(self.u64()?))
    }
    fn string(&mut self) -> Result<String, CheckpointError> {
        let n = self.u32()? as usize;
        String::from_utf8(self.take(n)?.to_vec()).map_err(|_| CheckpointError::Damaged("bad text"))
    }
    fn params(&mut self) -> Result<Params, CheckpointError> {
        let count = self.u32()?;
        let mut layers = Vec::new();
        for _ in 0..count {
            let (fan_in, fan_out) = (self.u64()? as usize, self.u64()? as usize);
            let n = fan_in.checked_mul(fan_out).and_then(|w| w.checked_add(fan_out));
            let bytes = self.take(n.and_then(|n| n.checked_mul(4)).ok_or(CheckpointError::Damaged("sizes"))?)?;
            let mut values: Vec<f32> =
                bytes.chunks_exact(4).map(|c| f32::from_bits(u32::from_le_bytes(c.try_into().expect("4")))).collect();
            let b = values.split_off(fan_in * fan_out);
            layers.push(Layer { fan_in, fan_out, w: values, b });
        }
        Ok(Params { layers })
    }
    fn optimizer(&mut self) -> Result<OptimizerState, CheckpointError> {
        Ok(match self.u32()? {
            0 => OptimizerState::Sgd,
            1 => OptimizerState::Momentum { velocity: self.params()? },
            2 => OptimizerState::Adam {
                steps: self.u64()?,
                beta1_power: self.f64()?,
                beta2_power: self.f64()?,
                m: self.params()?,
                v: self.params()?,
            },
            _ => return Err(CheckpointError::Damaged("unknown optimizer")),
        })
    }
}

/// The optimiser's state: a tag (0 SGD, 1 momentum, 2 Adam), then its numbers and buffers.
fn put_optimizer(out: &mut Vec<u8>, state: &OptimizerState) {
    match state {
        OptimizerState::Sgd => out.extend_from_slice(&0u32.to_le_bytes()),
        OptimizerState::Momentum { velocity } => {
            out.extend_from_slice(&1u32.to_le_bytes());
            put_params(out, velocity);
        }
        OptimizerState::Adam { steps, beta1_power, beta2_power, m, v } => {
            out.extend_from_slice(&2u32.to_le_bytes());
            for x in [*steps, beta1_power.to_bits(), beta2_power.to_bits()] {
                out.extend_from_slice(&x.to_le_bytes());
            }
            put_params(out, m);
            put_params(out, v);
        }
    }
}

impl TrainState {
    /// The state's bytes, tagged with the run id and this drift version.
    pub fn encode(&self, run_id: &str) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + 4 * (2 + self.optimizer.buffers().len()) * self.params.count());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&LAYOUT.to_le_bytes());
        put_str(&mut out, env!("CARGO_PKG_VERSION"));
        put_str(&mut out, run_id);
        out.extend_from_slice(&self.epochs_done.to_le_bytes());
        for v in [self.batch, self.loss_sum.to_bits(), self.correct, self.seen, self.wall_seconds.to_bits()] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        put_params(&mut out, &self.init);
        put_params(&mut out, &self.params);
        put_optimizer(&mut out, &self.optimizer);
        let digest = Sha256::digest(&out);
        out.extend_from_slice(&digest);
        out
    }

    /// The state in `bytes`, if they are an intact checkpoint of run `run_id` written by this
    /// drift version.
    pub fn decode(bytes: &[u8], run_id: &str) -> Result<TrainState, CheckpointError> {
        if bytes.len() < MAGIC.len() + 32 || &bytes[..MAGIC.len()] != MAGIC {
            return Err(CheckpointError::Damaged("no drift checkpoint header"));
        }
        let (body, digest) = bytes.split_at(bytes.len() - 32);
        if Sha256::digest(body).as_slice() != digest {
            return Err(CheckpointError::Damaged("checksum mismatch"));
        }
        let mut r = Reader { bytes: &body[MAGIC.len()..] };
        let layout = r.u32()?;
        if layout != LAYOUT {
            return Err(CheckpointError::Layout { found: layout, expected: LAYOUT });
        }
        let version = r.string()?;
        if version != env!("CARGO_PKG_VERSION") {
            return Err(CheckpointError::Version { found: version, expected: env!("CARGO_PKG_VERSION").into() });
        }
        let id = r.string()?;
        if id != run_id {
            return Err(CheckpointError::OtherRun { found: id, expected: run_id.into() });
        }
        let epochs_done = r.u32()?;
        let (batch, loss_sum, correct, seen, wall_seconds) = (r.u64()?, r.f64()?, r.u64()?, r.u64()?, r.f64()?);
        let (init, params, optimizer) = (r.params()?, r.params()?, r.optimizer()?);
        if !r.bytes.is_empty() {
            return Err(CheckpointError::Damaged("trailing bytes"));
        }
        Ok(TrainState { epochs_done, batch, loss_sum, correct, seen, wall_seconds, init, params, optimizer })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::init::Init;

    fn state_with(optimizer: OptimizerState) -> TrainState {
        let init = Params::init(&[5, 4, 4, 3], 1, Init::HeNormal, None);
        let mut params = init.clone();
        params.layers[0].w[0] = f32::NAN;
        let (loss_sum, wall_seconds) = (1.25, 0.5);
        TrainState { epochs_done: 3, batch: 2, loss_sum, correct: 7, seen: 9, wall_seconds, init, params, optimizer }
    }

    fn state() -> TrainState {
        state_with(OptimizerState::Sgd)
    }

    /// Every optimiser's state, with values that are not the initial ones (a NaN among them).
    fn optimizer_states() -> Vec<OptimizerState> {
        let buffer = |seed| {
            let mut p = Params::init(&[5, 4, 4, 3], seed, Init::LecunNormal, None);
            p.layers[2].b[1] = f32::NAN;
            p
        };
        vec![
            OptimizerState::Sgd,
            OptimizerState::Momentum { velocity: buffer(2) },
            OptimizerState::Adam {
                steps: 17,
                beta1_power: 0.9f64.powi(17),
                beta2_power: 0.1,
                m: buffer(3),
                v: buffer(4),
            },
        ]
    }

    #[test]
    fn round_trips_bit_for_bit() {
        for optimizer in optimizer_states() {
            let s = state_with(optimizer);
            let bytes = s.encode("abc");
            let back = TrainState::decode(&bytes, "abc").unwrap();
            // Through the bytes again: NaN ≠ NaN, so compare encodings, and the fields that hold no NaN.
            assert_eq!(back.encode("abc"), bytes);
            assert_eq!(back.optimizer.optimizer(), s.optimizer.optimizer());
            assert_eq!(back.params.layers[0].w[0].to_bits(), s.params.layers[0].w[0].to_bits());
            assert_eq!(back.init, s.init);
            assert_eq!((back.epochs_done, back.batch, back.loss_sum, back.correct, back.seen), (3, 2, 1.25, 7, 9));
            if let (
                OptimizerState::Adam { steps, beta1_power, .. },
                OptimizerState::Adam { steps: s0, beta1_power: p0, .. },
            ) = (&back.optimizer, &s.optimizer)
            {
                assert_eq!((steps, beta1_power.to_bits()), (s0, p0.to_bits()));
            }
        }
    }

    /// A checkpoint of the previous layout (no optimiser state) is refused by name, not
    /// misread.
    #[test]
    fn refuses_other_layouts() {
        let mut bytes = state().encode("abc");
        bytes.truncate(bytes.len() - 32);
        bytes[MAGIC.len()..MAGIC.len() + 4].copy_from_slice(&1u32.to_le_bytes());
        let digest = Sha256::digest(&bytes);
        bytes.extend_from_slice(&digest);
        let e = TrainState::decode(&bytes, "abc").unwrap_err();
        assert!(matches!(e, CheckpointError::Layout { found: 1, expected: 2 }), "{e}");
        assert!(e.to_string().contains("layout 1"), "{e}");
    }

    #[test]
    fn refuses_other_runs_damage_and_truncation() {
        let bytes = state().encode("abc");
        assert!(matches!(TrainState::decode(&bytes, "xyz"), Err(CheckpointError::OtherRun { .. })));
        let mut flipped = bytes.clone();
        flipped[40] ^= 1;
        assert!(matches!(TrainState::decode(&flipped, "abc"), Err(CheckpointError::Damaged(_))));
        for cut in [0, 10, bytes.len() / 2, bytes.len() - 1] {
            assert!(TrainState::decode(&bytes[..cut], "abc").is_err());
        }
    }
}
