//! Which GEMM implementation a run uses: chosen once (per run, by name) and recorded, so that a
//! run can be repeated bit for bit on a machine with another instruction set.

use std::fmt;
use std::str::FromStr;

use crate::blocked::{gemm_blocked_fused, Isa, IsaError, ISA_ENV_VAR};
use crate::epilogue::{separate, Epilogue};
use crate::gemm::{gemm_matrixmultiply, MatMut, MatRef};
use crate::ParseError;

/// A GEMM implementation, as named by `--kernel`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kernel {
    /// The fastest instruction set this CPU has (honours `DRIFT_KERNEL`).
    Auto,
    Avx512,
    Avx2,
    Portable,
    /// matrixmultiply's sgemm, parallel over fixed blocks of rows: the reference and fallback.
    MatrixMultiply,
}

impl Kernel {
    pub fn as_str(self) -> &'static str {
        match self {
            Kernel::Auto => "auto",
            Kernel::Avx512 => "avx512",
            Kernel::Avx2 => "avx2",
            Kernel::Portable => "portable",
            Kernel::MatrixMultiply => "matrixmultiply",
        }
    }

    fn isa(self) -> Option<Isa> {
        match self {
            Kernel::Avx512 => Some(Isa::Avx512),
            Kernel::Avx2 => Some(Isa::Avx2),
            Kernel::Portable => Some(Isa::Portable),
            Kernel::Auto | Kernel::MatrixMultiply => None,
        }
    }

    /// The concrete kernel: `Auto` becomes the best instruction set available; a forced
    /// instruction set this CPU lacks is an error that says so.
    pub fn resolve(self) -> Result<Kernel, KernelError> {
        match self {
            Kernel::Auto => Isa::from_env().map(Kernel::from).map_err(KernelError::Env),
            Kernel::MatrixMultiply => Ok(self),
            k => match k.isa() {
                Some(isa) if isa.available() => Ok(k),
                _ => Err(KernelError::Unavailable(k)),
            },
        }
    }

    /// Every kernel this CPU can run (for tests and benchmarks).
    pub fn available() -> Vec<Kernel> {
        [Kernel::Avx512, Kernel::Avx2, Kernel::Portable, Kernel::MatrixMultiply]
            .into_iter()
            .filter(|k| k.resolve().is_ok())
            .collect()
    }
}

/// Why a kernel cannot run on this machine.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KernelError {
    /// `auto` under a `DRIFT_KERNEL` that is unknown or names an instruction set this CPU lacks.
    #[error("{var}: {0}", var = ISA_ENV_VAR)]
    Env(IsaError),
    /// A kernel forced by name whose instruction set this CPU lacks.
    #[error("kernel {0} needs an instruction set this CPU does not have")]
    Unavailable(Kernel),
}

impl From<Isa> for Kernel {
    fn from(isa: Isa) -> Kernel {
        match isa {
            Isa::Avx512 => Kernel::Avx512,
            Isa::Avx2 => Kernel::Avx2,
            Isa::Portable => Kernel::Portable,
        }
    }
}

impl fmt::Display for Kernel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Kernel {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        match s {
            "auto" => Ok(Kernel::Auto),
            "avx512" => Ok(Kernel::Avx512),
            "avx2" => Ok(Kernel::Avx2),
            "portable" => Ok(Kernel::Portable),
            "matrixmultiply" => Ok(Kernel::MatrixMultiply),
            other => Err(ParseError {
                what: "kernel",
                got: other.into(),
                expected: "auto, avx512, avx2, portable or matrixmultiply",
            }),
        }
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
    match (kernel, kernel.isa()) {
        (Kernel::Auto, _) => gemm_blocked_fused(Isa::detect(), a, b, c, epilogue),
        (_, Some(isa)) => {
            assert!(isa.available(), "gemm: kernel {kernel} is not supported by this CPU");
            gemm_blocked_fused(isa, a, b, c, epilogue)
        }
        (_, None) => separate(c, epilogue, |c| gemm_matrixmultiply(a, b, c)),
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
        for k in [Kernel::Auto, Kernel::Avx512, Kernel::Avx2, Kernel::Portable, Kernel::MatrixMultiply] {
            assert_eq!(k.as_str().parse::<Kernel>(), Ok(k));
        }
        let e = "sse".parse::<Kernel>().unwrap_err();
        assert_eq!((e.what, e.got.as_str()), ("kernel", "sse"));
        assert_eq!(e.to_string(), "unknown kernel 'sse', expected auto, avx512, avx2, portable or matrixmultiply");
    }

    #[test]
    fn resolve_errors_say_why() {
        assert_eq!(Kernel::Portable.resolve(), Ok(Kernel::Portable));
        assert_eq!(Kernel::MatrixMultiply.resolve(), Ok(Kernel::MatrixMultiply));
        let e = KernelError::Unavailable(Kernel::Avx512).to_string();
        assert_eq!(e, "kernel avx512 needs an instruction set this CPU does not have");
        let e = KernelError::Env(IsaError::Unknown("sse".into())).to_string();
        assert_eq!(e, "DRIFT_KERNEL: unknown instruction set 'sse', expected portable, avx2 or avx512");
        for k in [Kernel::Avx512, Kernel::Avx2] {
            let available = k.isa().is_some_and(Isa::available);
            assert_eq!(k.resolve(), if available { Ok(k) } else { Err(KernelError::Unavailable(k)) });
        }
    }
}
