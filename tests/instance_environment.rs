//! What a ComfyUI process inherits: custom nodes run inside it, so comfy-fleet's secrets must
//! not be in its environment (`/proc/<pid>/environ`), while the operator's `[comfyui.env]`
//! variables and the GPU pinning are.

mod support;

use support::fleet_process::{FleetProcess, FleetSpec};

#[test]
fn instances_never_inherit_the_api_tokens() {
    let root = tempfile::tempdir().unwrap();
    let spec = FleetSpec::new(2, &[]).set("comfyui.env", "HF_HOME", "\"/cache/hf\"");
    let fleet = FleetProcess::start_with_env(
        &spec,
        root.path(),
        &[("COMFY_FLEET_API_TOKENS", "s3cret-token=ann")],
    );
    // `/v1/status` needs a token now: the instances' own log lines say when they are ready.
    fleet.log.wait_for_count("both instances ready", 2, |l| {
        l.contains("instance transition") && l.contains("reason=\"ready\"")
    });
    // The API enforces the tokens it was given…
    assert_eq!(fleet.get("/v1/status").status, 401);
    // …and no instance can read them.
    let instances = fleet.processes();
    assert_eq!(instances.len(), 2, "{instances:#?}");
    for process in instances {
        let environ = process.environ();
        assert!(
            !environ.contains_key("COMFY_FLEET_API_TOKENS")
                && !environ.contains_key("DISCORD_TOKEN"),
            "instance process {} inherited a secret: {:?}",
            process.pid,
            environ.keys().collect::<Vec<_>>()
        );
        assert!(
            environ.values().all(|v| !v.contains("s3cret-token")),
            "the token's value is nowhere in the environment"
        );
        assert_eq!(
            environ.get("HF_HOME").map(String::as_str),
            Some("/cache/hf")
        );
        assert!(
            environ
                .get("CUDA_VISIBLE_DEVICES")
                .is_some_and(|g| g.starts_with("GPU-test-")),
            "{environ:?}"
        );
    }
}
