//! The benchmark's probe: exports that do as little as possible.

wit_bindgen::generate!({ path: "../wit", world: "probe" });

struct Probe;

impl Guest for Probe {
    fn noop() {}

    fn take(data: Vec<u8>) -> u32 {
        data.len() as u32
    }
}

export!(Probe);
