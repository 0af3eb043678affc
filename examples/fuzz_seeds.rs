//! Writes real container and GGUF files as seed corpora for the fuzz
//! targets: `cargo run --example fuzz_seeds` (into `fuzz/seeds/`).

use cwpq::importance::Budget;
use cwpq::io::container::{ContainerWriter, SearchTag};
use cwpq::io::gguf::GgufWriter;
use cwpq::protect::ValueType;
use cwpq::{Format, Group, LinearConfig, ProtectedLinear, Protection};

fn layer(format: Format, n: usize, k: usize, values: ValueType, frac: f64) -> ProtectedLinear {
    let w: Vec<f32> = (0..n * k)
        .map(|i| (((i * 7919) % 211) as f32 - 105.0) / 40.0)
        .collect();
    let scores: Vec<f32> = w.iter().map(|v| v.abs()).collect();
    let config = LinearConfig {
        values,
        ..LinearConfig::new(format)
    };
    let plan = Protection::Top {
        scores: &scores,
        budget: Budget::Fraction(frac),
        row_cap: None,
    };
    ProtectedLinear::build(&w, n, k, &config, plan).expect("valid layer")
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::path::Path::new("fuzz/seeds");
    std::fs::create_dir_all(dir.join("container"))?;
    std::fs::create_dir_all(dir.join("gguf"))?;
    let layers = [
        layer(Format::Q4_0, 4, 64, ValueType::F16, 0.05),
        layer(Format::Q4_1, 3, 32, ValueType::F16, 0.1),
        layer(Format::Q8_0, 2, 64, ValueType::F16, 0.0),
        layer(
            Format::Int8 {
                group: Group::PerChannel,
                asymmetric: true,
            },
            3,
            96,
            ValueType::F32,
            0.1,
        ),
        layer(Format::int4(32), 2, 64, ValueType::Bf16, 0.2),
    ];
    for (i, l) in layers.iter().enumerate() {
        let mut c = ContainerWriter::new(i % 2 == 0);
        c.add_linear("layer", &l.view(), SearchTag::Absmax);
        c.add_f32("norm", &[4], &[1.0, 2.0, 3.0, 4.0])?;
        std::fs::write(dir.join(format!("container/seed{i}")), c.finish()?)?;
        if l.quant().shape().format().is_gguf() {
            let mut g = GgufWriter::new();
            g.add_linear("blk.0.weight", &l.view())?;
            g.add_f32("norm", &[4], &[1.0; 4])?;
            std::fs::write(dir.join(format!("gguf/seed{i}")), g.finish()?)?;
        }
    }
    println!("wrote seeds under {}", dir.display());
    Ok(())
}
