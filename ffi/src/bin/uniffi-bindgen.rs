//! The uniffi bindings generator, as a binary of the workspace (see `ffi/generate-kotlin.sh`).

fn main() {
    uniffi::uniffi_bindgen_main()
}
