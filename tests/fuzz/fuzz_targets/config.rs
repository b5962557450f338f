//! Fuzz target: any text as a config file must parse into a config or a clear error naming the
//! key, and a parsed config must validate or give a clear error: never a panic.
#![no_main]

use std::path::Path;

use comfy_fleet::config::Config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(config) = Config::parse(text, Path::new("fuzz.toml")) {
        let _ = config.validate();
        let _ = config.warnings();
    }
});
