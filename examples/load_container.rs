//! Load time of a ~100 MB container: writing it, then parsing (= validating
//! and creating the borrowed views), with and without CRC-32 checks.
//!
//! `cargo run --release --example load_container`

use std::time::Instant;

use cwpq::io::container::{Container, ContainerWriter, SearchTag, Tensor};
use cwpq::protect::{ProtectedSet, ValueType};
use cwpq::{Format, LinearView, QuantOptions, quantize};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> Result<(), cwpq::Error> {
    let (n, k) = (11008, 4096);
    let w: Vec<f32> = (0..n * k)
        .map(|i| ((i * 2_654_435_761usize) % 1000) as f32 / 1e4 - 0.05)
        .collect();
    let q = quantize(&w, n, k, Format::Q4_0, &QuantOptions::default())?;
    let count = n * k / 100;
    let idx: Vec<usize> = (0..count).map(|e| e * 100 + e % 97).collect();
    let vals: Vec<f32> = idx
        .iter()
        .map(|&i| ((i % 31) as f32 - 15.0) * 0.01)
        .collect();
    let set = ProtectedSet::from_flat(n, k, &idx, &vals, ValueType::F16)?;
    let view = LinearView::new(q.view(), Some(set.view()))?;
    for crc in [false, true] {
        let mut file = ContainerWriter::new(crc);
        for l in 0..4 {
            file.add_linear(&format!("blk.{l}.ffn_up"), &view, SearchTag::Absmax);
        }
        let bytes = file.finish()?;
        let mut times = Vec::new();
        let mut first = 0.0;
        for _ in 0..9 {
            let t = Instant::now();
            let c = Container::parse(&bytes)?;
            let secs = t.elapsed().as_secs_f64();
            if let Some(Tensor::Linear { view, .. }) = c.get("blk.0.ffn_up") {
                first = f64::from(view.quant.as_bytes()[0]);
            }
            times.push(secs);
        }
        std::hint::black_box(first);
        let ms = median(times) * 1e3;
        println!(
            "{:.1} MB container (4 × Q4_0 11008×4096 + 1 % protected), crc {}: parse + validate + views {:.2} ms ({:.1} GB/s)",
            bytes.len() as f64 / 1e6,
            if crc { "on " } else { "off" },
            ms,
            bytes.len() as f64 / (ms / 1e3) / 1e9
        );
    }
    Ok(())
}
