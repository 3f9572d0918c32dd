//! Secrets (issue 17): tokens and passwords given by flag, environment, config file, URL
//! userinfo and header never appear in anything obsctl writes (standard output and error,
//! `--verbose` logs, `--output` files, the GitHub job summary) of any command, even when a
//! server echoes the credentials back in its error; and a config file holding a secret that
//! other users may read gets a warning.

mod common;
#[path = "common/faults.rs"]
mod faults;

use std::path::Path;

use base64::Engine as _;
use common::obsctl;
use faults::{refused_url, Fault, FaultServer};

const TOKEN: &str = "tok-S3CRET-bearer";
const PASSWORD: &str = "pw-S3CRET-basic";
const URL_PASSWORD: &str = "url-S3CRET-userinfo";
const HEADER: &str = "hdr-S3CRET-x-api-key";
const CONFIG_HEADER: &str = "cfg-S3CRET-header";
const CONFIG_URL_PASSWORD: &str = "cfgurl-S3CRET-password";

/// Every secret, and the forms they travel in (a Basic header is base64 of `user:password`).
fn secrets() -> Vec<String> {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let mut all: Vec<String> =
        [TOKEN, PASSWORD, URL_PASSWORD, HEADER, CONFIG_HEADER, CONFIG_URL_PASSWORD].map(String::from).to_vec();
    all.extend([
        b64(&format!("me:{PASSWORD}")),
        b64(&format!("u:{URL_PASSWORD}")),
        b64(&format!("c:{CONFIG_URL_PASSWORD}")),
    ]);
    all.push("S3CRET".into());
    all
}

/// Everything a run wrote: its two streams and every file in `dir`.
fn written(out: &std::process::Output, dir: &Path) -> String {
    let mut all = format!("{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    for entry in walk(dir) {
        if let Ok(bytes) = std::fs::read(&entry) {
            all.push_str(&String::from_utf8_lossy(&bytes));
        }
    }
    all
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else if !path.ends_with("token") && !path.ends_with("password") && !path.ends_with("config.toml") {
            files.push(path);
        }
    }
    files
}

fn assert_clean(what: &str, text: &str) {
    for s in secrets() {
        assert!(!text.contains(&s), "{what}: the secret {s:?} leaked into:\n{text}");
    }
}

/// A temp dir with the token, password and config files (mode 600).
fn credentials(url: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("token"), format!("{TOKEN}\n")).expect("token");
    std::fs::write(dir.path().join("password"), format!("{PASSWORD}\n")).expect("password");
    let with_password = url.replace("http://", &format!("http://c:{CONFIG_URL_PASSWORD}@"));
    let config = format!(
        "[prometheus]\nurl = \"{with_password}\"\n[prometheus.headers]\nX-Config-Token = \"{CONFIG_HEADER}\"\n\
         [loki]\nurl = \"{with_password}\"\n[loki.headers]\nX-Config-Token = \"{CONFIG_HEADER}\"\n"
    );
    let path = dir.path().join("config.toml");
    std::fs::write(&path, config).expect("config");
    set_mode(&path, 0o600);
    dir
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// A way of handing obsctl a credential: its name, extra arguments and environment.
type Carrier = (&'static str, Vec<String>, Vec<(&'static str, String)>);

fn carriers(dir: &Path, url: &str, server: &str) -> Vec<Carrier> {
    let p = |p: &str| dir.join(p).display().to_string();
    let flag = format!("--{server}-url");
    vec![
        ("--bearer-token-file", vec![flag.clone(), url.into(), "--bearer-token-file".into(), p("token")], vec![]),
        ("OBSCTL_BEARER_TOKEN_FILE", vec![flag.clone(), url.into()], vec![("OBSCTL_BEARER_TOKEN_FILE", p("token"))]),
        (
            "--username/--password-file",
            vec![flag.clone(), url.into(), "--username".into(), "me".into(), "--password-file".into(), p("password")],
            vec![],
        ),
        ("URL userinfo", vec![flag.clone(), url.replace("http://", &format!("http://u:{URL_PASSWORD}@"))], vec![]),
        ("--header", vec![flag, url.into(), "--header".into(), format!("X-Api-Key: {HEADER}")], vec![]),
        ("config file", vec!["--config".into(), p("config.toml")], vec![]),
    ]
}

fn run_all(fault: Option<Fault>) {
    for server in ["prometheus", "loki"] {
        let faulty = fault.clone().map(FaultServer::start);
        let url = faulty.as_ref().map(|f| f.url()).unwrap_or_else(refused_url);
        let dir = credentials(&url);
        for (carrier, args, env) in carriers(dir.path(), &url, server) {
            for command in ["digest", "gate", "doctor"] {
                let out_dir = tempfile::tempdir().expect("temp dir");
                let o = |name: &str| out_dir.path().join(name).display().to_string();
                let mut cmd = obsctl();
                cmd.env_remove("GITHUB_ACTIONS").arg(command).args(["--source", server, "--verbose"]);
                cmd.args(["--week", "2026-W47", "--tz", "UTC", "--timeout", "1", "--connect-timeout", "1"]);
                cmd.args(&args);
                for (k, v) in &env {
                    cmd.env(k, v);
                }
                match command {
                    "digest" => cmd.args(["--format", "json", "--output", &format!("markdown={}", o("d.md"))]),
                    "gate" => cmd
                        .args(["--max-increase", "20%", "--output", &format!("junit={}", o("g.xml"))])
                        .env("GITHUB_ACTIONS", "true")
                        .env("GITHUB_STEP_SUMMARY", o("summary.md")),
                    _ => cmd.args(["--format", "json"]),
                };
                let out = cmd.output().expect("run obsctl");
                let what = format!("{command} --source {server} with {carrier} against {fault:?}");
                assert_eq!(out.status.code(), Some(3), "{what}: {}", String::from_utf8_lossy(&out.stderr));
                let text = written(&out, out_dir.path());
                assert!(text.contains("127.0.0.1"), "{what}: the failure names the server:\n{text}");
                assert_clean(&what, &text);
            }
            if let (Some(f), "--bearer-token-file") = (&faulty, carrier) {
                // The credential was sent: the server could have echoed it.
                assert!(f.requests().iter().any(|h| h.contains(TOKEN)), "{server}: the token was never sent");
            }
        }
    }
}

#[test]
fn no_secret_in_any_output_when_the_server_is_unreachable() {
    run_all(None);
}

#[test]
fn no_secret_in_any_output_when_the_server_echoes_the_credentials() {
    run_all(Some(Fault::Echo));
}

#[test]
fn no_secret_in_any_output_when_the_server_fails() {
    run_all(Some(Fault::status(500, "text/plain", "internal error\n")));
}

#[test]
fn no_secret_in_the_rules_written_from_a_config() {
    let dir = credentials("http://127.0.0.1:9");
    let out_dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("config.toml");
    let out = obsctl()
        .args(["rules", "--config"])
        .arg(&config)
        .args(["--spike", "10/1h", "--output"])
        .arg(out_dir.path().join("rules.yaml"))
        .output()
        .expect("run obsctl");
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_clean("rules", &written(&out, out_dir.path()));
}

#[test]
fn a_config_file_with_a_secret_readable_by_others_is_warned_about() {
    let dir = credentials(&refused_url());
    let config = dir.path().join("config.toml");
    let warned = |mode: u32| {
        set_mode(&config, mode);
        let out = obsctl()
            .args(["digest", "--source", "prometheus", "--week", "2026-W47", "--timeout", "1", "--config"])
            .arg(&config)
            .output()
            .expect("run obsctl");
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_clean("the warning", &stderr);
        stderr.lines().any(|l| l.starts_with("warning: config file") && l.contains("chmod 600"))
    };
    assert!(warned(0o644), "mode 644: a warning");
    assert!(warned(0o640), "mode 640: a warning");
    assert!(!warned(0o600), "mode 600: no warning");
    // Without a secret in it, a readable config file is fine.
    std::fs::write(&config, "[prometheus]\nurl = \"http://127.0.0.1:9\"\n").expect("config");
    assert!(!warned(0o644), "no secret: no warning");
}

#[test]
fn a_password_in_a_url_without_a_scheme_is_a_usage_error_that_does_not_show_it() {
    // `user:password@host` parses as a URL of scheme `user` whose path holds the password.
    let bad = format!("admin:{URL_PASSWORD}@127.0.0.1:9");
    let logs = common::fixture_logs();
    let runs: Vec<(&str, Vec<String>)> = vec![
        (
            "digest prometheus",
            vec!["digest".into(), "--source".into(), "prometheus".into(), "--prometheus-url".into(), bad.clone()],
        ),
        ("digest auto", vec!["digest".into(), "--prometheus-url".into(), bad.clone()]),
        ("digest loki", vec!["digest".into(), "--source".into(), "loki".into(), "--loki-url".into(), bad.clone()]),
        ("doctor", vec!["doctor".into(), "--prometheus-url".into(), bad.clone(), "--format".into(), "json".into()]),
        ("gate", vec!["gate".into(), "--prometheus-url".into(), bad.clone()]),
    ];
    for (what, args) in runs {
        let out =
            obsctl().args(&args).args(["--week", "2026-W47", "--tz", "UTC", "--logs"]).arg(&logs).output().unwrap();
        let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert_eq!(out.status.code(), Some(2), "{what}: {stdout}{stderr}");
        assert!(stderr.contains("expected http:// or https://"), "{what}: {stderr}");
        assert_clean(what, &format!("{stdout}{stderr}"));
    }
}
