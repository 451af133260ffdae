#![no_main]
// See suivi_tests::fuzz::case_document for what this target feeds and what counts as a bug.
libfuzzer_sys::fuzz_target!(
    init: suivi_tests::fuzz::contain_panics(),
    |data: &[u8]| suivi_tests::fuzz::case_document(data)
);
