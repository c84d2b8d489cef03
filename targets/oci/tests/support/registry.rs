//! A real registry for the tests: Debian's `docker-registry` (CNCF
//! distribution 2.8) on a loopback port, with its own storage folder,
//! optionally behind htpasswd basic auth, stopped when dropped. Each test
//! starts its own (it starts in well under a second), so that one can be
//! stopped mid-push without disturbing another. `None`, with the reason
//! printed, when the binary is missing (scripts/test installs it and sets
//! `SOVEREIGN_EXPECT_REGISTRY`, which makes that a failure). Included with
//! `#[path]` by the tests that need one.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub(crate) struct TestRegistry {
    pub(crate) port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl TestRegistry {
    /// A registry; with `user`, it asks for basic auth (htpasswd, bcrypt).
    pub(crate) fn start(user: Option<(&str, &str)>) -> Option<TestRegistry> {
        if Command::new("docker-registry").arg("--version").output().is_err() {
            assert!(
                std::env::var_os("SOVEREIGN_EXPECT_REGISTRY").is_none(),
                "docker-registry is expected (scripts/test installs Debian's docker-registry)"
            );
            eprintln!("skipped: no docker-registry (apt-get install docker-registry)");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let auth = match user {
            Some((name, password)) => {
                let file = dir.path().join("htpasswd");
                let made = Command::new("htpasswd")
                    .args(["-Bbc", file.to_str().unwrap(), name, password])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .expect("htpasswd (apache2-utils) makes the registry's password file");
                assert!(made.success());
                format!("auth:\n  htpasswd:\n    realm: test-realm\n    path: {}\n", file.display())
            }
            None => String::new(),
        };
        let config = format!(
            "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: false\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n{auth}",
            dir.path().join("data").display()
        );
        std::fs::write(dir.path().join("config.yml"), config).unwrap();
        let mut registry = TestRegistry { port, dir, child: None };
        registry.resume();
        Some(registry)
    }

    /// `127.0.0.1:PORT`.
    pub(crate) fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Stops it (as a crash would: SIGKILL); its storage stays.
    pub(crate) fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port and storage.
    pub(crate) fn resume(&mut self) {
        self.stop();
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.log_path()).unwrap();
        let child = Command::new("docker-registry")
            .args(["serve", self.dir.path().join("config.yml").to_str().unwrap()])
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "docker-registry did not listen within 20 s: {}", self.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("registry.log")
    }

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// How many requests of the access log start with `method path_prefix`
    /// (`"POST /v2/"`), and end in `suffix` before the query.
    pub(crate) fn requests(&self, method: &str, contains: &str) -> usize {
        self.log()
            .lines()
            .filter_map(|line| line.split('"').nth(1))
            .filter(|request| request.starts_with(&format!("{method} ")) && request.contains(contains))
            .count()
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        self.stop();
    }
}
