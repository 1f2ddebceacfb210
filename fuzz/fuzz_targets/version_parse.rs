//! Every version parser on arbitrary text: no panic, and what parses prints back to itself.
#![no_main]

use kubectl_meshup::version::{KernelVersion, KubeVersion, Minor, Version, image_version};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(v) = Version::parse(s) {
        assert_eq!(Version::parse(&v.to_string()).ok(), Some(v));
    }
    if let Ok(m) = Minor::parse(s) {
        assert_eq!(Minor::parse(&m.to_string()).ok(), Some(m));
    }
    let _ = Version::parse_prefix(s);
    let _ = KernelVersion::parse(s);
    let _ = KubeVersion::from_server(s, "1", "29+");
    // gitVersion, major and minor from one input, split at character boundaries.
    let chars: Vec<char> = s.chars().collect();
    let third = chars.len() / 3;
    let part = |r: std::ops::Range<usize>| chars[r].iter().collect::<String>();
    let (a, b, c) = (part(0..third), part(third..2 * third), part(2 * third..chars.len()));
    let _ = KubeVersion::from_server(&a, &b, &c);
    let _ = image_version(s);
});
