//! Arbitrary bytes as a cwpq container: `Err`, or a valid file whose every
//! linear layer computes what the scalar oracle computes.
#![no_main]

mod common;

use cwpq::io::container::{Container, Tensor};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(c) = Container::parse(data) {
        for (_, t) in c.tensors() {
            if let Tensor::Linear { view, .. } = t {
                common::check_view(view);
            }
        }
    }
});
