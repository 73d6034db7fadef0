//! Which GEMM implementation a run uses: chosen once (per run, by name) and recorded, so that a
//! run can be repeated bit for bit on a machine with another instruction set.

use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;

use crate::blocked::gemm_blocked_fused;
use crate::epilogue::{separate, Epilogue};
use crate::gemm::{gemm_matrixmultiply, MatMut, MatRef};
use crate::ParseError;

/// The environment variable that forces the blocked kernel [`Kernel::Auto`] takes.
pub const KERNEL_ENV_VAR: &str = "DRIFT_KERNEL";

/// A GEMM implementation, as named by `--kernel`: drift's blocked kernels (one per instruction
/// set), matrixmultiply, or `Auto`. Every name parses on every CPU, so that a configuration
/// written on one machine reads on another; whether this one can run it is
/// [`Kernel::supported`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kernel {
    /// The fastest blocked kernel this CPU has, or the one `DRIFT_KERNEL` forces.
    Auto,
    /// Blocked, AVX-512F, 8×32 register tile (x86-64).
    Avx512,
    /// Blocked, AVX2 with FMA, 6×16 register tile (x86-64).
    Avx2,
    /// Blocked, plain Rust, 4×8 register tile, any CPU.
    Portable,
    /// matrixmultiply's sgemm, parallel over fixed blocks of rows: the reference and fallback.
    MatrixMultiply,
}

impl Kernel {
    /// Every kernel, in the order of the names in messages.
    pub const ALL: [Kernel; 5] = [Kernel::Auto, Kernel::Avx512, Kernel::Avx2, Kernel::Portable, Kernel::MatrixMultiply];

    /// drift's own blocked kernels (`crate::blocked`), fastest first.
    pub const BLOCKED: [Kernel; 3] = [Kernel::Avx512, Kernel::Avx2, Kernel::Portable];

    /// The name used by `--kernel`, `DRIFT_KERNEL` and in provenance records.
    pub fn as_str(self) -> &'static str {
        match self {
            Kernel::Auto => "auto",
            Kernel::Avx512 => "avx512",
            Kernel::Avx2 => "avx2",
            Kernel::Portable => "portable",
            Kernel::MatrixMultiply => "matrixmultiply",
        }
    }

    /// The arithmetic class: kernels of one class give the same bits. AVX-512 and AVX2 are
    /// both `fma` (they share the reduction blocking); the portable kernel and matrixmultiply
    /// round in their own ways. `Auto` is `auto` until [resolved](Kernel::resolve).
    pub fn arithmetic(self) -> &'static str {
        match self {
            Kernel::Avx512 | Kernel::Avx2 => "fma",
            Kernel::Portable => "portable",
            Kernel::MatrixMultiply => "matrixmultiply",
            Kernel::Auto => "auto",
        }
    }

    /// Whether this is one of drift's blocked kernels ([`Kernel::BLOCKED`]).
    pub fn is_blocked(self) -> bool {
        Kernel::BLOCKED.contains(&self)
    }

    /// Whether this CPU has the kernel's instruction set (`avx512f`; `avx2` and `fma`). The
    /// x86 kernels are never supported on another architecture; the others always are.
    pub fn supported(self) -> bool {
        match self {
            Kernel::Auto | Kernel::Portable | Kernel::MatrixMultiply => true,
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 => std::arch::is_x86_feature_detected!("avx512f"),
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma"),
            #[cfg(not(target_arch = "x86_64"))]
            Kernel::Avx512 | Kernel::Avx2 => false,
        }
    }

    /// The fastest blocked kernel this CPU supports, ignoring `DRIFT_KERNEL`.
    pub fn best() -> Kernel {
        Kernel::BLOCKED.into_iter().find(|k| k.supported()).unwrap_or(Kernel::Portable)
    }

    /// The blocked kernel `DRIFT_KERNEL` forces (`portable`, `avx2` or `avx512`), or
    /// [`Kernel::best`] when it is unset or empty. Errors if the value names no blocked kernel or
    /// one this CPU lacks. Reads the environment on every call; a binary can call it at start-up
    /// to report a bad value cleanly before [`Kernel::detect`] would panic on it.
    pub fn from_env() -> Result<Kernel, KernelError> {
        match std::env::var(KERNEL_ENV_VAR) {
            Ok(s) if !s.is_empty() => match s.parse::<Kernel>() {
                Ok(k) if k.is_blocked() && k.supported() => Ok(k),
                Ok(k) if k.is_blocked() => Err(KernelError::EnvUnavailable(k)),
                _ => Err(KernelError::EnvUnknown(s)),
            },
            Ok(_) | Err(std::env::VarError::NotPresent) => Ok(Kernel::best()),
            Err(std::env::VarError::NotUnicode(s)) => Err(KernelError::EnvUnknown(s.to_string_lossy().into_owned())),
        }
    }

    /// [`Kernel::from_env`], decided once per process and cached: the kernel `Auto` runs.
    ///
    /// # Panics
    /// If `DRIFT_KERNEL` names no blocked kernel or one this CPU lacks: a forced choice is never
    /// silently replaced (tests that force `avx2` must run `avx2`). The panic repeats at every
    /// call while the environment stays wrong.
    pub fn detect() -> Kernel {
        static DETECTED: OnceLock<Kernel> = OnceLock::new();
        *DETECTED.get_or_init(|| Kernel::from_env().unwrap_or_else(|e| panic!("{e}")))
    }

    /// The concrete kernel: `Auto` becomes the best instruction set available (or the one
    /// `DRIFT_KERNEL` forces); a forced instruction set this CPU lacks is an error that says so.
    pub fn resolve(self) -> Result<Kernel, KernelError> {
        match self {
            Kernel::Auto => Kernel::from_env(),
            k if k.supported() => Ok(k),
            k => Err(KernelError::Unavailable(k)),
        }
    }

    /// Every kernel this CPU can run (for tests and benchmarks).
    pub fn available() -> Vec<Kernel> {
        Kernel::ALL.into_iter().filter(|&k| k != Kernel::Auto && k.supported()).collect()
    }
}

/// Why a kernel cannot run on this machine.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KernelError {
    /// `DRIFT_KERNEL` names none of the blocked kernels.
    #[error("{var}: unknown instruction set '{0}', expected portable, avx2 or avx512", var = KERNEL_ENV_VAR)]
    EnvUnknown(String),
    /// `DRIFT_KERNEL` forces a blocked kernel whose instruction set this CPU lacks.
    #[error("{var}: instruction set {0} is not supported by this CPU", var = KERNEL_ENV_VAR)]
    EnvUnavailable(Kernel),
    /// A kernel forced by name whose instruction set this CPU lacks.
    #[error("kernel {0} needs an instruction set this CPU does not have")]
    Unavailable(Kernel),
}

impl fmt::Display for Kernel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Kernel {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        Kernel::ALL.into_iter().find(|k| k.as_str() == s).ok_or_else(|| ParseError {
            what: "kernel",
            got: s.into(),
            expected: "auto, avx512, avx2, portable or matrixmultiply",
        })
    }
}

/// `C = A·B` with the given kernel (`beta = 0`: C is overwritten). Panics on mismatched shapes,
/// or if `kernel` names an instruction set this CPU lacks (check with [`Kernel::resolve`]).
pub fn gemm_with(kernel: Kernel, a: MatRef<'_>, b: MatRef<'_>, c: MatMut<'_>) {
    gemm_fused(kernel, a, b, c, Epilogue::None)
}

/// `C = epilogue(A·B)` with the given kernel: fused into the tiles by drift's kernels
/// ([`gemm_blocked_fused`]), a separate element-wise pass after matrixmultiply. Either way the
/// bits are those of the plain product followed by the pass. Panics as [`gemm_with`], or if the
/// epilogue's operands do not fit C.
pub fn gemm_fused(kernel: Kernel, a: MatRef<'_>, b: MatRef<'_>, c: MatMut<'_>, epilogue: Epilogue<'_>) {
    match kernel {
        Kernel::Auto => gemm_blocked_fused(Kernel::detect(), a, b, c, epilogue),
        Kernel::MatrixMultiply => separate(c, epilogue, |c| gemm_matrixmultiply(a, b, c)),
        _ => {
            assert!(kernel.supported(), "gemm: kernel {kernel} is not supported by this CPU");
            gemm_blocked_fused(kernel, a, b, c, epilogue)
        }
    }
}

/// `C = A·B` with the best kernel of this CPU ([`Kernel::Auto`]).
pub fn gemm(a: MatRef<'_>, b: MatRef<'_>, c: MatMut<'_>) {
    gemm_with(Kernel::Auto, a, b, c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernels_parse_by_name_and_unknown_names_are_typed() {
        for k in Kernel::ALL {
            assert_eq!(k.as_str().parse::<Kernel>(), Ok(k));
            assert_eq!(k.to_string(), k.as_str());
        }
        let e = "sse".parse::<Kernel>().unwrap_err();
        assert_eq!((e.what, e.got.as_str()), ("kernel", "sse"));
        assert_eq!(e.to_string(), "unknown kernel 'sse', expected auto, avx512, avx2, portable or matrixmultiply");
    }

    #[test]
    fn arithmetic_classes() {
        let class = Kernel::ALL.map(Kernel::arithmetic);
        assert_eq!(class, ["auto", "fma", "fma", "portable", "matrixmultiply"]);
    }

    #[test]
    fn resolve_errors_say_why() {
        assert_eq!(Kernel::Portable.resolve(), Ok(Kernel::Portable));
        assert_eq!(Kernel::MatrixMultiply.resolve(), Ok(Kernel::MatrixMultiply));
        let e = KernelError::Unavailable(Kernel::Avx512).to_string();
        assert_eq!(e, "kernel avx512 needs an instruction set this CPU does not have");
        let e = KernelError::EnvUnknown("sse".into()).to_string();
        assert_eq!(e, "DRIFT_KERNEL: unknown instruction set 'sse', expected portable, avx2 or avx512");
        let e = KernelError::EnvUnavailable(Kernel::Avx2).to_string();
        assert_eq!(e, "DRIFT_KERNEL: instruction set avx2 is not supported by this CPU");
        for k in [Kernel::Avx512, Kernel::Avx2] {
            assert_eq!(k.resolve(), if k.supported() { Ok(k) } else { Err(KernelError::Unavailable(k)) });
        }
        assert!(Kernel::best().is_blocked() && Kernel::best().supported());
    }
}
