//! `comfy-fleet models` as an operator runs it: `install` downloads a template's models from a
//! real HTTP server on 127.0.0.1 (a cut transfer resumes where it stopped, a wrong checksum is
//! refused), and `add`, `list` and `remove` keep the one library every instance reads.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sha2::{Digest, Sha256};
use support::COMFY_FLEET;
use support::file_server::FileServer;

/// A config with its state folder (and so the library) and templates under `dir`.
fn setup(dir: &Path) -> PathBuf {
    let config = dir.join("fleet.toml");
    std::fs::write(
        &config,
        format!(
            "[comfyui]\nstate_dir = {:?}\n[workflows]\ndir = {:?}\n",
            dir.join("state").display().to_string(),
            dir.join("workflows").display().to_string(),
        ),
    )
    .unwrap();
    std::fs::create_dir_all(dir.join("workflows")).unwrap();
    config
}

/// A template `name` whose map lists `models` (`[[model]]` TOML text).
fn template(dir: &Path, name: &str, models: &str) {
    let workflows = dir.join("workflows");
    std::fs::write(
        workflows.join(format!("{name}.json")),
        r#"{"1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}},
            "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "t"}}}"#,
    )
    .unwrap();
    std::fs::write(
        workflows.join(format!("{name}.toml")),
        format!("description = \"test\"\nworkflow = \"{name}.json\"\n{models}"),
    )
    .unwrap();
}

fn models(config: &Path, args: &[&str]) -> Output {
    Command::new(COMFY_FLEET)
        .arg("models")
        .args(args)
        .arg("--config")
        .arg(config)
        .env_remove("COMFY_FLEET_STATE_DIR")
        .env_remove("COMFY_FLEET_WORKFLOWS_DIR")
        .env_remove("COMFY_FLEET_CONFIG")
        .output()
        .unwrap()
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Deterministic bytes standing in for a model's weights.
fn weights(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

#[test]
fn install_resumes_a_cut_download_checks_it_and_skips_what_is_there() {
    let dir = tempfile::tempdir().unwrap();
    let config = setup(dir.path());
    let checkpoint = weights(3 * 1024 * 1024 + 17, 1);
    let vae = weights(200_000, 2);
    let server = FileServer::start(&[
        ("/sd/model.safetensors", &checkpoint),
        ("/vae/ae.safetensors", &vae),
    ]);
    template(
        dir.path(),
        "gen",
        &format!(
            "[[model]]\nfile = \"model.safetensors\"\nfolder = \"checkpoints\"\nurl = {:?}\nsha256 = {:?}\n\
             [[model]]\nfile = \"ae.safetensors\"\nfolder = \"vae\"\nurl = {:?}\n\
             [[model]]\nfile = \"manual.safetensors\"\nfolder = \"loras\"\n",
            server.url("/sd/model.safetensors"),
            sha256(&checkpoint),
            server.url("/vae/ae.safetensors"),
        ),
    );
    let library = dir.path().join("state/models");

    // The first transfer of the checkpoint breaks off after 1 MiB.
    server.cut_next("/sd/model.safetensors", 1024 * 1024);
    let first = models(&config, &["install", "gen"]);
    assert!(!first.status.success(), "{}", text(&first));
    let said = text(&first);
    assert!(said.contains("run the command again to resume"), "{said}");
    assert!(
        said.contains("loras/manual.safetensors (template gen) has no url"),
        "{said}"
    );
    let partial = library.join("checkpoints/.model.safetensors.download");
    let kept = std::fs::metadata(&partial).unwrap().len();
    assert!(kept > 0 && kept < checkpoint.len() as u64, "{kept}");
    assert!(!library.join("checkpoints/model.safetensors").exists());
    // The other file was installed all the same.
    assert_eq!(
        std::fs::read(library.join("vae/ae.safetensors")).unwrap(),
        vae
    );

    // The second run asks for the rest only, and checks the whole file's SHA-256.
    let second = models(&config, &["install", "gen"]);
    let said = text(&second);
    assert!(
        said.contains("vae/ae.safetensors: already installed"),
        "{said}"
    );
    assert!(said.contains("resuming at"), "{said}");
    let resumed = server
        .requests()
        .into_iter()
        .filter(|r| r.path == "/sd/model.safetensors")
        .nth(1)
        .unwrap();
    assert_eq!(resumed.range, Some(format!("bytes={kept}-")));
    assert_eq!(
        std::fs::read(library.join("checkpoints/model.safetensors")).unwrap(),
        checkpoint
    );
    assert!(!partial.exists());
    // Only the file without a URL is missing, and the exit status says so.
    assert!(!second.status.success());
    assert!(said.contains("1 model file(s) not installed"), "{said}");

    let list = models(&config, &["list"]);
    let listed = String::from_utf8_lossy(&list.stdout);
    assert!(
        listed.contains(&format!(
            "checkpoints/model.safetensors  3.00 MiB  {}",
            sha256(&checkpoint)
        )),
        "{listed}"
    );
    assert!(listed.contains(&sha256(&vae)), "{listed}");
}

#[test]
fn a_download_with_the_wrong_checksum_is_deleted_not_installed() {
    let dir = tempfile::tempdir().unwrap();
    let config = setup(dir.path());
    let bytes = weights(50_000, 3);
    let server = FileServer::start(&[("/lora.safetensors", &bytes)]);
    template(
        dir.path(),
        "styled",
        &format!(
            "[[model]]\nfile = \"ink.safetensors\"\nfolder = \"loras\"\nurl = {:?}\nsha256 = \"{}\"\n",
            server.url("/lora.safetensors"),
            "0".repeat(64)
        ),
    );
    let out = models(&config, &["install", "styled"]);
    assert!(!out.status.success());
    let said = text(&out);
    assert!(
        said.contains(&format!(
            "the SHA-256 is {}, not the expected {}",
            sha256(&bytes),
            "0".repeat(64)
        )),
        "{said}"
    );
    let loras = dir.path().join("state/models/loras");
    assert_eq!(
        std::fs::read_dir(&loras).unwrap().count(),
        0,
        "nothing left in {loras:?}"
    );
}

#[test]
fn add_list_and_remove_keep_names_safe_and_files_whole() {
    let dir = tempfile::tempdir().unwrap();
    let config = setup(dir.path());
    let source = dir.path().join("ink-v2.safetensors");
    let bytes = weights(10_000, 4);
    std::fs::write(&source, &bytes).unwrap();

    let added = models(
        &config,
        &[
            "add",
            source.to_str().unwrap(),
            "--kind",
            "loras",
            "--name",
            "styles/ink.safetensors",
        ],
    );
    assert!(added.status.success(), "{}", text(&added));
    assert_eq!(
        String::from_utf8_lossy(&added.stdout).trim(),
        "loras/styles/ink.safetensors"
    );
    let library = dir.path().join("state/models");
    assert_eq!(
        std::fs::read(library.join("loras/styles/ink.safetensors")).unwrap(),
        bytes
    );

    // Never over an existing file, never outside the kind's folder, only known kinds and model
    // file names; each refusal says what to do.
    let again = models(
        &config,
        &[
            "add",
            source.to_str().unwrap(),
            "--kind",
            "loras",
            "--name",
            "styles/ink.safetensors",
        ],
    );
    assert!(
        text(&again).contains("already in the model library; remove it first"),
        "{}",
        text(&again)
    );
    let escape = models(
        &config,
        &[
            "add",
            source.to_str().unwrap(),
            "--kind",
            "loras",
            "--name",
            "../../evil.safetensors",
        ],
    );
    assert!(
        text(&escape).contains("is not allowed"),
        "{}",
        text(&escape)
    );
    let kind = models(
        &config,
        &["add", source.to_str().unwrap(), "--kind", "lora"],
    );
    assert_eq!(kind.status.code(), Some(2));
    assert!(
        text(&kind).contains("`lora` is not a model kind") && text(&kind).contains("loras"),
        "{}",
        text(&kind)
    );
    let notes = dir.path().join("notes.txt");
    std::fs::write(&notes, b"x").unwrap();
    let not_model = models(
        &config,
        &["add", notes.to_str().unwrap(), "--kind", "loras"],
    );
    assert!(
        text(&not_model).contains("is not a model file name"),
        "{}",
        text(&not_model)
    );
    // Ephemeral files need a fleet whose stop deletes them.
    let ephemeral = models(
        &config,
        &[
            "add",
            source.to_str().unwrap(),
            "--kind",
            "loras",
            "--ephemeral",
        ],
    );
    assert!(
        text(&ephemeral).contains("no fleet runs"),
        "{}",
        text(&ephemeral)
    );
    let leftovers: Vec<_> = std::fs::read_dir(library.join("loras/styles"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(
        leftovers.len(),
        1,
        "no partial file is left behind: {leftovers:?}"
    );

    let list = models(&config, &["list", "--kind", "loras"]);
    let listed = String::from_utf8_lossy(&list.stdout).to_string();
    assert!(
        listed.starts_with("loras/styles/ink.safetensors  9.77 KiB  "),
        "{listed}"
    );
    assert!(listed.contains(&sha256(&bytes)), "{listed}");

    let removed = models(&config, &["remove", "loras/styles/ink.safetensors"]);
    assert!(removed.status.success(), "{}", text(&removed));
    assert!(!library.join("loras/styles/ink.safetensors").exists());
    let gone = models(&config, &["remove", "loras/styles/ink.safetensors"]);
    assert!(
        text(&gone).contains("is not in the model library"),
        "{}",
        text(&gone)
    );
    let empty = models(&config, &["list", "--kind", "loras"]);
    assert!(String::from_utf8_lossy(&empty.stdout).contains("no model files in"));
}

#[test]
fn a_lora_added_while_the_fleet_runs_is_listed_at_once_and_an_ephemeral_one_leaves_with_it() {
    use support::fleet_process::{FleetProcess, FleetSpec, count_phase};

    let root = tempfile::tempdir().unwrap();
    let mut fleet = FleetProcess::start(&FleetSpec::new(2, &[]), root.path());
    fleet.wait_status("2 ready instances", |s| count_phase(s, "ready") == 2);
    let config = root.path().join("fleet.toml");
    let source = root.path().join("ink.safetensors");
    std::fs::write(&source, weights(5000, 5)).unwrap();

    let kept = models(
        &config,
        &["add", source.to_str().unwrap(), "--kind", "loras"],
    );
    assert!(kept.status.success(), "{}", text(&kept));
    let temporary = models(
        &config,
        &[
            "add",
            source.to_str().unwrap(),
            "--kind",
            "loras",
            "--name",
            "today.safetensors",
            "--ephemeral",
        ],
    );
    assert!(temporary.status.success(), "{}", text(&temporary));
    let listed = fleet.get("/v1/models?kind=loras").json();
    assert_eq!(
        listed["models"]["loras"],
        serde_json::json!(["ink.safetensors", "today.safetensors"])
    );
    // One file for both instances: each registers the library, none holds a copy.
    let library = fleet.state_dir.join("models");
    for instance in ["gpu0", "gpu1"] {
        let yaml = std::fs::read_to_string(
            fleet
                .state_dir
                .join(instance)
                .join("extra_model_paths.yaml"),
        )
        .unwrap();
        assert!(yaml.contains(&library.display().to_string()), "{yaml}");
        assert!(!fleet.state_dir.join(instance).join("models").exists());
    }

    fleet.signal(nix::sys::signal::Signal::SIGTERM);
    assert!(fleet.wait_exit().success());
    assert!(library.join("loras/ink.safetensors").exists());
    assert!(!library.join("loras/today.safetensors").exists());
}
