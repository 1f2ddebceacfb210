//! `plan::load` (what `apply` reads): no panic, and a plan that loads carries a matching hash.
#![no_main]

use kubectl_meshup::plan;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(p) = plan::load(s) {
        assert_eq!(p.integrity.as_deref(), Some(plan::integrity_of(&p).as_str()));
    }
});
