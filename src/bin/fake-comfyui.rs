//! The `fake-comfyui` program, the demo/test stand-in for ComfyUI (the `fake-comfyui` crate in
//! `fakes/comfyui/`). Built here, in the root package, so that it lands next to `comfy-fleet` in
//! `target/*/` and `cargo install --path .` installs both programs.

fn main() {
    std::process::exit(fake_comfyui::run_command_line());
}
