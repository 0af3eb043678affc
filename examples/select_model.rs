//! Model-wide selection at scale: one global budget over 10⁸ scores that are
//! never all in memory at once.
//!
//! `cargo run --release --example select_model [-- TENSORS [ELEMENTS_PER_TENSOR]]`
//!
//! Scores are generated tensor by tensor (a hash of the index, with many
//! exact ties) and fed three times to `GlobalSelection`; the example prints
//! the time of each pass (generation timed separately and subtracted), the
//! number selected, and the process's peak resident memory.

use std::time::Instant;

use cwpq::importance::{Budget, GlobalSelection};

fn fill(t: usize, buf: &mut [f32]) {
    for (i, v) in buf.iter_mut().enumerate() {
        let mut z = ((t as u64) << 32 | i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        z ^= z >> 29;
        z = z.wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z ^= z >> 32;
        // Fisher-like: positive, heavy-tailed, quantised so ties are common.
        let u = (z >> 40) as f32 / (1u64 << 24) as f32;
        *v = (u * u * u * 1000.0).round() / 1000.0;
    }
}

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

fn main() -> Result<(), cwpq::Error> {
    let mut args = std::env::args().skip(1);
    let tensors: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(100);
    let per: usize = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let k = 1000;
    let mut buf = vec![0.0f32; per];

    let t = Instant::now();
    for i in 0..tensors {
        fill(i, &mut buf);
    }
    let gen_s = t.elapsed().as_secs_f64();

    let mut sel = GlobalSelection::new(Budget::Fraction(0.01), None);
    let mut pass_s = Vec::new();
    for _ in 0..2 {
        let t = Instant::now();
        for i in 0..tensors {
            fill(i, &mut buf);
            sel.observe(&buf, k)?;
        }
        sel.next_pass()?;
        pass_s.push(t.elapsed().as_secs_f64() - gen_s);
    }
    let t = Instant::now();
    let mut selected = 0usize;
    for i in 0..tensors {
        fill(i, &mut buf);
        selected += sel.select(&buf, k)?.len();
    }
    pass_s.push(t.elapsed().as_secs_f64() - gen_s);

    let total = (tensors * per) as f64;
    println!("{tensors} tensors × {per} scores = {total:.0} scores, budget 1 %");
    println!("selected {selected} (expected {})", sel.count()?);
    println!(
        "selection time: pass 1 {:.2} s, pass 2 {:.2} s, pass 3 {:.2} s, total {:.2} s ({:.1} ns/score/pass); score generation {:.2} s per pass, not included",
        pass_s[0],
        pass_s[1],
        pass_s[2],
        pass_s.iter().sum::<f64>(),
        pass_s.iter().sum::<f64>() / 3.0 / total * 1e9,
        gen_s
    );
    println!(
        "peak resident memory: {:.1} MiB (one tensor's scores: {:.1} MiB)",
        peak_rss_mib(),
        per as f64 * 4.0 / 1048576.0
    );
    Ok(())
}
