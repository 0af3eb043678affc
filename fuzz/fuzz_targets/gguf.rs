//! Arbitrary bytes as GGUF: `Err`, or tensors whose linear views compute
//! what the scalar oracle computes.
#![no_main]

mod common;

use cwpq::io::gguf::Gguf;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(g) = Gguf::parse(data) {
        for t in g.tensors() {
            if let Ok(view) = g.linear(t.name) {
                common::check_view(&view);
            }
        }
    }
});
