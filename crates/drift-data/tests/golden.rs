//! Known answers for every random number and every generated pixel a run starts from.
//!
//! The determinism tests compare the build with itself; these compare it with fixed values, so
//! that a change in `rand_xoshiro`, in the stream derivation or in the synthetic generator fails
//! here instead of silently changing every result under the same run ids. A deliberate change
//! updates these values and `drift_train::FORMAT_VERSION` in the same commit.

use drift_data::epoch_order;
use drift_data::rng::Stream;
use drift_data::synthetic::{generate, Background, SyntheticConfig};
use sha2::{Digest, Sha256};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn named_streams_give_their_known_first_outputs() {
    let first = |seed: u64, name: &str| -> Vec<u64> {
        let mut s = Stream::new(seed, name);
        (0..3).map(|_| s.next_u64()).collect()
    };
    assert_eq!(
        first(0, "init/layer=1"),
        [0x347f90c3685bf9ac, 0x8eeeac20f0d012ec, 0xf867fb22f77194b9],
        "seed 0, init/layer=1"
    );
    assert_eq!(
        first(7, "init/layer=2"),
        [0x131291a489d8e7ba, 0x1a5fb51df10524e8, 0xf3f1c087e735bc73],
        "seed 7, init/layer=2"
    );
    assert_eq!(
        first(123_456_789, "shuffle/epoch=1"),
        [0x31ec3b1bb95ed9cb, 0xc521705065851ff9, 0xcb842f721b3b1874],
        "seed 123456789, shuffle/epoch=1"
    );
    assert_eq!(
        first(u64::MAX, "synthetic/prototypes"),
        [0x24c967236a10e5c3, 0x6c17af3f409d41cd, 0xddea774815b98277],
        "seed 2^64-1, synthetic/prototypes"
    );
}

#[test]
fn derived_draws_give_their_known_values() {
    let mut s = Stream::new(3, "derived");
    let uniform: Vec<u64> = (0..3).map(|_| s.uniform_f64().to_bits()).collect();
    assert_eq!(uniform, [0x3fd8607f04ac8aca, 0x3fe7a6f5401cd220, 0x3faf91bd00247820], "uniform_f64 bits");
    let range: Vec<u64> = (0..2).map(|_| s.uniform_range(-0.25, 0.25).to_bits()).collect();
    assert_eq!(range, [0x3fc783d44013e820, 0xbf61354ddb1c8680], "uniform_range(-0.25, 0.25) bits");
    let below: Vec<u64> = [1, 2, 3, 10, 1000, u64::MAX].iter().map(|&n| s.below(n)).collect();
    assert_eq!(below, [0, 1, 1, 9, 541, 0xe554_558a_f8fb_d419], "below(n)");
}

#[test]
fn a_small_epoch_is_shuffled_in_its_known_order() {
    assert_eq!(
        epoch_order(16, 7, 1),
        [7, 14, 15, 5, 1, 10, 0, 2, 9, 6, 3, 13, 12, 11, 4, 8],
        "16 samples, seed 7, epoch 1"
    );
    assert_eq!(
        epoch_order(16, 7, 2),
        [8, 15, 10, 9, 11, 2, 3, 5, 7, 6, 13, 12, 14, 1, 4, 0],
        "16 samples, seed 7, epoch 2"
    );
    let order = epoch_order(60_000, 0, 1000);
    let bytes: Vec<u8> = order.iter().flat_map(|i| i.to_le_bytes()).collect();
    assert_eq!(
        hex(&Sha256::digest(&bytes)),
        "ec5057d910939f1f0fcb5250c9ceb0b49c31821751b8efb6a0079d4806650828",
        "60000 samples, seed 0, epoch 1000 (SHA-256 of the u32 LE order)"
    );
}

/// SHA-256 of the images (then the labels, as u16 LE) of both splits of a small set.
fn digest_of(seed: u64, config: &SyntheticConfig) -> String {
    let data = generate(seed, config).expect("a valid synthetic configuration");
    let mut h = Sha256::new();
    for split in [&data.train, &data.test] {
        for i in 0..split.len() {
            h.update(split.image(i));
        }
        for label in split.labels() {
            h.update(label.to_le_bytes());
        }
    }
    hex(&h.finalize())
}

#[test]
fn synthetic_images_have_their_known_digests() {
    let mnist_shaped = SyntheticConfig { train: 200, test: 50, ..SyntheticConfig::default() };
    assert_eq!(
        digest_of(0, &mnist_shaped),
        "91bc32c0ffa75f9c56c55fa7b87ae5a971ac9dcc53a729f507fcd34c31038a8b",
        "seed 0, 28×28, 10 classes, 10% label noise"
    );
    let other = SyntheticConfig {
        train: 120,
        test: 30,
        classes: 5,
        side: 12,
        label_noise: 0.0,
        background: Background::White,
        imbalance: 4.0,
    };
    assert_eq!(
        digest_of(42, &other),
        "d6eb261f829d1f893f31b39fc5ba16fa8fb40c1e54ac3bbc7154ad6fcd6e338c",
        "seed 42, 12×12, 5 classes, white, imbalance 4"
    );
}
