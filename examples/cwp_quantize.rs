//! Critical Weight Protection for a whole checkpoint, in the simulation mode.
//!
//! ```sh
//! cargo run --release --example cwp_quantize -- \
//!     --weights IN.safetensors [--scores SCORES.safetensors] \
//!     --format FMT --protect FRACTION [--budget model|tensor] \
//!     [--search absmax|mse] [--values f16|bf16|f32] --out OUT.safetensors
//! ```
//!
//! Every 2-D tensor of IN (F32, F16 or BF16) is quantized with FMT (`q4_0`,
//! `q4_1`, `q8_0`, `int4-g32`, `int4-g128`, `int8-g128`, `int4a-g64`,
//! `int8-pc`, ...). The top FRACTION of its weights by the same-named tensor
//! of SCORES (any per-weight score computed in your framework, e.g. a Fisher
//! map or `F_crit − F_util`; `|w|` when SCORES is absent) keep their value,
//! with one budget across the whole model (`--budget model`, the paper's
//! choice, default) or the same fraction in every tensor. OUT gets the
//! effective dense f32 weights (other tensors are copied unchanged) and
//! `OUT.json` the bits per weight (protected overhead included) and the
//! protected count per tensor.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use cwpq::importance::{Budget, GlobalSelection, select_top};
use cwpq::protect::ValueType;
use cwpq::{Format, LinearConfig, ProtectedLinear, Protection, ScaleSearch};
use half::{bf16, f16};
use safetensors::{Dtype, SafeTensors, tensor::TensorView};

struct Args {
    weights: PathBuf,
    scores: Option<PathBuf>,
    format: Format,
    protect: f64,
    model_budget: bool,
    search: ScaleSearch<'static>,
    values: ValueType,
    out: PathBuf,
}

const USAGE: &str = "usage: cwp_quantize --weights IN.safetensors [--scores SCORES.safetensors] \
--format FMT --protect FRACTION [--budget model|tensor] [--search absmax|mse] \
[--values f16|bf16|f32] --out OUT.safetensors";

fn parse_args() -> Result<Args, String> {
    let mut map: HashMap<String, String> = HashMap::new();
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--help" || flag == "-h" {
            return Err(USAGE.into());
        }
        let name = flag
            .strip_prefix("--")
            .ok_or(format!("unexpected argument {flag:?}\n{USAGE}"))?;
        let value = it
            .next()
            .ok_or(format!("--{name} needs a value\n{USAGE}"))?;
        map.insert(name.to_string(), value);
    }
    let mut take = |name: &str| map.remove(name);
    let need = |v: Option<String>, name: &str| v.ok_or(format!("--{name} is required\n{USAGE}"));
    let args = Args {
        weights: need(take("weights"), "weights")?.into(),
        scores: take("scores").map(PathBuf::from),
        format: need(take("format"), "format")?
            .parse()
            .map_err(|e| format!("--format: {e}"))?,
        protect: {
            let p: f64 = need(take("protect"), "protect")?
                .parse()
                .map_err(|e| format!("--protect: {e}"))?;
            if !(0.0..=1.0).contains(&p) {
                return Err(format!("--protect {p}: must be a fraction in [0, 1]"));
            }
            p
        },
        model_budget: match take("budget").as_deref() {
            None | Some("model") => true,
            Some("tensor") => false,
            Some(other) => return Err(format!("--budget {other:?}: model or tensor")),
        },
        search: match take("search").as_deref() {
            None | Some("absmax") => ScaleSearch::Absmax,
            Some("mse") => ScaleSearch::Mse,
            Some(other) => return Err(format!("--search {other:?}: absmax or mse")),
        },
        values: match take("values").as_deref() {
            None | Some("f16") => ValueType::F16,
            Some("bf16") => ValueType::Bf16,
            Some("f32") => ValueType::F32,
            Some(other) => return Err(format!("--values {other:?}: f16, bf16 or f32")),
        },
        out: need(take("out"), "out")?.into(),
    };
    if let Some(unknown) = map.keys().next() {
        return Err(format!("unknown flag --{unknown}\n{USAGE}"));
    }
    Ok(args)
}

fn to_f32(name: &str, t: &TensorView<'_>) -> Result<Vec<f32>, String> {
    let d = t.data();
    Ok(match t.dtype() {
        Dtype::F32 => d
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
        Dtype::F16 => d
            .chunks_exact(2)
            .map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        Dtype::BF16 => d
            .chunks_exact(2)
            .map(|b| bf16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        other => return Err(format!("{name}: dtype {other:?} is not F32, F16 or BF16")),
    })
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
}

fn run() -> Result<(), String> {
    let args = parse_args()?;
    let in_bytes = read(&args.weights)?;
    let st = SafeTensors::deserialize(&in_bytes)
        .map_err(|e| format!("{}: {e}", args.weights.display()))?;
    let score_bytes = args.scores.as_deref().map(read).transpose()?;
    let scores_st = score_bytes
        .as_deref()
        .map(SafeTensors::deserialize)
        .transpose()
        .map_err(|e| format!("scores: {e}"))?;

    let mut names: Vec<String> = st.names().into_iter().map(String::from).collect();
    names.sort();
    // The 2-D tensors, their weights and scores (f32).
    struct Matrix {
        name: String,
        n: usize,
        k: usize,
        w: Vec<f32>,
        s: Vec<f32>,
    }
    let mut matrices = Vec::new();
    let mut others = Vec::new();
    for name in &names {
        let t = st.tensor(name).map_err(|e| format!("{name}: {e}"))?;
        if t.shape().len() != 2 {
            others.push(name.clone());
            continue;
        }
        let (n, k) = (t.shape()[0], t.shape()[1]);
        args.format
            .layout(k)
            .map_err(|e| format!("{name} ({n}×{k}): {e}"))?;
        let w = to_f32(name, &t)?;
        let s = match &scores_st {
            Some(sst) => {
                let s = sst
                    .tensor(name)
                    .map_err(|e| format!("scores for {name}: {e}"))?;
                if s.shape() != t.shape() {
                    return Err(format!(
                        "scores for {name}: shape {:?}, weights {:?}",
                        s.shape(),
                        t.shape()
                    ));
                }
                to_f32(name, &s)?
            }
            None => cwpq::importance::score::magnitude(&w).map_err(|e| format!("{name}: {e}"))?,
        };
        matrices.push(Matrix {
            name: name.clone(),
            n,
            k,
            w,
            s,
        });
    }
    if matrices.is_empty() {
        return Err(format!(
            "{}: no 2-D tensors to quantize",
            args.weights.display()
        ));
    }

    let budget = Budget::Fraction(args.protect);
    let picked: Vec<Vec<usize>> = if args.model_budget {
        let tensors: Vec<(&[f32], usize)> = matrices.iter().map(|m| (&m.s[..], m.k)).collect();
        GlobalSelection::run(budget, None, &tensors).map_err(|e| format!("selection: {e}"))?
    } else {
        matrices
            .iter()
            .map(|m| select_top(&m.s, m.k, budget, None).map_err(|e| format!("{}: {e}", m.name)))
            .collect::<Result<_, _>>()?
    };

    let config = LinearConfig {
        search: args.search,
        values: args.values,
        ..LinearConfig::new(args.format)
    };
    let mut out: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
    let mut json_tensors = Vec::new();
    let (mut total_bits, mut total_weights, mut total_protected) = (0.0f64, 0u64, 0usize);
    for (m, idx) in matrices.iter().zip(&picked) {
        let layer = ProtectedLinear::build(&m.w, m.n, m.k, &config, Protection::Indices(idx))
            .map_err(|e| format!("{}: {e}", m.name))?;
        let r = layer.report();
        total_bits += r.bits_per_weight * (m.n * m.k) as f64;
        total_weights += (m.n * m.k) as u64;
        total_protected += r.protected;
        json_tensors.push(format!(
            "    {{\"name\": {:?}, \"shape\": [{}, {}], \"protected\": {}, \"bits_per_weight\": {:.6}}}",
            m.name, m.n, m.k, r.protected, r.bits_per_weight
        ));
        let bytes = layer
            .effective_weights()
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        out.push((m.name.clone(), Dtype::F32, vec![m.n, m.k], bytes));
    }
    for name in &others {
        let t = st.tensor(name).map_err(|e| format!("{name}: {e}"))?;
        out.push((
            name.clone(),
            t.dtype(),
            t.shape().to_vec(),
            t.data().to_vec(),
        ));
    }
    let views: Vec<(String, TensorView<'_>)> = out
        .iter()
        .map(|(n, d, s, b)| TensorView::new(*d, s.clone(), b).map(|v| (n.clone(), v)))
        .collect::<Result<_, _>>()
        .map_err(|e| format!("output: {e}"))?;
    safetensors::serialize_to_file(views, None, &args.out)
        .map_err(|e| format!("{}: {e}", args.out.display()))?;

    let bpw = total_bits / total_weights as f64;
    let json = format!(
        "{{\n  \"format\": \"{}\",\n  \"protect\": {},\n  \"budget\": \"{}\",\n  \"weights\": {},\n  \"protected\": {},\n  \"bits_per_weight\": {:.6},\n  \"tensors\": [\n{}\n  ]\n}}\n",
        args.format,
        args.protect,
        if args.model_budget { "model" } else { "tensor" },
        total_weights,
        total_protected,
        bpw,
        json_tensors.join(",\n")
    );
    let json_path = PathBuf::from(format!("{}.json", args.out.display()));
    std::fs::write(&json_path, json).map_err(|e| format!("{}: {e}", json_path.display()))?;
    println!(
        "{} tensors, {} weights, {} protected, {:.4} bits/weight -> {} (+ .json)",
        matrices.len(),
        total_weights,
        total_protected,
        bpw,
        args.out.display()
    );
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cwp_quantize: {e}");
            ExitCode::FAILURE
        }
    }
}
