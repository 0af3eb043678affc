//! Rebuilds `tests/data/minilm-l3-inter.safetensors`, the reduced real-data
//! fixture the main example and tests use, from the full fixture in
//! `../shared/data/minilm-l6-layers.safetensors`.
//!
//! `cargo run --release --example make_fixture [SRC] [DST]`
//!
//! It keeps layer `l3_inter` (1536 × 384, the layer with the outlier input
//! channel 223): the weight unchanged (f32), both Fisher maps rounded to bf16
//! (f32's range, so no value underflows), every 5th critical token and every
//! 4th utility token (f16, unchanged), and the sample counts.

use std::collections::HashMap;
use std::path::PathBuf;

use half::{bf16, f16};
use safetensors::{Dtype, SafeTensors, tensor::TensorView};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let src = PathBuf::from(
        args.next()
            .unwrap_or_else(|| "../shared/data/minilm-l6-layers.safetensors".into()),
    );
    let dst = PathBuf::from(
        args.next()
            .unwrap_or_else(|| "tests/data/minilm-l3-inter.safetensors".into()),
    );
    let bytes = std::fs::read(&src).map_err(|e| format!("{}: {e}", src.display()))?;
    let st = SafeTensors::deserialize(&bytes)?;
    let get = |name: &str| st.tensor(&format!("l3_inter.{name}"));

    let mut out: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
    let weight = get("weight")?;
    out.push((
        "weight".into(),
        Dtype::F32,
        weight.shape().to_vec(),
        weight.data().to_vec(),
    ));
    for name in ["fisher_critical", "fisher_utility"] {
        let t = get(name)?;
        assert_eq!(t.dtype(), Dtype::F32);
        let data: Vec<u8> = t
            .data()
            .chunks_exact(4)
            .flat_map(|b| bf16::from_f32(f32::from_le_bytes(b.try_into().unwrap())).to_le_bytes())
            .collect();
        out.push((name.into(), Dtype::BF16, t.shape().to_vec(), data));
    }
    for (name, stride) in [("x_critical", 5), ("x_utility", 4)] {
        let t = get(name)?;
        assert_eq!(t.dtype(), Dtype::F16);
        let k = t.shape()[1];
        let rows: Vec<&[u8]> = t.data().chunks_exact(2 * k).step_by(stride).collect();
        let data: Vec<u8> = rows.concat();
        debug_assert!(
            data.chunks_exact(2)
                .all(|b| f16::from_le_bytes([b[0], b[1]]).is_finite())
        );
        out.push((name.into(), Dtype::F16, vec![rows.len(), k], data));
    }
    for name in ["count_critical", "count_utility"] {
        let t = get(name)?;
        out.push((
            name.into(),
            t.dtype(),
            t.shape().to_vec(),
            t.data().to_vec(),
        ));
    }
    let views: Vec<(String, TensorView<'_>)> = out
        .iter()
        .map(|(n, d, s, b)| Ok((n.clone(), TensorView::new(*d, s.clone(), b)?)))
        .collect::<Result<_, safetensors::SafeTensorError>>()?;
    let about = "all-MiniLM-L6-v2 encoder.layer.3.intermediate.dense (Apache-2.0, sentence-transformers); \
                 reduced from cwpq's shared fixture: Fisher maps as bf16, every 5th critical / 4th utility token";
    let meta = HashMap::from([("about".to_string(), about.to_string())]);
    safetensors::serialize_to_file(views, Some(meta), &dst)?;
    println!(
        "wrote {} ({} bytes)",
        dst.display(),
        std::fs::metadata(&dst)?.len()
    );
    Ok(())
}
