//! Raw random weight bytes (any codes, finite scales), random shapes and
//! activations: every dispatched kernel equals the scalar reference.
#![no_main]

mod common;

use common::Input;
use cwpq::protect::{ProtectedSet, ValueType};
use cwpq::{Format, Group, LinearView, QuantShape, QuantView};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let n = 1 + input.below(8);
    let k = 32 * (1 + input.below(6));
    let asymmetric = input.byte() & 1 == 1;
    let format = match input.below(5) {
        0 => Format::Q8_0,
        1 => Format::Q4_0,
        2 => Format::Q4_1,
        3 => Format::Int8 {
            group: Group::PerChannel,
            asymmetric,
        },
        _ => Format::Int4 {
            group: Group::Size(32),
            asymmetric,
        },
    };
    let shape = QuantShape::new(format, n, k).unwrap();
    let layout = shape.layout();
    let mut bytes: Vec<u8> = (0..shape.total_bytes()).map(|_| input.byte()).collect();
    for block in bytes.chunks_exact_mut(layout.block_bytes()) {
        let d = half::f16::from_f32(f32::from(input.byte() as i8) / 256.0);
        block[..2].copy_from_slice(&d.to_le_bytes());
        if layout.kind.has_min() {
            let m = half::f16::from_f32(f32::from(input.byte() as i8) / 64.0);
            block[2..4].copy_from_slice(&m.to_le_bytes());
        }
    }
    let quant = QuantView::new(format, n, k, &bytes).unwrap();
    let mut idx: Vec<usize> = (0..input.below(8)).map(|_| input.below(n * k)).collect();
    idx.sort_unstable();
    idx.dedup();
    let vals: Vec<f32> = idx
        .iter()
        .map(|_| f32::from(input.byte() as i8) / 16.0)
        .collect();
    let set = ProtectedSet::from_flat(n, k, &idx, &vals, ValueType::F16).unwrap();
    let view = LinearView::new(quant, Some(set.view())).unwrap();
    common::check_view(&view);
});
