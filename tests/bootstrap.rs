//! The bootstrap scripts, on a fake root with stubbed system commands (no
//! K3s can run here): `shellcheck` finds nothing; `--dry-run` prints every
//! action and changes nothing; a run does the work and a second run
//! changes nothing and says so; no root, an unsupported OS, a missing
//! driver and an incomplete air-gap folder are clear errors; the air-gap
//! install copies from its folder and needs no network.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

struct Machine {
    dir: tempfile::TempDir,
}

impl Machine {
    /// A Debian machine as root, with stubs for what the scripts call.
    fn new() -> Machine {
        let machine = Machine { dir: tempfile::tempdir().unwrap() };
        machine.file("root/etc/os-release", "ID=debian\nVERSION_ID=12\n");
        machine.stub("id", "echo \"${FAKE_UID:-0}\"");
        machine.stub("uname", "echo Linux");
        machine.stub("systemctl", "[ -e \"$SOVEREIGN_BOOTSTRAP_ROOT/run/k3s-active\" ]");
        // What get.k3s.io's script does, as far as the scripts can see it.
        let install = "#!/bin/sh
mkdir -p \"$SOVEREIGN_BOOTSTRAP_ROOT/usr/local/bin\" \"$SOVEREIGN_BOOTSTRAP_ROOT/etc/rancher/k3s\" \"$SOVEREIGN_BOOTSTRAP_ROOT/run\"
printf '#!/bin/sh\\necho \"k3s version v1.33.5+k3s1 (00000000)\"\\n' > \"$SOVEREIGN_BOOTSTRAP_ROOT/usr/local/bin/k3s\"
chmod 755 \"$SOVEREIGN_BOOTSTRAP_ROOT/usr/local/bin/k3s\"
echo 'apiVersion: v1' > \"$SOVEREIGN_BOOTSTRAP_ROOT/etc/rancher/k3s/k3s.yaml\"
chmod 644 \"$SOVEREIGN_BOOTSTRAP_ROOT/etc/rancher/k3s/k3s.yaml\"
touch \"$SOVEREIGN_BOOTSTRAP_ROOT/run/k3s-active\"
echo \"installed with ${INSTALL_K3S_VERSION:-channel $INSTALL_K3S_CHANNEL}\" >> \"$SOVEREIGN_BOOTSTRAP_ROOT/installs\"";
        machine.file("get.k3s.io.sh", install);
        // `curl -fsSL -o FILE URL`: the script, saved where it is asked to be.
        let curl = format!(
            "echo \"$@\" >> \"$SOVEREIGN_BOOTSTRAP_ROOT/downloads\"; cp {} \"$3\"",
            machine.path("get.k3s.io.sh").display()
        );
        machine.stub("curl", &curl);
        machine.stub("helm", "echo v3.19.0");
        machine
    }

    fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }

    fn root(&self) -> PathBuf {
        self.path("root")
    }

    fn file(&self, relative: &str, text: &str) {
        let path = self.path(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    fn stub(&self, name: &str, body: &str) {
        let path = self.path(&format!("bin/{name}"));
        self.file(&format!("bin/{name}"), &format!("#!/bin/sh\n{body}\n"));
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    /// A GPU machine: the driver and the toolkit, and K3s found its runtime.
    fn with_gpus(&self) {
        self.stub("nvidia-smi", "echo 'GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-0)'");
        self.stub("nvidia-container-runtime", "true");
        self.stub("k3s", "[ \"$1 $2 $3 $4\" = 'kubectl get runtimeclass nvidia' ]");
        self.file(
            "root/var/lib/rancher/k3s/agent/etc/containerd/config.toml",
            "[plugins.cri.containerd.runtimes.nvidia]\n",
        );
    }

    fn run(&self, script: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
        let path = format!("{}:/usr/bin:/bin", self.path("bin").display());
        Command::new("bash")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("bootstrap").join(script))
            .args(args)
            .env_clear()
            .env("PATH", path)
            .env("SOVEREIGN_BOOTSTRAP_ROOT", self.root())
            .envs(env.iter().copied())
            .output()
            .unwrap()
    }

    /// Every file under the fake root, with its bytes.
    fn snapshot(&self) -> Vec<(PathBuf, Vec<u8>)> {
        let mut files = Vec::new();
        let mut stack = vec![self.root()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else {
                    files.push((path.clone(), std::fs::read(&path).unwrap()));
                }
            }
        }
        files.sort();
        files
    }
}

fn said(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

#[test]
fn shellcheck_finds_nothing() {
    let scripts: Vec<PathBuf> = ["lib.sh", "install-k3s.sh", "setup-bedrock.sh"]
        .iter()
        .map(|s| Path::new(env!("CARGO_MANIFEST_DIR")).join("bootstrap").join(s))
        .collect();
    match Command::new("shellcheck").arg("-x").args(&scripts).current_dir(env!("CARGO_MANIFEST_DIR")).output() {
        Ok(output) => assert!(output.status.success(), "{}", said(&output)),
        Err(_) => {
            assert!(std::env::var_os("SOVEREIGN_EXPECT_SHELLCHECK").is_none(), "shellcheck is expected");
            eprintln!("skipped: no shellcheck (apt-get install shellcheck)");
        }
    }
}

#[test]
fn install_k3s_dry_runs_installs_and_then_has_nothing_to_do() {
    let machine = Machine::new();
    let before = machine.snapshot();
    let dry = machine.run("install-k3s.sh", &["--dry-run"], &[("FAKE_UID", "1000")]);
    assert!(dry.status.success(), "{}", said(&dry));
    let text = said(&dry);
    assert!(
        text.contains("would write: /etc/rancher/k3s/config.yaml")
            && text.contains("would download https://get.k3s.io and run it with INSTALL_K3S_CHANNEL=stable"),
        "{text}"
    );
    assert!(text.contains("dry run: nothing was changed"), "{text}");
    assert_eq!(machine.snapshot(), before, "a dry run changes nothing");

    let first = machine.run("install-k3s.sh", &["--version", "v1.33.5+k3s1"], &[]);
    assert!(first.status.success(), "{}", said(&first));
    let config = std::fs::read_to_string(machine.root().join("etc/rancher/k3s/config.yaml")).unwrap();
    assert!(config.contains("disable:\n  - traefik") && config.contains("write-kubeconfig-mode: \"0600\""), "{config}");
    let installs = std::fs::read_to_string(machine.root().join("installs")).unwrap();
    assert_eq!(installs, "installed with v1.33.5+k3s1\n");
    let mode = std::fs::metadata(machine.root().join("etc/rancher/k3s/k3s.yaml")).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the kubeconfig is root's only");

    let after = machine.snapshot();
    let second = machine.run("install-k3s.sh", &["--version", "v1.33.5+k3s1"], &[]);
    assert!(second.status.success(), "{}", said(&second));
    assert!(said(&second).contains("nothing to do"), "{}", said(&second));
    assert_eq!(machine.snapshot(), after, "a second run changes nothing");
}

#[test]
fn install_k3s_refuses_what_it_cannot_do() {
    let machine = Machine::new();
    let output = machine.run("install-k3s.sh", &[], &[("FAKE_UID", "1000")]);
    assert_eq!(output.status.code(), Some(1));
    assert!(said(&output).contains("run as root"), "{}", said(&output));
    machine.file("root/etc/os-release", "ID=alpine\n");
    let output = machine.run("install-k3s.sh", &[], &[]);
    assert!(said(&output).contains("unsupported OS"), "{}", said(&output));
    machine.file("root/etc/os-release", "ID=ubuntu\nID_LIKE=debian\n");
    std::fs::create_dir_all(machine.path("airgap")).unwrap();
    let airgap = machine.path("airgap");
    let output = machine.run("install-k3s.sh", &["--airgap", airgap.to_str().unwrap()], &[]);
    assert!(said(&output).contains("has no k3s"), "{}", said(&output));
    let output = machine.run("install-k3s.sh", &["--bogus"], &[]);
    assert!(said(&output).contains("unknown argument --bogus"));
    let output = machine.run("install-k3s.sh", &["--version", "1.33'; rm -rf /"], &[]);
    assert!(said(&output).contains("is not a K3s release"), "{}", said(&output));
    // A download that fails is an error, not an empty script run as a success.
    machine.stub("curl", "exit 22");
    let output = machine.run("install-k3s.sh", &[], &[]);
    assert_eq!(output.status.code(), Some(1));
    assert!(said(&output).contains("cannot download https://get.k3s.io"), "{}", said(&output));
}

#[test]
fn an_air_gapped_install_copies_from_its_folder_and_downloads_nothing() {
    let machine = Machine::new();
    machine.file("airgap/k3s", "#!/bin/sh\necho \"k3s version v1.33.5+k3s1 (00000000)\"\n");
    machine.file("airgap/k3s-airgap-images-amd64.tar.zst", "images");
    machine.file("airgap/helm", "#!/bin/sh\n");
    let install = std::fs::read_to_string(machine.path("get.k3s.io.sh")).unwrap();
    machine.file("airgap/install.sh", &format!("[ \"$INSTALL_K3S_SKIP_DOWNLOAD\" = true ] || exit 9\n{install}"));
    machine.stub("helm", "exit 1");
    std::fs::remove_file(machine.path("bin/helm")).unwrap();
    let airgap = machine.path("airgap");
    let output = machine.run("install-k3s.sh", &["--airgap", airgap.to_str().unwrap()], &[]);
    assert!(output.status.success(), "{}", said(&output));
    assert!(machine.root().join("var/lib/rancher/k3s/agent/images/k3s-airgap-images-amd64.tar.zst").exists());
    assert!(machine.root().join("usr/local/bin/helm").exists());
    assert!(!machine.root().join("downloads").exists(), "nothing was downloaded");
}

#[test]
fn setup_bedrock_writes_pinned_helmcharts_once_and_checks_the_gpu_stack() {
    let machine = Machine::new();
    std::fs::create_dir_all(machine.root().join("var/lib/rancher/k3s/server")).unwrap();
    let output = machine.run("setup-bedrock.sh", &[], &[]);
    assert_eq!(output.status.code(), Some(1));
    assert!(said(&output).contains("no NVIDIA driver"), "{}", said(&output));

    machine.with_gpus();
    let before = machine.snapshot();
    let dry = machine.run("setup-bedrock.sh", &["--dry-run"], &[]);
    assert!(
        dry.status.success()
            && said(&dry).contains("would write: /var/lib/rancher/k3s/server/manifests/sovereign-gpu-operator.yaml"),
        "{}",
        said(&dry)
    );
    assert_eq!(machine.snapshot(), before);

    let first = machine.run("setup-bedrock.sh", &[], &[]);
    assert!(first.status.success(), "{}", said(&first));
    let manifests = machine.root().join("var/lib/rancher/k3s/server/manifests");
    let operator = std::fs::read_to_string(manifests.join("sovereign-gpu-operator.yaml")).unwrap();
    for line in [
        "kind: HelmChart",
        "version: v25.3.4",
        "strategy: mixed",
        "name: sovereign-mig-parted-config",
        "targetNamespace: gpu-operator",
    ] {
        assert!(operator.contains(line), "{line}: {operator}");
    }
    assert!(
        std::fs::read_to_string(manifests.join("sovereign-external-secrets.yaml")).unwrap().contains("version: 2.9.0")
    );
    let after = machine.snapshot();
    let second = machine.run("setup-bedrock.sh", &[], &[]);
    assert!(said(&second).contains("nothing to do"), "{}", said(&second));
    assert_eq!(machine.snapshot(), after);

    // The standalone plugin instead, and charts from an air-gap folder.
    machine.file("airgap/charts/nvidia-device-plugin-0.20.0.tgz", "chart");
    machine.file("airgap/charts/external-secrets-2.9.0.tgz", "chart");
    machine.file("airgap/images/plugin.tar", "image");
    let airgap = machine.path("airgap");
    let output = machine.run("setup-bedrock.sh", &["--no-operator", "--airgap", airgap.to_str().unwrap()], &[]);
    assert!(output.status.success(), "{}", said(&output));
    let plugin = std::fs::read_to_string(manifests.join("sovereign-nvidia-device-plugin.yaml")).unwrap();
    assert!(
        plugin.contains("chart: https://%{KUBERNETES_API}%/static/charts/nvidia-device-plugin-0.20.0.tgz"),
        "{plugin}"
    );
    assert!(plugin.contains("migStrategy: mixed") && plugin.contains("runtimeClassName: nvidia"), "{plugin}");
    assert!(machine.root().join("var/lib/rancher/k3s/server/static/charts/external-secrets-2.9.0.tgz").exists());
    assert!(machine.root().join("var/lib/rancher/k3s/agent/images/plugin.tar").exists());
    let staged = machine.snapshot();
    let again = machine.run("setup-bedrock.sh", &["--no-operator", "--airgap", airgap.to_str().unwrap()], &[]);
    assert!(said(&again).contains("nothing to do"), "{}", said(&again));
    assert_eq!(machine.snapshot(), staged);
    validate_against_the_crd(&manifests);
    // A chart missing from the folder is an error.
    std::fs::remove_file(machine.path("airgap/charts/external-secrets-2.9.0.tgz")).unwrap();
    let output = machine.run("setup-bedrock.sh", &["--no-gpu", "--airgap", airgap.to_str().unwrap()], &[]);
    assert_eq!(output.status.code(), Some(1), "{}", said(&output));
    assert!(said(&output).contains("has no charts/external-secrets-2.9.0.tgz"), "{}", said(&output));
}

/// Every HelmChart the bedrock writes is one the upstream CRD accepts.
#[test]
fn the_bedrock_helmcharts_validate_against_the_upstream_crd() {
    let machine = Machine::new();
    std::fs::create_dir_all(machine.root().join("var/lib/rancher/k3s/server")).unwrap();
    machine.with_gpus();
    assert!(machine.run("setup-bedrock.sh", &[], &[]).status.success());
    assert!(machine.run("setup-bedrock.sh", &["--no-operator"], &[]).status.success());
    validate_against_the_crd(&machine.root().join("var/lib/rancher/k3s/server/manifests"));
}

fn validate_against_the_crd(manifests: &Path) {
    let crd = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/upstream/crds/helm.cattle.io_helmcharts.yaml");
    let check = r#"
import sys, yaml, jsonschema
crd = yaml.safe_load(open(sys.argv[1]))
schema = next(v for v in crd["spec"]["versions"] if v["name"] == "v1")["schema"]["openAPIV3Schema"]
for path in sys.argv[2:]:
    for doc in yaml.safe_load_all(open(path)):
        jsonschema.validate(doc, schema)
        assert doc["spec"]["targetNamespace"], path
        yaml.safe_load(doc["spec"].get("valuesContent", "{}"))
print("ok")
"#;
    let mut args = vec!["-c".to_owned(), check.to_owned(), crd.display().to_string()];
    for entry in std::fs::read_dir(manifests).unwrap() {
        args.push(entry.unwrap().path().display().to_string());
    }
    let output = Command::new("python3").args(&args).output().unwrap();
    assert!(output.status.success(), "{}", said(&output));
}
