//! Snapshot files as `check --snapshot` reads them (YAML or JSON): no panic, whatever the bytes.
#![no_main]

use kubectl_meshup::snapshot::ClusterSnapshot;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let _ = serde_saphyr::from_str::<ClusterSnapshot>(s);
    let _ = serde_json::from_str::<ClusterSnapshot>(s);
});
