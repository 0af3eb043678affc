//! Oracles shared by the fuzz targets.
#![allow(dead_code)]

use cwpq::LinearView;
use cwpq::act::{ActQuant, QuantizedActivations};
use cwpq::kernels::{self, Backend, scalar};

/// Bytes consumed front to back; zeros once exhausted.
pub struct Input<'a>(pub &'a [u8]);

impl Input<'_> {
    pub fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }
    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.byte(), self.byte()])
    }
    pub fn below(&mut self, n: usize) -> usize {
        usize::from(self.u16()) % n
    }
}

/// The dispatched kernels equal the scalar reference on a valid view
/// (weight-only and int8 paths), within the tests' tolerance.
pub fn check_view(v: &LinearView<'_>) {
    let (n, k) = (v.quant.n(), v.quant.k());
    if n.saturating_mul(k) > 1 << 16 {
        return;
    }
    let m = 2;
    let x: Vec<f32> = (0..m * k)
        .map(|i| ((i * 37) % 19) as f32 / 4.0 - 2.0)
        .collect();
    let p = v.protected.as_ref();
    let mut want = vec![0.0f32; m * n];
    scalar::matmul_protected(&v.quant, p, &x, m, 0..n, &mut want).unwrap();
    let mut deq = vec![0.0f32; n * k];
    v.quant.dequantize_rows(0..n, &mut deq).unwrap();
    // The integer paths compute d·Σa·q and m·Σa (and offsets of up to 128·d)
    // separately, so their rounding scales with |w| + 2(|m| + 128|d|).
    let layout = v.quant.shape().layout();
    let bytes = v.quant.as_bytes();
    for (j, row) in deq.chunks_exact_mut(k).enumerate() {
        for (t, w) in row.iter_mut().enumerate() {
            let at = j * v.quant.shape().row_bytes() + (t / layout.group) * layout.block_bytes();
            let h = &bytes[at..];
            let d = cwpq::quant::f16_le([h[0], h[1]]).abs();
            let m = if layout.kind.has_min() {
                cwpq::quant::f16_le([h[2], h[3]]).abs()
            } else {
                0.0
            };
            *w = w.abs() + 2.0 * (m + 128.0 * d);
        }
    }
    let magnitude = |i: usize, j: usize| -> f64 {
        let mut s: f64 = (0..k)
            .map(|t| f64::from((x[i * k + t] * deq[j * k + t]).abs()))
            .sum();
        if let Some(p) = p {
            s += p
                .row(j)
                .map(|(c, val)| f64::from((x[i * k + c] * val).abs()))
                .sum::<f64>();
        }
        s
    };
    let mut xq = QuantizedActivations::new();
    xq.quantize_with(Backend::Scalar, &x, m, k, ActQuant::default(), None)
        .unwrap();
    let mut want_q8 = vec![0.0f32; m * n];
    scalar::matmul_q8(&v.quant, p, &xq, 0..n, &mut want_q8).unwrap();
    for b in Backend::available() {
        let mut y = vec![0.0f32; m * n];
        kernels::matmul_with(b, &v.quant, p, &x, m, 0..n, &mut y).unwrap();
        let mut y8 = vec![0.0f32; m * n];
        kernels::matmul_q8_with(b, &v.quant, p, &xq, 0..n, &mut y8).unwrap();
        for i in 0..m {
            for j in 0..n {
                let mag = magnitude(i, j);
                if !(mag.is_finite() && mag < 1e36) {
                    continue; // f32 overflow: no finite answer to compare
                }
                let tol = 4.0 * (k + 64) as f64 * f64::from(f32::EPSILON) * mag + 1e-30;
                let (a, w) = (f64::from(y[i * n + j]), f64::from(want[i * n + j]));
                assert!(
                    (a - w).abs() <= tol || (a.is_infinite() && a == w),
                    "{b:?} f32 ({i},{j}): {a} vs {w}"
                );
                let (a, w) = (f64::from(y8[i * n + j]), f64::from(want_q8[i * n + j]));
                assert!(
                    (a - w).abs() <= tol || (a.is_infinite() && a == w),
                    "{b:?} q8 ({i},{j}): {a} vs {w}, tol {tol}"
                );
            }
        }
    }
}
