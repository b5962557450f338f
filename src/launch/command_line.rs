//! The command line and environment of one managed ComfyUI: the operator's command, the
//! arguments comfy-fleet computes (address, port, the instance's own folders and database),
//! the operator's extra arguments, and the GPU pinning.

use comfy_fleet_actors::ports::LaunchSpec;

use super::folders::InstanceFolders;

/// The arguments after the command: computed ones first, then the operator's extra ones (so
/// the operator can override a computed flag).
pub fn comfyui_args(spec: &LaunchSpec, port: u16, folders: &InstanceFolders) -> Vec<String> {
    let path = |p: std::path::PathBuf| p.to_string_lossy().into_owned();
    let mut args = vec![
        "--listen".to_string(),
        spec.listen.clone(),
        "--port".into(),
        port.to_string(),
        "--input-directory".into(),
        path(folders.input()),
        "--output-directory".into(),
        path(folders.output()),
        // ComfyUI appends `temp/` itself.
        "--temp-directory".into(),
        path(folders.state_dir().to_path_buf()),
        "--user-directory".into(),
        path(folders.user()),
        "--database-url".into(),
        folders.database_url(),
        "--extra-model-paths-config".into(),
        path(folders.extra_model_paths()),
        "--disable-auto-launch".into(),
    ];
    if spec.gpu.is_none() {
        args.push("--cpu".into());
    }
    args.extend(spec.extra_args.iter().cloned());
    args
}

/// The environment added to comfy-fleet's own: the GPU pinning (by UUID, in PCI bus order),
/// unbuffered Python output, then the operator's variables (never a secret of comfy-fleet's:
/// the launcher also removes those from the inherited environment).
pub fn comfyui_env(spec: &LaunchSpec) -> Vec<(String, String)> {
    let visible = spec.gpu.as_ref().map(|g| g.0.clone()).unwrap_or_default();
    let mut env = vec![
        ("CUDA_VISIBLE_DEVICES".to_string(), visible),
        ("CUDA_DEVICE_ORDER".into(), "PCI_BUS_ID".into()),
        ("PYTHONUNBUFFERED".into(), "1".into()),
    ];
    env.extend(
        spec.env
            .iter()
            .filter(|(k, _)| !crate::config::SECRET_ENV_VARS.contains(&k.as_str()))
            .cloned(),
    );
    env
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use comfy_fleet_actors::{GpuId, InstanceId};

    use super::*;

    fn spec(gpu: Option<&str>) -> LaunchSpec {
        LaunchSpec {
            instance: InstanceId::new("gpu1"),
            command: vec!["python".into(), "main.py".into()],
            working_dir: None,
            extra_args: vec!["--preview-method".into(), "none".into()],
            env: vec![("HF_HOME".into(), "/cache".into())],
            gpu: gpu.map(|g| GpuId(g.into())),
            listen: "127.0.0.1".into(),
            port: 0,
            state_dir: PathBuf::from("/srv/fleet/gpu1"),
        }
    }

    #[test]
    fn instances_get_their_own_folders_database_and_port() {
        let s = spec(Some("GPU-1111"));
        let folders = InstanceFolders::new(&s.state_dir).unwrap();
        let args = comfyui_args(&s, 40123, &folders);
        let value = |flag: &str| {
            let i = args.iter().position(|a| a == flag).unwrap();
            args[i + 1].as_str()
        };
        assert_eq!(value("--port"), "40123");
        assert_eq!(value("--input-directory"), "/srv/fleet/gpu1/input");
        assert_eq!(value("--temp-directory"), "/srv/fleet/gpu1");
        assert_eq!(
            value("--database-url"),
            "sqlite:////srv/fleet/gpu1/comfyui.db"
        );
        assert!(!args.contains(&"--cpu".to_string()));
        assert_eq!(&args[args.len() - 2..], ["--preview-method", "none"]);
        let env = comfyui_env(&s);
        assert!(env.contains(&("CUDA_VISIBLE_DEVICES".into(), "GPU-1111".into())));
        assert_eq!(env.last().unwrap(), &("HF_HOME".into(), "/cache".into()));
    }

    #[test]
    fn no_gpu_means_cpu_mode_and_no_visible_device() {
        let s = spec(None);
        let folders = InstanceFolders::new(&s.state_dir).unwrap();
        assert!(comfyui_args(&s, 1, &folders).contains(&"--cpu".to_string()));
        assert!(comfyui_env(&s).contains(&("CUDA_VISIBLE_DEVICES".into(), String::new())));
    }

    #[test]
    fn secrets_written_in_the_instance_environment_are_left_out() {
        let mut s = spec(None);
        s.env.push(("DISCORD_TOKEN".into(), "secret".into()));
        s.env.push(("COMFY_FLEET_API_TOKENS".into(), "t=u".into()));
        let env = comfyui_env(&s);
        assert!(
            !env.iter()
                .any(|(k, _)| crate::config::SECRET_ENV_VARS.contains(&k.as_str())),
            "{env:?}"
        );
        assert!(env.contains(&("HF_HOME".into(), "/cache".into())));
    }
}
