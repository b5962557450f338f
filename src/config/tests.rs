//! Tests of the config schema: defaults, the shipped file, parse and validation errors (each
//! names its key and line), environment overrides and warnings.

use std::time::Duration;

use super::*;

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(text, Path::new("test.toml"))
}

/// Parses and validates, as `check-config` and `serve` do.
fn check(text: &str) -> Result<Config, ConfigError> {
    let config = parse(text)?;
    config.validate()?;
    Ok(config)
}

#[test]
fn empty_file_gives_defaults() {
    let c = check("").unwrap();
    assert_eq!(c.http.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(c.comfyui.listen.to_string(), "127.0.0.1");
    assert_eq!(c.comfyui.backend_kind(), BackendKind::Demo);
    assert_eq!(c.lifecycle.stop_grace, Duration::from_secs(10));
    assert_eq!(c.shutdown.drain_timeout, Duration::from_secs(30));
}

#[test]
fn the_defaults_are_the_actors_own() {
    let c = parse("").unwrap();
    assert_eq!(c.lifecycle, InstanceConfig::default());
    assert_eq!(c.scheduler, SchedulerConfig::default());
    assert_eq!(c.limits, RateLimitConfig::default());
}

#[test]
fn shipped_config_is_valid_and_documents_every_default() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let c = Config::parse(&text, &path).unwrap();
    c.validate().unwrap();
    // Every key of the defaults appears in the shipped file, at every depth, with the default
    // value (the file documents the defaults; it does not change them).
    let defaults: toml::Table =
        toml::from_str(&toml::to_string(&Config::default()).unwrap()).unwrap();
    let shipped: toml::Table = toml::from_str(&text).unwrap();
    fn walk(prefix: &str, defaults: &toml::Table, shipped: &toml::Table) {
        for (key, value) in defaults {
            let dotted = format!("{prefix}{key}");
            let Some(written) = shipped.get(key) else {
                // An empty list of tables (`[[remote]]`) is documented in comments.
                let empty_list = value.as_array().is_some_and(|a| a.is_empty());
                assert!(empty_list, "config.toml lacks `{dotted}`");
                continue;
            };
            match (value, written) {
                (toml::Value::Table(d), toml::Value::Table(s)) => walk(&format!("{dotted}."), d, s),
                (d, s) => assert_eq!(
                    d, s,
                    "config.toml sets `{dotted}` to something else than its default"
                ),
            }
        }
    }
    walk("", &defaults, &shipped);
}

#[test]
fn bad_duration_names_line_key_and_form() {
    let err = parse("[lifecycle]\nstop_grace = \"ten seconds\"\n")
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("test.toml:2:"), "{err}");
    assert!(err.contains("`lifecycle.stop_grace`"), "{err}");
    assert!(err.contains("\"30s\""), "{err}");
}

#[test]
fn wrong_type_names_key_and_expectation() {
    let err = parse("[scheduler]\n\nqueue_capacity = \"many\"\n")
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("test.toml:3:"), "{err}");
    assert!(err.contains("`scheduler.queue_capacity`"), "{err}");
    assert!(err.contains("integer") || err.contains("usize"), "{err}");
}

#[test]
fn nested_and_array_keys_are_named_from_the_parser() {
    let err = parse("[lifecycle.backoff]\nmultiplier = \"x\"\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("`lifecycle.backoff.multiplier`"), "{err}");
    let err = parse("[[remote]]\nname = \"a\"\nurl = 5\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("`remote[0].url`"), "{err}");
    assert!(err.starts_with("test.toml:3:"), "{err}");
    let err = parse("[limits]\nper_user = [{ jobs = -1, per = \"1m\" }]\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("`limits.per_user[0].jobs`"), "{err}");
}

#[test]
fn unknown_key_is_refused_with_the_known_ones() {
    let err = parse("[http]\nlisten_addr = \"x\"\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("listen_addr"), "{err}");
    assert!(err.contains("`listen`"), "{err}");
    assert!(err.starts_with("test.toml:2:"), "{err}");
}

#[test]
fn secrets_in_the_file_are_refused_with_a_pointer_to_the_environment() {
    let err = parse("[discord]\ntoken = \"abc\"\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("DISCORD_TOKEN"), "{err}");
}

#[test]
fn there_is_no_discord_switch_in_the_file() {
    let err = parse("[discord]\nenabled = true\n")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("`enabled`") && err.contains("DISCORD_TOKEN"),
        "{err}"
    );
}

#[test]
fn settings_that_used_to_pass_check_config_and_fail_serve_are_refused_with_their_key() {
    // Each of these once passed `check-config` and then failed (or panicked in) `serve`.
    let cases = [
        (
            "[lifecycle.backoff]\njitter = 1.0\n",
            "lifecycle.backoff.jitter",
            2,
        ),
        (
            "[lifecycle]\nhealth_interval = \"0s\"\n",
            "lifecycle.health_interval",
            2,
        ),
        (
            "[lifecycle]\nreadiness_poll = \"0s\"\n",
            "lifecycle.readiness_poll",
            2,
        ),
        (
            "[lifecycle.restart_intensity]\ncooldown = \"0s\"\n",
            "lifecycle.restart_intensity.cooldown",
            2,
        ),
        (
            "[lifecycle]\nhealth_failures = 0\n",
            "lifecycle.health_failures",
            2,
        ),
        (
            "[lifecycle.backoff]\nmultiplier = 0.5\n",
            "lifecycle.backoff.multiplier",
            2,
        ),
        (
            "[lifecycle.backoff]\ninitial = \"2m\"\nmax = \"1m\"\n",
            "lifecycle.backoff.initial",
            2,
        ),
        (
            "[scheduler]\npipeline_depth = 0\n",
            "scheduler.pipeline_depth",
            2,
        ),
        (
            "[scheduler]\nqueue_capacity = 0\n",
            "scheduler.queue_capacity",
            2,
        ),
        (
            "[scheduler]\n\neta_smoothing = 0.0\n",
            "scheduler.eta_smoothing",
            3,
        ),
        (
            "[scheduler]\nstats_window = \"0s\"\n",
            "scheduler.stats_window",
            2,
        ),
        (
            "[scheduler]\nposition_update_change = 1.5\n",
            "scheduler.position_update_change",
            2,
        ),
        (
            "[scheduler]\neta_update_change = 0.0\n",
            "scheduler.eta_update_change",
            2,
        ),
        (
            "[limits]\nper_user = [{ jobs = 0, per = \"1m\" }]\n",
            "limits.per_user[0].jobs",
            2,
        ),
        (
            "[limits]\nglobal = [{ jobs = 5, per = \"1m\" }, { jobs = 5, per = \"0s\" }]\n",
            "limits.global[1].per",
            2,
        ),
        (
            "[gpus]\nsample_interval = \"0s\"\n",
            "gpus.sample_interval",
            2,
        ),
        ("[[gpus.declared]]\nid = \" \"\n", "gpus.declared[0].id", 2),
        ("[instances]\nper_gpu = 0\n", "instances.per_gpu", 2),
        (
            "[[remote]]\nname = \"r\"\nurl = \"ftp://x\"\n",
            "remote[0].url",
            3,
        ),
        (
            "[[remote]]\nname = \"r\"\nurl = \"http://a\"\n[[remote]]\nname = \"r\"\nurl = \"http://b\"\n",
            "remote[1].name",
            5,
        ),
        ("[http]\nmax_body_mb = 0\n", "http.max_body_mb", 2),
        ("[http]\nmax_images = 0\n", "http.max_images", 2),
        ("[http]\nanonymous_user = \"\"\n", "http.anonymous_user", 2),
        (
            "[discord]\nprogress_interval = \"0s\"\n",
            "discord.progress_interval",
            2,
        ),
        (
            "[discord]\ntoken_handover = \"15m\"\n",
            "discord.token_handover",
            2,
        ),
        (
            "[discord]\napi_proxy = \"localhost:9000\"\n",
            "discord.api_proxy",
            2,
        ),
        (
            "[discord]\nallowed_channels = [0]\n",
            "discord.allowed_channels",
            2,
        ),
        ("[limits]\nmax_image_mb = 0\n", "limits.max_image_mb", 2),
        ("[logging]\nlevel = \"info,=[\"\n", "logging.level", 2),
        (
            "[comfyui]\npath = \"/nonexistent/comfy\"\n",
            "comfyui.path",
            2,
        ),
        ("[comfyui]\ncommand = [\"\"]\n", "comfyui.command", 2),
        (
            "[comfyui]\nmodels_dir = \"/nonexistent/models\"\nmodels_read_only = true\n",
            "comfyui.models_read_only",
            3,
        ),
        (
            "[comfyui]\nmodels_dir = \"/proc/self/cmdline\"\n",
            "comfyui.models_dir",
            2,
        ),
        (
            "[http]\nmax_model_upload_mb = 0\n",
            "http.max_model_upload_mb",
            2,
        ),
        (
            "[http]\noperators = [\"ops\", \" \"]\n",
            "http.operators[1]",
            2,
        ),
    ];
    for (text, key, line) in cases {
        let err = check(text).expect_err(text);
        assert_eq!(err.key(), Some(key), "{text}: {err}");
        let shown = err.to_string();
        assert!(
            shown.starts_with(&format!("test.toml:{line}:")),
            "{text}: the message should point at line {line}: {shown}"
        );
        assert!(shown.contains(&format!("`{key}`")), "{shown}");
    }
}

#[test]
fn a_setting_left_at_an_unworkable_default_is_still_named() {
    // Not written in the file, so no line: the key alone.
    let mut c = parse("").unwrap();
    c.lifecycle.backoff.jitter = 1.0;
    let err = c.validate().unwrap_err().to_string();
    assert!(
        err.starts_with("test.toml: `lifecycle.backoff.jitter`: is 1"),
        "{err}"
    );
}

#[test]
fn environment_overrides_paths_and_carries_secrets() {
    let mut c = parse("").unwrap();
    c.apply_env(|k| match k {
        ENV_STATE_DIR => Some("/tmp/fleet".into()),
        ENV_DISCORD_TOKEN => Some(" tok ".into()),
        ENV_DISCORD_PROXY => Some("http://127.0.0.1:9000".into()),
        ENV_API_TOKENS => Some("abc=alice, def=bob".into()),
        _ => None,
    })
    .unwrap();
    assert_eq!(c.comfyui.state_dir, PathBuf::from("/tmp/fleet"));
    assert_eq!(c.discord.token.as_deref(), Some("tok"));
    assert_eq!(c.discord.api_proxy, "http://127.0.0.1:9000");
    assert_eq!(c.http.tokens.get("def").map(String::as_str), Some("bob"));
    let bad = c.apply_env(|k| (k == ENV_API_TOKENS).then(|| "abc".into()));
    assert!(bad.unwrap_err().to_string().contains("token=user"));
}

#[test]
fn exposed_listeners_without_tokens_and_an_uncapped_user_are_warned_about() {
    let c = check("").unwrap();
    assert!(c.warnings().is_empty(), "{:?}", c.warnings());
    let c = check("[http]\nlisten = \"0.0.0.0:8080\"\n[comfyui]\nlisten = \"0.0.0.0\"\n[limits]\nuser_concurrent = 0\n").unwrap();
    let warnings = c.warnings().join("\n");
    assert!(
        warnings.contains("http.listen = 0.0.0.0:8080"),
        "{warnings}"
    );
    assert!(warnings.contains(ENV_API_TOKENS), "{warnings}");
    assert!(warnings.contains("comfyui.listen = 0.0.0.0"), "{warnings}");
    assert!(
        warnings.contains("limits.user_concurrent = 0: no cap"),
        "{warnings}"
    );
    let mut c = check("[http]\nlisten = \"0.0.0.0:8080\"\n").unwrap();
    c.apply_env(|k| (k == ENV_API_TOKENS).then(|| "t=alice".into()))
        .unwrap();
    assert!(c.warnings().is_empty(), "tokens set: {:?}", c.warnings());
}

#[test]
fn a_remote_without_its_folders_is_warned_about_and_validated_values_name_their_key() {
    let remote = "[[remote]]\nname = \"box\"\nurl = \"http://127.0.0.1:8188\"\n";
    let warnings = check(remote).unwrap().warnings().join("\n");
    assert!(
        warnings.contains("remote `box` has no base_directory"),
        "{warnings}"
    );
    let known = format!("{remote}base_directory = \"/opt/ComfyUI\"\n");
    assert!(check(&known).unwrap().warnings().is_empty());
    let err = check("[outputs]\nmax_size_mb = 0\n").unwrap_err();
    assert_eq!(err.key(), Some("outputs.max_size_mb"), "{err}");
    let err = check("[outputs]\nretention = \"0s\"\n").unwrap_err();
    assert_eq!(err.key(), Some("outputs.retention"), "{err}");
}

#[test]
fn without_tokens_on_loopback_the_anonymous_user_is_exempt_from_the_limits() {
    let c = check("").unwrap();
    assert!(c.anonymous_unlimited());
    assert!(
        c.effective_limits()
            .exempt_users
            .contains(&comfy_fleet_actors::UserId::new("local"))
    );
    let exposed = check("[http]\nlisten = \"0.0.0.0:8080\"\n").unwrap();
    assert!(!exposed.anonymous_unlimited());
    let mut tokens = check("").unwrap();
    tokens
        .apply_env(|k| (k == ENV_API_TOKENS).then(|| "t=alice".into()))
        .unwrap();
    assert!(!tokens.anonymous_unlimited());
    assert!(tokens.effective_limits().exempt_users.is_empty());
}

#[test]
fn a_real_comfyui_path_switches_to_python_main() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("main.py"), "").unwrap();
    let mut c = parse("").unwrap();
    c.comfyui.path = dir.path().to_path_buf();
    c.validate().unwrap();
    assert_eq!(c.comfyui.backend_kind(), BackendKind::ComfyUi);
    let (cmd, cwd) = c.comfyui.launch_command();
    assert_eq!(cmd, vec!["python3".to_string(), "main.py".into()]);
    assert_eq!(cwd.as_deref(), Some(dir.path()));
}
