//! Backend choice: compile-time features, then runtime detection under
//! `std`, then scalar; decided once and cached. `CWPQ_BACKEND` (under std)
//! or the `*_with` functions force a backend; forcing one this CPU lacks is
//! an `Err(Unsupported)`, never a silent fallback.

use core::sync::atomic::{AtomicU8, Ordering};

use crate::error::{Error, Result};

/// A kernel implementation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    /// The reference kernels (`kernels::scalar`): the definition and the oracle.
    Scalar,
    /// Compile-time portable SIMD (`wide`: SSE2 on x86-64, NEON on aarch64).
    Portable,
    /// x86-64 AVX2 + FMA + F16C.
    Avx2,
    /// x86-64 AVX-512 F/BW/VL, with VNNI `vpdpbusd` when the CPU has it.
    Avx512,
    /// aarch64 NEON.
    Neon,
}

impl Backend {
    /// Every backend, best last.
    pub const ALL: [Backend; 5] = [
        Backend::Scalar,
        Backend::Portable,
        Backend::Neon,
        Backend::Avx2,
        Backend::Avx512,
    ];

    /// The name `CWPQ_BACKEND` takes: scalar, portable, avx2, avx512, neon.
    pub const fn name(self) -> &'static str {
        match self {
            Backend::Scalar => "scalar",
            Backend::Portable => "portable",
            Backend::Avx2 => "avx2",
            Backend::Avx512 => "avx512",
            Backend::Neon => "neon",
        }
    }

    /// Parses a name written by [`Backend::name`].
    pub fn from_name(name: &str) -> Option<Backend> {
        Backend::ALL.into_iter().find(|b| b.name() == name)
    }

    /// Whether this CPU (and build) can run the backend.
    pub fn is_available(self) -> bool {
        match self {
            Backend::Scalar | Backend::Portable => true,
            #[cfg(all(target_arch = "x86_64", target_feature = "sse2", not(miri)))]
            Backend::Avx2 => super::x86_64::Avx2::new().is_some(),
            #[cfg(all(target_arch = "x86_64", target_feature = "sse2", not(miri)))]
            Backend::Avx512 => super::x86_64::Avx512::new().is_some(),
            #[cfg(all(target_arch = "aarch64", not(miri)))]
            Backend::Neon => super::aarch64::Neon::new().is_some(),
            #[allow(unreachable_patterns)]
            _ => false,
        }
    }

    /// The backends this CPU can run.
    pub fn available() -> impl Iterator<Item = Backend> {
        Backend::ALL.into_iter().filter(|b| b.is_available())
    }

    /// The best available backend, or the one `CWPQ_BACKEND` forces (under
    /// std); an unknown or unavailable forced name is an error.
    pub fn selected() -> Result<Backend> {
        match CACHE.load(Ordering::Relaxed) {
            0 => {}
            v => return Ok(Backend::ALL[usize::from(v - 1)]),
        }
        let b = forced()?.unwrap_or_else(|| Backend::available().last().unwrap_or(Backend::Scalar));
        let index = Backend::ALL.iter().position(|&x| x == b).unwrap_or(0);
        CACHE.store(index as u8 + 1, Ordering::Relaxed);
        Ok(b)
    }

    /// Like [`Backend::selected`], falling back to the best available
    /// backend when the environment names one that cannot run.
    pub fn detect() -> Backend {
        Backend::selected()
            .unwrap_or_else(|_| Backend::available().last().unwrap_or(Backend::Scalar))
    }

    /// `Ok(self)` if available, else `Err(Unsupported)`.
    pub fn require(self) -> Result<Backend> {
        if self.is_available() {
            Ok(self)
        } else {
            Err(Error::Unsupported {
                backend: self.name(),
            })
        }
    }
}

static CACHE: AtomicU8 = AtomicU8::new(0);

#[cfg(feature = "std")]
fn forced() -> Result<Option<Backend>> {
    let Ok(name) = std::env::var("CWPQ_BACKEND") else {
        return Ok(None);
    };
    let b = Backend::from_name(name.trim()).ok_or(Error::InvalidParameter {
        what: "CWPQ_BACKEND: scalar, portable, avx2, avx512 or neon",
    })?;
    b.require().map(Some)
}

#[cfg(not(feature = "std"))]
fn forced() -> Result<Option<Backend>> {
    Ok(None)
}
