//! The OpenFeature Rust SDK with the `open-feature-ofrep` provider against a real `gantry up`:
//! boolean, string, integer, float and object flags, an override set with `gantry flag set` seen
//! through the SDK, and an unknown key answering FLAG_NOT_FOUND (the caller's default kept).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use open_feature::{EvaluationContext, EvaluationErrorCode, OpenFeature, StructValue, Value};
use open_feature_ofrep::{OfrepOptions, OfrepProvider};

/// The main workspace (this crate's parent directory).
fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("interop/ lies inside the repository")
        .to_path_buf()
}

/// The `gantry` binary of the main workspace: `GANTRY_BIN`, else built (debug) if missing.
fn gantry() -> PathBuf {
    if let Ok(bin) = std::env::var("GANTRY_BIN") {
        return PathBuf::from(bin);
    }
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| repo().join("target"));
    let bin = target.join("debug/gantry");
    if !bin.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "-q", "-p", "gantry-cli", "--manifest-path"])
            .arg(repo().join("Cargo.toml"))
            .status()
            .expect("cargo runs");
        assert!(status.success(), "building gantry failed");
    }
    bin
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// A running `gantry up`, stopped (SIGINT, then killed) and its directory removed when dropped.
struct Up {
    child: Child,
    dir: PathBuf,
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let until = Instant::now() + Duration::from_secs(20);
        while Instant::now() < until {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            let _ = std::sync::mpsc::channel::<()>()
                .1
                .recv_timeout(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn stack(api: u16) -> String {
    format!(
        r#"
[settings]
api = "127.0.0.1:{api}"

[flags.new-ui]
variants = {{ on = true, off = false }}
default = "off"

[flags.greeting]
variants = {{ hello = "hello", hi = "hi" }}
default = "hello"

[flags.limit]
variants = {{ low = 10, high = 1000 }}
default = "low"

[flags.ratio]
variants = {{ small = 0.25, large = 0.75 }}
default = "small"

[flags.layout]
variants = {{ a = {{ cols = 2, dense = true }}, b = {{ cols = 3, dense = false }} }}
default = "a"

[services.idle]
command = "sleep 600"
"#
    )
}

fn gantry_in(dir: &Path, args: &[&str]) -> (i32, String) {
    let out = Command::new(gantry())
        .args(args)
        .current_dir(dir)
        .output()
        .expect("gantry runs");
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_openfeature_sdk_evaluates_every_type_overrides_and_unknown_keys() {
    let api = free_port();
    let dir = std::env::temp_dir().join(format!("gantry-interop-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("gantry.toml"), stack(api)).unwrap();
    let child = Command::new(gantry())
        .args(["up", "--json"])
        .current_dir(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("gantry up starts");
    let up = Up {
        child,
        dir: dir.clone(),
    };

    // The read-only token services get is enough for OFREP.
    let token_file = up.dir.join(".gantry/api.read-token");
    let until = Instant::now() + Duration::from_secs(20);
    while !token_file.exists() {
        assert!(Instant::now() < until, "gantry wrote no read token");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let token = std::fs::read_to_string(&token_file)
        .unwrap()
        .trim()
        .to_string();

    let mut headers = http::HeaderMap::new();
    headers.insert(
        http::header::AUTHORIZATION,
        http::HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
    );
    let provider = OfrepProvider::new(OfrepOptions {
        base_url: format!("http://127.0.0.1:{api}"),
        headers,
        connect_timeout: Duration::from_secs(2),
        ..Default::default()
    })
    .await
    .expect("the provider accepts gantry's URL");
    let mut of = OpenFeature::singleton_mut().await;
    of.set_provider(provider).await;
    let client = of.create_client();
    drop(of);
    let ctx = EvaluationContext::default()
        .with_targeting_key("user-1")
        .with_custom_field("plan", "pro");

    // Polled until the API answers (it binds once the first services are spawned).
    let until = Instant::now() + Duration::from_secs(20);
    let first = loop {
        match client.get_bool_details("new-ui", Some(&ctx), None).await {
            Ok(d) => break d,
            Err(e) => {
                assert!(Instant::now() < until, "OFREP never answered: {e:?}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    assert!(!first.value);
    assert_eq!(first.variant.as_deref(), Some("off"));

    let greeting = client
        .get_string_details("greeting", Some(&ctx), None)
        .await
        .unwrap();
    assert_eq!(greeting.value, "hello");
    assert_eq!(greeting.variant.as_deref(), Some("hello"));
    let limit = client.get_int_value("limit", Some(&ctx), None).await;
    assert_eq!(limit, Ok(10));
    let ratio = client.get_float_value("ratio", Some(&ctx), None).await;
    assert_eq!(ratio, Ok(0.25));
    let layout = client
        .get_struct_details::<StructValue>("layout", Some(&ctx), None)
        .await
        .unwrap();
    assert_eq!(layout.value.fields.get("cols"), Some(&Value::Int(2)));
    assert_eq!(layout.value.fields.get("dense"), Some(&Value::Bool(true)));
    assert_eq!(layout.variant.as_deref(), Some("a"));

    // An override set through the CLI is what the SDK gets next.
    let (code, out) = gantry_in(
        &up.dir,
        &["flag", "set", "new-ui", "true", "--reason", "sdk test"],
    );
    assert_eq!(code, 0, "{out}");
    let (code, out) = gantry_in(
        &up.dir,
        &["flag", "set", "limit", "1000", "--reason", "sdk test"],
    );
    assert_eq!(code, 0, "{out}");
    let on = client
        .get_bool_details("new-ui", Some(&ctx), None)
        .await
        .unwrap();
    assert!(on.value);
    assert_eq!(on.variant.as_deref(), Some("override"));
    assert_eq!(
        client.get_int_value("limit", Some(&ctx), None).await,
        Ok(1000)
    );

    // An unknown key: FLAG_NOT_FOUND, and the caller's default is what the code uses.
    let unknown = client
        .get_bool_value("no-such-flag", Some(&ctx), None)
        .await;
    let err = unknown.clone().unwrap_err();
    assert_eq!(err.code, EvaluationErrorCode::FlagNotFound, "{err:?}");
    assert!(unknown.unwrap_or(true), "the default");
    let missing = client
        .get_string_value("no-such-string", Some(&ctx), None)
        .await;
    assert_eq!(
        missing.map_err(|e| e.code),
        Err(EvaluationErrorCode::FlagNotFound)
    );
}
