//! AVX-512 F/BW/VL: the 256-bit kernels, with VNNI `vpdpbusd` integer dots
//! when the CPU has AVX-512 VNNI (else `maddubs`, as on AVX2).

use core::ops::Range;

use super::Ymm;
#[cfg(feature = "alloc")]
use crate::act::QuantizedActivations;
use crate::kernels::{Element, driver};
use crate::protect::ProtectedView;
use crate::quant::QuantView;

/// Proof that this CPU has AVX-512 F, BW and VL (and AVX2, FMA, F16C).
#[derive(Debug, Clone, Copy)]
pub struct Avx512 {
    vnni: bool,
}

impl Avx512 {
    /// The token, if the CPU has the features (compile-time or, under std, detected).
    pub fn new() -> Option<Avx512> {
        #[cfg(feature = "std")]
        let (ok, vnni) = (
            std::is_x86_feature_detected!("avx512f")
                && std::is_x86_feature_detected!("avx512bw")
                && std::is_x86_feature_detected!("avx512vl")
                && std::is_x86_feature_detected!("avx2")
                && std::is_x86_feature_detected!("fma")
                && std::is_x86_feature_detected!("f16c"),
            std::is_x86_feature_detected!("avx512vnni"),
        );
        #[cfg(not(feature = "std"))]
        let (ok, vnni) = (
            cfg!(all(
                target_feature = "avx512f",
                target_feature = "avx512bw",
                target_feature = "avx512vl",
                target_feature = "avx2",
                target_feature = "fma",
                target_feature = "f16c"
            )),
            cfg!(target_feature = "avx512vnni"),
        );
        ok.then_some(Avx512 { vnni })
    }

    /// Whether the integer dots use VNNI.
    pub fn has_vnni(self) -> bool {
        self.vnni
    }

    pub(crate) fn gemm_f32<A: Element>(
        self,
        w: &QuantView<'_>,
        p: Option<&ProtectedView<'_>>,
        x: &[A],
        m: usize,
        rows: Range<usize>,
        y: &mut [f32],
    ) {
        // SAFETY: the token proves AVX-512 F/BW/VL, AVX2, FMA and F16C.
        unsafe { gemm_f32(w, p, x, m, rows, y) }
    }

    #[cfg(feature = "alloc")]
    pub(crate) fn gemm_q8(
        self,
        w: &QuantView<'_>,
        p: Option<&ProtectedView<'_>>,
        xq: &QuantizedActivations,
        rows: Range<usize>,
        y: &mut [f32],
    ) {
        if self.vnni {
            // SAFETY: the token proves the base features and `vnni` AVX-512 VNNI.
            unsafe { gemm_q8_vnni(w, p, xq, rows, y) }
        } else {
            // SAFETY: the token proves AVX-512 F/BW/VL, AVX2, FMA and F16C.
            unsafe { gemm_q8(w, p, xq, rows, y) }
        }
    }

    #[cfg(feature = "alloc")]
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn quantize_acts(
        self,
        x: &[f32],
        k: usize,
        per_token: bool,
        fixed: Option<f32>,
        codes: &mut [i8],
        scales: &mut [f32],
        sums: &mut [f32],
    ) {
        // SAFETY: the token proves AVX2 and FMA (and more).
        unsafe { quantize_acts(x, k, per_token, fixed, codes, scales, sums) }
    }
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
fn gemm_f32<A: Element>(
    w: &QuantView<'_>,
    p: Option<&ProtectedView<'_>>,
    x: &[A],
    m: usize,
    rows: Range<usize>,
    y: &mut [f32],
) {
    driver::gemm_f32(Ymm::<false>(()), w, p, x, m, rows, y)
}

#[cfg(feature = "alloc")]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
fn gemm_q8(
    w: &QuantView<'_>,
    p: Option<&ProtectedView<'_>>,
    xq: &QuantizedActivations,
    rows: Range<usize>,
    y: &mut [f32],
) {
    driver::gemm_q8(Ymm::<false>(()), w, p, xq, rows, y)
}

#[cfg(feature = "alloc")]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
fn gemm_q8_vnni(
    w: &QuantView<'_>,
    p: Option<&ProtectedView<'_>>,
    xq: &QuantizedActivations,
    rows: Range<usize>,
    y: &mut [f32],
) {
    driver::gemm_q8(Ymm::<true>(()), w, p, xq, rows, y)
}

#[cfg(feature = "alloc")]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
#[allow(clippy::too_many_arguments)]
fn quantize_acts(
    x: &[f32],
    k: usize,
    per_token: bool,
    fixed: Option<f32>,
    codes: &mut [i8],
    scales: &mut [f32],
    sums: &mut [f32],
) {
    // SAFETY: compiled with AVX2 and FMA, reached only through the token.
    unsafe { super::quantize_acts(x, k, per_token, fixed, codes, scales, sums) }
}
