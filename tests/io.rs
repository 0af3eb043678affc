//! The container and GGUF readers: round trips, and one test per class of
//! hostile input, each expecting its specific `Err`.

use cwpq::importance::Budget;
use cwpq::io::container::{Container, ContainerWriter, DType, SearchTag, Tensor};
use cwpq::io::gguf::{Gguf, GgufWriter};
use cwpq::io::{Limits, crc32};
use cwpq::protect::ValueType;
use cwpq::{Error, Format, Group, LinearConfig, ProtectedLinear, Protection, SparseProblem};

fn layer(format: Format, n: usize, k: usize, values: ValueType, frac: f64) -> ProtectedLinear {
    let w: Vec<f32> = (0..n * k)
        .map(|i| (((i * 7919) % 211) as f32 - 105.0) / 40.0)
        .collect();
    let scores: Vec<f32> = w.iter().map(|v| v.abs()).collect();
    let config = LinearConfig {
        values,
        ..LinearConfig::new(format)
    };
    ProtectedLinear::build(
        &w,
        n,
        k,
        &config,
        Protection::Top {
            scores: &scores,
            budget: Budget::Fraction(frac),
            row_cap: None,
        },
    )
    .unwrap()
}

/// A container with two layers and a dense tensor; CRCs on.
fn sample() -> Vec<u8> {
    let a = layer(Format::Q4_0, 6, 64, ValueType::F16, 0.05);
    let b = layer(
        Format::Int8 {
            group: Group::PerChannel,
            asymmetric: true,
        },
        3,
        96,
        ValueType::F32,
        0.1,
    );
    let mut w = ContainerWriter::new(true);
    w.add_linear("blk.0.attn_q", &a.view(), SearchTag::Absmax);
    w.add_linear("blk.0.ffn_up", &b.view(), SearchTag::Mse);
    w.add_f32("norm", &[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
        .unwrap();
    w.finish().unwrap()
}

const TABLE: usize = 64;
const ENTRY: usize = 192;

fn put_u64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}
fn put_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}
fn get_u64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}
/// Offset of section `s` of entry `e`.
fn section(b: &[u8], e: usize, s: usize) -> (usize, usize) {
    let at = TABLE + e * ENTRY + 80 + 16 * s;
    (get_u64(b, at) as usize, get_u64(b, at + 8) as usize)
}
/// Re-computes the CRCs after a deliberate corruption of section data.
fn fix_crcs(b: &mut [u8]) {
    let count = get_u64(b, 16) as usize;
    for e in 0..count {
        for s in 0..4 {
            let (off, len) = section(b, e, s);
            let c = if len == 0 {
                0
            } else {
                crc32(&b[off..off + len])
            };
            put_u32(b, TABLE + e * ENTRY + 144 + 4 * s, c);
        }
    }
}

#[test]
fn container_round_trip_at_every_alignment() {
    let bytes = sample();
    let a = layer(Format::Q4_0, 6, 64, ValueType::F16, 0.05);
    for offset in 0..4 {
        let mut buf = vec![0u8; offset];
        buf.extend_from_slice(&bytes);
        let c = Container::parse(&buf[offset..]).unwrap();
        assert_eq!(c.tensors().len(), 3);
        let Some(Tensor::Linear { view, search }) = c.get("blk.0.attn_q") else {
            panic!("linear")
        };
        assert_eq!(*search, SearchTag::Absmax);
        assert_eq!(view.quant.as_bytes(), a.quant().as_bytes());
        assert_eq!(
            view.protected.unwrap().as_bytes(),
            a.protected().view().as_bytes()
        );
        assert_eq!(view.effective_weights(), a.effective_weights());
        let x = vec![0.5f32; 2 * 64];
        let (mut y1, mut y2) = (vec![0.0; 12], vec![0.0; 12]);
        view.forward(&x, 2, 0..6, &mut y1).unwrap();
        a.forward(&x, 2, 0..6, &mut y2).unwrap();
        assert_eq!(y1, y2);
        let Some(Tensor::Dense {
            dtype,
            dims,
            rank,
            data,
        }) = c.get("norm")
        else {
            panic!("dense")
        };
        assert_eq!(
            (*dtype, &dims[..*rank], data.len()),
            (DType::F32, &[2u64, 3][..], 24)
        );
    }
}

#[test]
fn gguf_round_trip_is_lossless() {
    for format in [Format::Q4_0, Format::Q4_1, Format::Q8_0] {
        let a = layer(format, 5, 128, ValueType::F16, 0.02);
        let mut w = GgufWriter::new();
        w.add_linear("blk.3.ffn_down", &a.view()).unwrap();
        w.add_f32("output_norm", &[128], &[1.0; 128]).unwrap();
        let bytes = w.finish().unwrap();
        for offset in 0..4 {
            let mut buf = vec![0u8; offset];
            buf.extend_from_slice(&bytes);
            let g = Gguf::parse(&buf[offset..]).unwrap();
            let v = g.linear("blk.3.ffn_down").unwrap();
            assert_eq!(v.quant.as_bytes(), a.quant().as_bytes(), "{format}");
            assert_eq!(
                v.protected.unwrap().as_bytes(),
                a.protected().view().as_bytes(),
                "{format}"
            );
            // cwpq → GGUF → cwpq container → same layer.
            let mut cw = ContainerWriter::new(false);
            cw.add_linear("l", &v, SearchTag::Unknown);
            let c_bytes = cw.finish().unwrap();
            let c = Container::parse(&c_bytes).unwrap();
            let Some(Tensor::Linear { view, .. }) = c.get("l") else {
                panic!()
            };
            assert_eq!(view.effective_weights(), a.effective_weights());
        }
    }
    // A general format has no GGUF type.
    let b = layer(Format::int4(64), 2, 64, ValueType::F16, 0.0);
    assert!(matches!(
        GgufWriter::new().add_linear("x", &b.view()),
        Err(Error::InvalidParameter { .. })
    ));
}

#[test]
fn hostile_truncation_at_every_offset() {
    let bytes = sample();
    for cut in 0..bytes.len() {
        assert!(
            Container::parse(&bytes[..cut]).is_err(),
            "prefix of {cut} bytes was accepted"
        );
    }
    let a = layer(Format::Q8_0, 3, 64, ValueType::F16, 0.05);
    let mut w = GgufWriter::new();
    w.add_linear("t", &a.view()).unwrap();
    let g = w.finish().unwrap();
    for cut in 0..g.len() {
        if let Ok(parsed) = Gguf::parse(&g[..cut]) {
            // Only trailing padding may be cut; then every tensor must still be whole.
            assert!(parsed.linear("t").is_ok(), "prefix {cut}");
        }
    }
}

#[test]
fn hostile_bad_magic_major_and_reserved() {
    let mut b = sample();
    b[0] = b'X';
    assert_eq!(
        Container::parse(&b).unwrap_err(),
        Error::InvalidFile {
            what: "not a cwpq container (magic)",
            offset: 0
        }
    );
    let mut b = sample();
    b[8] = 2;
    assert_eq!(
        Container::parse(&b).unwrap_err(),
        Error::InvalidFile {
            what: "unsupported major version",
            offset: 8
        }
    );
    let mut b = sample();
    b[10] = 9; // a higher minor is fine
    assert_eq!(Container::parse(&b).unwrap().minor(), 9);
    let mut b = sample();
    b[60] = 1;
    assert!(matches!(
        Container::parse(&b).unwrap_err(),
        Error::InvalidFile { offset: 52, .. }
    ));
}

#[test]
fn hostile_size_product_overflow() {
    let mut w = ContainerWriter::new(false);
    w.add_f32("x", &[2], &[1.0, 2.0]).unwrap();
    let mut b = w.finish().unwrap();
    put_u32(&mut b, TABLE + 20, 3);
    for (i, d) in [1u64 << 32, 1 << 32, 1 << 32].iter().enumerate() {
        put_u64(&mut b, TABLE + 24 + 8 * i, *d);
    }
    assert_eq!(
        Container::parse(&b).unwrap_err(),
        Error::SizeOverflow {
            what: "tensor size"
        }
    );
}

#[test]
fn hostile_huge_declared_counts() {
    let mut b = sample();
    put_u64(&mut b, 16, 1 << 19); // under the cap, but the table cannot fit
    assert!(matches!(
        Container::parse(&b).unwrap_err(),
        Error::Truncated {
            what: "tensor table",
            ..
        }
    ));
    put_u64(&mut b, 16, u64::MAX);
    assert!(matches!(
        Container::parse(&b).unwrap_err(),
        Error::LimitExceeded {
            what: "tensor count",
            ..
        }
    ));
    let small = Limits {
        max_tensors: 2,
        ..Limits::default()
    };
    assert!(matches!(
        Container::parse_with(&sample(), &small).unwrap_err(),
        Error::LimitExceeded {
            what: "tensor count",
            limit: 2,
            actual: 3
        }
    ));
    let short_names = Limits {
        max_name_len: 4,
        ..Limits::default()
    };
    assert!(matches!(
        Container::parse_with(&sample(), &short_names).unwrap_err(),
        Error::LimitExceeded {
            what: "name length",
            ..
        }
    ));
    // A section length far beyond the file.
    let mut b = sample();
    put_u64(&mut b, TABLE + 80 + 8, 1 << 40);
    assert!(Container::parse(&b).is_err());
    // GGUF: a tensor count and a metadata string length that lie.
    let mut g = Vec::new();
    g.extend_from_slice(&0x4655_4747u32.to_le_bytes());
    g.extend_from_slice(&3u32.to_le_bytes());
    g.extend_from_slice(&(1u64 << 19).to_le_bytes());
    g.extend_from_slice(&0u64.to_le_bytes());
    assert!(matches!(
        Gguf::parse(&g).unwrap_err(),
        Error::Truncated {
            what: "tensor infos",
            ..
        }
    ));
    let mut g2 = g.clone();
    g2[8..16].copy_from_slice(&0u64.to_le_bytes());
    g2[16..24].copy_from_slice(&1u64.to_le_bytes());
    g2.extend_from_slice(&u64::MAX.to_le_bytes()); // key length
    assert!(matches!(
        Gguf::parse(&g2).unwrap_err(),
        Error::LimitExceeded {
            what: "metadata key",
            ..
        }
    ));
    let mut g3 = g2[..24].to_vec();
    g3.extend_from_slice(&1u64.to_le_bytes());
    g3.push(b'a');
    g3.extend_from_slice(&9u32.to_le_bytes()); // array
    g3.extend_from_slice(&8u32.to_le_bytes()); // of strings
    g3.extend_from_slice(&(u64::MAX / 2).to_le_bytes());
    assert!(matches!(
        Gguf::parse(&g3).unwrap_err(),
        Error::Truncated {
            what: "metadata array",
            ..
        }
    ));
}

#[test]
fn hostile_overlapping_and_out_of_order_sections() {
    let b = sample();
    let (off0, _) = section(&b, 0, 0);
    // Entry 1's blocks moved onto entry 0's.
    let mut o = b.clone();
    put_u64(&mut o, TABLE + ENTRY + 80, off0 as u64);
    assert!(matches!(
        Container::parse(&o).unwrap_err(),
        Error::InvalidFile {
            what: "sections overlap or are out of order",
            ..
        }
    ));
    // A section inside the table.
    let mut t = b.clone();
    put_u64(&mut t, TABLE + 80, 64);
    assert!(matches!(
        Container::parse(&t).unwrap_err(),
        Error::InvalidFile {
            what: "sections overlap or are out of order",
            ..
        }
    ));
    // Misaligned section.
    let mut m = b.clone();
    put_u64(&mut m, TABLE + 80, off0 as u64 + 8);
    assert!(matches!(
        Container::parse(&m).unwrap_err(),
        Error::InvalidFile {
            what: "section offset is not aligned",
            ..
        }
    ));
    // GGUF: two tensors claiming the same bytes.
    let a = layer(Format::Q8_0, 2, 32, ValueType::F16, 0.0);
    let mut w = GgufWriter::new();
    w.add_linear("a", &a.view()).unwrap();
    w.add_linear("b", &a.view()).unwrap();
    let mut g = w.finish().unwrap();
    // The second tensor info's offset field: find "b", then skip n_dims, 2 dims, type.
    let at = g
        .windows(9)
        .position(|s| s == [1, 0, 0, 0, 0, 0, 0, 0, b'b'])
        .unwrap()
        + 9;
    let off_at = at + 4 + 16 + 4;
    g[off_at..off_at + 8].copy_from_slice(&0u64.to_le_bytes());
    assert!(matches!(
        Gguf::parse(&g).unwrap_err(),
        Error::InvalidFile {
            what: "tensor data overlap",
            ..
        }
    ));
}

#[test]
fn hostile_duplicate_names() {
    let a = layer(Format::Q4_0, 2, 32, ValueType::F16, 0.0);
    let mut w = ContainerWriter::new(false);
    w.add_linear("same", &a.view(), SearchTag::Unknown);
    w.add_linear("sbme", &a.view(), SearchTag::Unknown);
    let mut b = w.finish().unwrap();
    let names = get_u64(&b, 32) as usize;
    b[names + 5] = b'a'; // "sbme" → "same"
    assert!(matches!(
        Container::parse(&b).unwrap_err(),
        Error::InvalidFile {
            what: "duplicate tensor name",
            ..
        }
    ));
    assert!(matches!(
        ContainerWriter::new(false)
            .add_linear("x", &a.view(), SearchTag::Unknown)
            .add_linear("x", &a.view(), SearchTag::Unknown)
            .finish()
            .unwrap_err(),
        Error::InvalidParameter { .. }
    ));
    let mut w = GgufWriter::new();
    w.add_linear("dd", &a.view()).unwrap();
    w.add_linear("de", &a.view()).unwrap();
    let mut g = w.finish().unwrap();
    let at = g.windows(2).rposition(|s| s == b"de").unwrap();
    g[at + 1] = b'd';
    assert!(matches!(
        Gguf::parse(&g).unwrap_err(),
        Error::InvalidFile {
            what: "duplicate tensor name",
            ..
        }
    ));
}

#[test]
fn hostile_alignment() {
    for bad in [0u32, 3, 48, 1 << 21] {
        let mut b = sample();
        put_u32(&mut b, 12, bad);
        assert!(
            matches!(
                Container::parse(&b).unwrap_err(),
                Error::InvalidFile { offset: 12, .. }
            ),
            "{bad}"
        );
    }
    for bad in [0u32, 3, 24] {
        let mut w = GgufWriter::new();
        w.add_f32("x", &[4], &[1.0; 4]).unwrap();
        let mut g = w.finish().unwrap();
        let at = g
            .windows(17)
            .position(|s| s == b"general.alignment")
            .unwrap()
            + 17
            + 4;
        g[at..at + 4].copy_from_slice(&bad.to_le_bytes());
        assert!(
            matches!(
                Gguf::parse(&g).unwrap_err(),
                Error::InvalidFile {
                    what: "general.alignment must be a non-zero power of two",
                    ..
                }
            ),
            "{bad}"
        );
    }
}

#[test]
fn hostile_zero_dims_and_groups() {
    let mut b = sample();
    put_u64(&mut b, TABLE + 24, 0);
    assert_eq!(
        Container::parse(&b).unwrap_err(),
        Error::ZeroDimension {
            what: "tensor dimension"
        }
    );
    // Q4_0 with group 0.
    let mut b = sample();
    put_u64(&mut b, TABLE + 64, 0);
    assert!(
        matches!(Container::parse(&b).unwrap_err(), Error::InvalidFile { offset, .. } if offset == (TABLE + 56) as u64)
    );
    // int8 with a group that does not divide k = 96 (entry 1).
    let mut b = sample();
    put_u64(&mut b, TABLE + ENTRY + 64, 64);
    assert_eq!(
        Container::parse(&b).unwrap_err(),
        Error::InvalidGroupSize { group: 64, k: 96 }
    );
    // GGUF zero dimension.
    let mut w = GgufWriter::new();
    w.add_f32("x", &[4], &[1.0; 4]).unwrap();
    let mut g = w.finish().unwrap();
    let at = g
        .windows(9)
        .rposition(|s| s == [1, 0, 0, 0, 0, 0, 0, 0, b'x'])
        .unwrap()
        + 9
        + 4;
    g[at..at + 8].copy_from_slice(&0u64.to_le_bytes());
    assert_eq!(
        Gguf::parse(&g).unwrap_err(),
        Error::ZeroDimension {
            what: "tensor dimension"
        }
    );
}

#[test]
fn hostile_non_finite_scales_and_values() {
    let b = sample();
    let (blocks, _) = section(&b, 0, 0);
    let mut s = b.clone();
    s[blocks..blocks + 2].copy_from_slice(&0x7C00u16.to_le_bytes());
    fix_crcs(&mut s);
    assert_eq!(
        Container::parse(&s).unwrap_err(),
        Error::NonFinite {
            what: "block scale or min",
            index: 0
        }
    );
    let (vals, _) = section(&b, 0, 3);
    let mut v = b.clone();
    v[vals + 2..vals + 4].copy_from_slice(&0x7E00u16.to_le_bytes());
    fix_crcs(&mut v);
    assert_eq!(
        Container::parse(&v).unwrap_err(),
        Error::InvalidProtectedSet {
            problem: SparseProblem::NonFiniteValue,
            index: 1
        }
    );
    // Without fixing the CRC, the CRC catches it first.
    v[vals + 2] ^= 1;
    assert!(matches!(
        Container::parse(&v).unwrap_err(),
        Error::InvalidFile {
            what: "section CRC-32 mismatch",
            ..
        }
    ));
}

#[test]
fn hostile_protected_columns_and_row_ptr() {
    let b = sample();
    let (cols, clen) = section(&b, 0, 2);
    let (rp, _) = section(&b, 0, 1);
    assert!(clen >= 4, "the sample has protected weights");
    let row0 = u32::from_le_bytes(b[rp + 4..rp + 8].try_into().unwrap()) as usize;
    assert!(row0 >= 2, "row 0 has at least two protected weights");
    type Corrupt = Box<dyn Fn(&mut Vec<u8>)>;
    let cases: Vec<(Corrupt, Error)> = vec![
        (
            Box::new(move |b: &mut Vec<u8>| {
                b[cols..cols + 2].copy_from_slice(&64u16.to_le_bytes())
            }),
            Error::InvalidProtectedSet {
                problem: SparseProblem::ColumnOutOfRange,
                index: 0,
            },
        ),
        (
            Box::new(move |b: &mut Vec<u8>| {
                let c1 = [b[cols + 2], b[cols + 3]];
                b[cols..cols + 2].copy_from_slice(&c1);
                b[cols + 2..cols + 4].copy_from_slice(&0u16.to_le_bytes());
            }),
            Error::InvalidProtectedSet {
                problem: SparseProblem::ColumnsNotIncreasing,
                index: 1,
            },
        ),
        (
            Box::new(move |b: &mut Vec<u8>| {
                let c0 = [b[cols], b[cols + 1]];
                b[cols + 2..cols + 4].copy_from_slice(&c0);
            }),
            Error::InvalidProtectedSet {
                problem: SparseProblem::ColumnsNotIncreasing,
                index: 1,
            },
        ),
        (
            Box::new(move |b: &mut Vec<u8>| {
                b[rp + 8..rp + 12].copy_from_slice(&0u32.to_le_bytes())
            }),
            Error::InvalidProtectedSet {
                problem: SparseProblem::RowPtrNotMonotone,
                index: 1,
            },
        ),
        (
            Box::new(move |b: &mut Vec<u8>| b[rp..rp + 4].copy_from_slice(&1u32.to_le_bytes())),
            Error::InvalidProtectedSet {
                problem: SparseProblem::RowPtrStart,
                index: 0,
            },
        ),
    ];
    for (i, (corrupt, want)) in cases.into_iter().enumerate() {
        let mut c = b.clone();
        corrupt(&mut c);
        fix_crcs(&mut c);
        assert_eq!(Container::parse(&c).unwrap_err(), want, "case {i}");
    }
    // row_ptr not ending at nnz: the last entry of entry 0's row_ptr (n = 6).
    let mut c = b.clone();
    let last = rp + 6 * 4;
    let v = u32::from_le_bytes(c[last..last + 4].try_into().unwrap());
    c[last..last + 4].copy_from_slice(&(v - 1).to_le_bytes());
    fix_crcs(&mut c);
    assert!(matches!(
        Container::parse(&c).unwrap_err(),
        Error::InvalidProtectedSet {
            problem: SparseProblem::RowPtrEnd | SparseProblem::RowPtrNotMonotone,
            ..
        }
    ));
    // The same checks guard the GGUF companions.
    let a = layer(Format::Q4_0, 4, 64, ValueType::F16, 0.05);
    let mut w = GgufWriter::new();
    w.add_linear("t", &a.view()).unwrap();
    let mut g = w.finish().unwrap();
    let parsed = Gguf::parse(&g).unwrap();
    let cols_at = parsed.get("t.cwp.cols").unwrap().data.as_ptr() as usize - g.as_ptr() as usize;
    g[cols_at..cols_at + 2].copy_from_slice(&999u16.to_le_bytes());
    assert_eq!(
        Gguf::parse(&g).unwrap().linear("t").unwrap_err(),
        Error::InvalidProtectedSet {
            problem: SparseProblem::ColumnOutOfRange,
            index: 0
        }
    );
}

#[test]
fn hostile_gguf_metadata_depth_and_types() {
    let header = |kvs: u64| {
        let mut g = Vec::new();
        g.extend_from_slice(&0x4655_4747u32.to_le_bytes());
        g.extend_from_slice(&3u32.to_le_bytes());
        g.extend_from_slice(&0u64.to_le_bytes());
        g.extend_from_slice(&kvs.to_le_bytes());
        g.extend_from_slice(&1u64.to_le_bytes());
        g.push(b'k');
        g
    };
    // Arrays nested deeper than the cap.
    let mut g = header(1);
    g.extend_from_slice(&9u32.to_le_bytes());
    for _ in 0..6 {
        g.extend_from_slice(&9u32.to_le_bytes());
        g.extend_from_slice(&1u64.to_le_bytes());
    }
    g.extend_from_slice(&[0; 64]);
    assert!(matches!(
        Gguf::parse(&g).unwrap_err(),
        Error::LimitExceeded {
            what: "metadata array depth",
            ..
        }
    ));
    // Unknown value type.
    let mut g = header(1);
    g.extend_from_slice(&77u32.to_le_bytes());
    assert!(matches!(
        Gguf::parse(&g).unwrap_err(),
        Error::InvalidFile {
            what: "unknown metadata value type",
            ..
        }
    ));
    // Wrong version.
    let mut g = header(0);
    g[4] = 2;
    assert!(matches!(
        Gguf::parse(&g).unwrap_err(),
        Error::InvalidFile {
            what: "unsupported GGUF version (only 3)",
            ..
        }
    ));
}
