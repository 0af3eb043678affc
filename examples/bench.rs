//! GEMV/GEMM throughput against the machine's own memory bandwidth,
//! measured in the same run.
//!
//! ```sh
//! cargo run --release --example bench -- --format q4_0 --act dyn8 \
//!     --shape 11008x4096 --m 1 --threads 1,2 --protect 0,0.01 --cache cold,hot --pages 4k,huge
//! ```
//!
//! First a streaming-sum probe reads 1 GiB with 1 and 2 threads for each
//! page policy (`4k`: `MADV_NOHUGEPAGE`, `huge`: `MADV_HUGEPAGE`). Then each
//! case times `iters` calls and reports the median. `cold` cycles through
//! ≥ 256 MiB of distinct copies of the weights (each call streams from
//! DRAM, as a decode step does); `hot` reuses one. Threads split the output
//! rows; they are started once per case and meet at a barrier per call.
//! `gbps` counts the weight bytes (quantized blocks plus the protected set)
//! per second; `bw_ratio` divides it by the probe's bandwidth for the same
//! threads and pages; `gflops` is 2·m·n·k per second. Every flag takes a
//! comma list; the defaults run the whole grid of the kernels issue.

use std::sync::Barrier;
use std::time::Instant;

use cwpq::act::{ActQuant, ActScale, QuantizedActivations};
use cwpq::kernels::{self, Backend};
use cwpq::protect::{ProtectedSet, ProtectedView, ValueType};
use cwpq::{Format, QuantOptions, QuantView};

/// An anonymous mapping with a page policy, freed on drop.
struct Buf {
    ptr: *mut u8,
    len: usize,
    raw: *mut libc::c_void,
    map_len: usize,
}

// SAFETY: the mapping is plain memory owned by this value.
unsafe impl Send for Buf {}
// SAFETY: shared access is read-only after initialisation.
unsafe impl Sync for Buf {}

impl Buf {
    fn new(len: usize, huge: bool) -> Buf {
        let align = 2 << 20;
        let map_len = len + align;
        // SAFETY: a fresh private anonymous mapping; checked for failure below.
        let raw = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert!(raw != libc::MAP_FAILED, "mmap of {map_len} bytes failed");
        let start = (raw as usize).next_multiple_of(align);
        let advice = if huge {
            libc::MADV_HUGEPAGE
        } else {
            libc::MADV_NOHUGEPAGE
        };
        // SAFETY: the advised range lies inside the mapping.
        unsafe { libc::madvise(start as *mut libc::c_void, len, advice) };
        Buf {
            ptr: start as *mut u8,
            len,
            raw,
            map_len,
        }
    }

    fn bytes(&self) -> &[u8] {
        // SAFETY: `len` bytes from `ptr` are mapped and initialised (anonymous
        // mappings are zero-filled).
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: as above, and `&mut self` gives exclusive access.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }
    }
}

impl Drop for Buf {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly the mapping `new` created.
        unsafe { libc::munmap(self.raw, self.map_len) };
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Streams `buf` with `threads` threads; returns bytes per second (median of 5).
fn probe(buf: &Buf, threads: usize) -> f64 {
    let words: &[u64] = bytemuck::cast_slice(buf.bytes());
    let chunk = words.len() / threads;
    let mut times = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let total: u64 = std::thread::scope(|s| {
            let hs: Vec<_> = words
                .chunks(chunk)
                .map(|c| s.spawn(move || c.iter().fold(0u64, |a, &b| a.wrapping_add(b))))
                .collect();
            hs.into_iter()
                .map(|h| h.join().unwrap())
                .fold(0, u64::wrapping_add)
        });
        std::hint::black_box(total);
        times.push(t.elapsed().as_secs_f64());
    }
    buf.len as f64 / median(times)
}

fn list<T>(args: &[String], flag: &str, default: &str, parse: impl Fn(&str) -> T) -> Vec<T> {
    let v = args
        .iter()
        .position(|a| a == flag)
        .and_then(|i| args.get(i + 1))
        .map_or(default, |s| s.as_str());
    v.split(',').map(|s| parse(s.trim())).collect()
}

#[derive(Clone, Copy, PartialEq)]
enum Act {
    F32,
    Dyn8,
    Static8,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let formats = list(&args, "--format", "q4_0,q8_0,q4_1,int4-g128,int8-pc", |s| {
        s.parse::<Format>().expect("--format")
    });
    let acts = list(&args, "--act", "dyn8,f32", |s| match s {
        "f32" => Act::F32,
        "dyn8" => Act::Dyn8,
        "static8" => Act::Static8,
        _ => panic!("--act: f32, dyn8 or static8"),
    });
    let shapes = list(&args, "--shape", "4096x4096,11008x4096,4096x11008", |s| {
        let (n, k) = s.split_once('x').expect("--shape NxK");
        (n.parse::<usize>().unwrap(), k.parse::<usize>().unwrap())
    });
    let ms = list(&args, "--m", "1,8,128", |s| s.parse::<usize>().unwrap());
    let threads = list(&args, "--threads", "1,2", |s| s.parse::<usize>().unwrap());
    let protects = list(&args, "--protect", "0,0.01", |s| s.parse::<f64>().unwrap());
    let caches = list(&args, "--cache", "cold,hot", |s| s == "cold");
    let pages = list(&args, "--pages", "4k,huge", |s| s == "huge");
    let iters: usize = list(&args, "--iters", "21", |s| s.parse().unwrap())[0];

    let backend = Backend::selected().expect("backend");
    eprintln!("backend: {backend:?}");
    let mut bw = std::collections::HashMap::new();
    for &huge in &pages {
        let buf = {
            let mut b = Buf::new(1 << 30, huge);
            b.bytes_mut().iter_mut().step_by(4096).for_each(|v| *v = 1);
            b
        };
        for &t in &threads {
            let v = probe(&buf, t);
            bw.insert((huge, t), v);
            println!(
                "bandwidth probe: pages {} threads {t}: {:.2} GB/s",
                if huge { "huge" } else { "4k" },
                v / 1e9
            );
        }
    }

    println!(
        "{:<5} {:<10} {:<7} {:>11} {:>4} {:>3} {:>7} {:>5} {:>5} {:>9} {:>8} {:>8} {:>9}",
        "op",
        "format",
        "act",
        "n×k",
        "m",
        "thr",
        "protect",
        "cache",
        "pages",
        "ms",
        "GB/s",
        "GFLOP/s",
        "bw_ratio"
    );
    let mut json = Vec::new();
    for &(n, k) in &shapes {
        let w: Vec<f32> = (0..n * k)
            .map(|i| {
                (((i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40) as f32
                    / (1u64 << 24) as f32
                    - 0.5)
                    * 0.05
            })
            .collect();
        for &format in &formats {
            let q = cwpq::quantize(&w, n, k, format, &QuantOptions::default()).expect("quantize");
            let qbytes = q.as_bytes();
            for &protect in &protects {
                let count = (protect * (n * k) as f64).round() as usize;
                let idx: Vec<usize> = (0..count)
                    .map(|e| {
                        e * (n * k) / count.max(1) + (e * 7919) % ((n * k) / count.max(1)).max(1)
                    })
                    .collect();
                let vals: Vec<f32> = idx
                    .iter()
                    .map(|&i| ((i % 31) as f32 - 15.0) * 0.01)
                    .collect();
                let set = ProtectedSet::from_flat(n, k, &idx, &vals, ValueType::F16)
                    .expect("protected set");
                let pbytes = if count == 0 {
                    0
                } else {
                    set.view().storage_bytes()
                };
                for &huge in &pages {
                    // Distinct copies for cold runs: at least 256 MiB in all.
                    let copies_cold = (256usize << 20).div_ceil(qbytes.len()).max(2);
                    let mut bufs: Vec<Buf> = Vec::new();
                    for _ in 0..copies_cold {
                        let mut b = Buf::new(qbytes.len(), huge);
                        b.bytes_mut().copy_from_slice(qbytes);
                        bufs.push(b);
                    }
                    let views: Vec<QuantView<'_>> = bufs
                        .iter()
                        .map(|b| QuantView::new(format, n, k, b.bytes()).unwrap())
                        .collect();
                    for &m in &ms {
                        let op = if m == 1 { "gemv" } else { "gemm" };
                        let x: Vec<f32> = (0..m * k)
                            .map(|i| ((i * 7) % 23) as f32 / 7.0 - 1.5)
                            .collect();
                        for &act in &acts {
                            for &t in &threads {
                                for &cold in &caches {
                                    let pv: Option<ProtectedView<'_>> =
                                        (count > 0).then(|| set.view());
                                    let ms_med =
                                        time_case(&views, pv, &x, m, n, k, act, t, cold, iters);
                                    let secs = ms_med / 1e3;
                                    let bytes = (qbytes.len() + pbytes) as f64;
                                    let gbps = bytes / secs / 1e9;
                                    let gflops = 2.0 * (m * n * k) as f64 / secs / 1e9;
                                    let ratio = bytes / secs / bw[&(huge, t)];
                                    let act_s = match act {
                                        Act::F32 => "f32",
                                        Act::Dyn8 => "dyn8",
                                        Act::Static8 => "static8",
                                    };
                                    let pages_s = if huge { "huge" } else { "4k" };
                                    let cache_s = if cold { "cold" } else { "hot" };
                                    println!(
                                        "{op:<5} {:<10} {act_s:<7} {:>11} {m:>4} {t:>3} {protect:>7} {cache_s:>5} {pages_s:>5} {ms_med:>9.3} {gbps:>8.2} {gflops:>8.1} {ratio:>9.3}",
                                        format.to_string(),
                                        format!("{n}x{k}")
                                    );
                                    json.push(format!(
                                        "{{\"op\":\"{op}\",\"format\":\"{format}\",\"act\":\"{act_s}\",\"n\":{n},\"k\":{k},\"m\":{m},\"threads\":{t},\"protect\":{protect},\"cache\":\"{cache_s}\",\"pages\":\"{pages_s}\",\"ms\":{ms_med:.4},\"gbps\":{gbps:.3},\"gflops\":{gflops:.2},\"bw_ratio\":{ratio:.4}}}"
                                    ));
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    for line in json {
        println!("{line}");
    }
}

#[allow(clippy::too_many_arguments)]
fn time_case(
    views: &[QuantView<'_>],
    p: Option<ProtectedView<'_>>,
    x: &[f32],
    m: usize,
    n: usize,
    k: usize,
    act: Act,
    threads: usize,
    cold: bool,
    iters: usize,
) -> f64 {
    let how = match act {
        Act::Static8 => ActQuant::Static { scale: 1.5 / 127.0 },
        _ => ActQuant::Dynamic {
            scale: ActScale::PerToken,
            outlier_threshold: None,
        },
    };
    let barrier = Barrier::new(threads + 1);
    let rows: Vec<std::ops::Range<usize>> = (0..threads)
        .map(|t| t * n / threads..(t + 1) * n / threads)
        .collect();
    let xq = std::sync::RwLock::new(QuantizedActivations::new());
    let total = iters + 3;
    let mut times = Vec::with_capacity(total);
    std::thread::scope(|s| {
        for r in rows.clone() {
            let (barrier, xq) = (&barrier, &xq);
            s.spawn(move || {
                let mut y = vec![0.0f32; m * r.len()];
                for it in 0..total {
                    barrier.wait();
                    let w = &views[if cold { it % views.len() } else { 0 }];
                    match act {
                        Act::F32 => {
                            kernels::matmul(w, p.as_ref(), x, m, r.clone(), &mut y).unwrap()
                        }
                        _ => kernels::matmul_q8(
                            w,
                            p.as_ref(),
                            &xq.read().unwrap(),
                            r.clone(),
                            &mut y,
                        )
                        .unwrap(),
                    }
                    barrier.wait();
                }
                std::hint::black_box(&y);
            });
        }
        for it in 0..total {
            let t0 = Instant::now();
            if act != Act::F32 {
                xq.write().unwrap().quantize(x, m, k, how, None).unwrap();
            }
            barrier.wait();
            barrier.wait();
            if it >= 3 {
                times.push(t0.elapsed().as_secs_f64() * 1e3);
            }
        }
    });
    median(times)
}
