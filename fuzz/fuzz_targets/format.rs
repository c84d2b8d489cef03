//! Fuzzes the formatter: any text either is refused, or formats to a
//! document that means the same (checked inside `format`) and formats to
//! itself again.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(out) = sovereign_syntax::format(text) {
        let again = sovereign_syntax::format(&out).expect("formatted output formats");
        assert_eq!(again, out, "formatting is not idempotent");
    }
});
