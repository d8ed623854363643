//! NATS probe: connect (async-nats; credentials from the URL; `tls://` over rustls with the
//! probe's `ca_file` or the system roots) and check that each JetStream stream in
//! `streams` exists (`$JS.API.STREAM.INFO`).

use async_nats::jetstream::ErrorCode;
use async_nats::jetstream::context::GetStreamErrorKind;
use async_nats::{ConnectErrorKind, ConnectOptions};
use gantry_spec::StoreProbe;

use super::{Ctx, connect_failure, io_error, resolve};
use crate::tls::Verify;
use crate::tls::inspect::{Endpoint, Preamble};

/// Whether any server of the URL is `tls://`.
fn wants_tls(url: &str) -> bool {
    url.split(',').any(|part| {
        part.trim()
            .get(..6)
            .is_some_and(|s| s.eq_ignore_ascii_case("tls://"))
    })
}

/// The TLS endpoint of a `tls://` probe: its first server.
pub(super) fn tls_endpoint(p: &StoreProbe) -> Option<Endpoint> {
    if !wants_tls(&p.url) {
        return None;
    }
    let (host, port) = servers(&p.url).ok()?.into_iter().next()?;
    Some(Endpoint {
        host,
        port,
        preamble: Preamble::Nats,
        verify: Verify::Full.with(&p.tls),
        tls: p.tls.clone(),
    })
}

pub(super) async fn check(
    p: &StoreProbe,
    ctx: &Ctx,
    base: &std::path::Path,
) -> Result<String, String> {
    let servers = servers(&p.url)?;
    ctx.step("resolving the host name");
    for (host, port) in &servers {
        resolve(host, *port).await?;
    }
    let targets = servers
        .iter()
        .map(|(h, port)| super::host_port(h, *port))
        .collect::<Vec<_>>()
        .join(", ");

    let mut options = ConnectOptions::new()
        .name("gantry-probe")
        .connection_timeout(ctx.client_timeout())
        .ignore_discovered_servers()
        .max_reconnects(Some(1));
    // A server that demands TLS of a nats:// client gets it too, with the same settings.
    let tls = wants_tls(&p.url);
    if tls || p.tls.is_set() {
        ctx.step("loading the TLS settings");
        let config = crate::tls::client_config(&p.tls, base, Verify::Full.with(&p.tls)).await?;
        options = options.require_tls(tls).tls_client_config(config);
    }
    ctx.step("connecting");
    let client = options
        .connect(p.url.as_str())
        .await
        .map_err(|e| describe_connect(&e, &targets))?;
    let result = work(&client, p, ctx).await;
    ctx.step("closing the connection");
    let _ = client.drain().await;
    result
}

async fn work(client: &async_nats::Client, p: &StoreProbe, ctx: &Ctx) -> Result<String, String> {
    ctx.step("flushing (server round trip)");
    client
        .flush()
        .await
        .map_err(|e| format!("no answer from the server: {e}"))?;
    if p.streams.is_empty() {
        return Ok("connected".into());
    }
    let js = async_nats::jetstream::new(client.clone());
    let mut found = Vec::new();
    for s in &p.streams {
        ctx.step(format!("looking up JetStream stream {s:?}"));
        match js.get_stream(s).await {
            Ok(mut stream) => {
                let messages = stream
                    .info()
                    .await
                    .map(|i| i.state.messages)
                    .unwrap_or_default();
                found.push(format!("{s} ({messages} messages)"));
            }
            Err(e) => {
                return Err(match e.kind() {
                    GetStreamErrorKind::JetStream(js_err)
                        if js_err.error_code() == ErrorCode::STREAM_NOT_FOUND =>
                    {
                        format!("JetStream stream {s:?} does not exist")
                    }
                    GetStreamErrorKind::JetStream(js_err)
                        if js_err.error_code() == ErrorCode::JETSTREAM_NOT_ENABLED
                            || js_err.error_code()
                                == ErrorCode::JETSTREAM_NOT_ENABLED_FOR_ACCOUNT =>
                    {
                        format!("JetStream is not enabled: {js_err}")
                    }
                    GetStreamErrorKind::JetStream(js_err) => {
                        format!("looking up JetStream stream {s:?}: {js_err}")
                    }
                    GetStreamErrorKind::InvalidStreamName | GetStreamErrorKind::EmptyName => {
                        format!("{s:?} is not a valid JetStream stream name")
                    }
                    GetStreamErrorKind::Request => {
                        let chain = error_chain(&e);
                        if chain.contains("no responders") {
                            "JetStream is not enabled on the server (no responders for $JS.API)"
                                .to_string()
                        } else {
                            format!("looking up JetStream stream {s:?}: {chain}")
                        }
                    }
                });
            }
        }
    }
    Ok(format!(
        "connected, JetStream streams present: {}",
        found.join(", ")
    ))
}

/// `host, port` of each server of a `nats://[user:pass@]host[:port][,host[:port]...]` URL.
fn servers(url: &str) -> Result<Vec<(String, u16)>, String> {
    let mut out = Vec::new();
    for part in url.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let rest = match part.find("://") {
            Some(i) => {
                let scheme = &part[..i];
                if scheme.eq_ignore_ascii_case("ws") || scheme.eq_ignore_ascii_case("wss") {
                    return Err(format!(
                        "{scheme}:// (websocket) is not supported: use nats:// or tls://"
                    ));
                }
                &part[i + 3..]
            }
            None => part,
        };
        let rest = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
        let authority = rest.split(['/', '?']).next().unwrap_or(rest);
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, port)) if !h.ends_with(':') && (!h.contains(':') || h.ends_with(']')) => {
                let port = port
                    .parse()
                    .map_err(|_| format!("invalid port {port:?} in the nats URL"))?;
                (h, port)
            }
            _ => (authority, 4222),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err("invalid nats URL: no host".into());
        }
        out.push((host.to_string(), port));
    }
    if out.is_empty() {
        return Err("invalid nats URL: no server".into());
    }
    Ok(out)
}

fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(s) = cur {
        parts.push(s.to_string());
        cur = s.source();
    }
    parts.join(": ")
}

fn describe_connect(e: &async_nats::ConnectError, targets: &str) -> String {
    if let Some(tls) = crate::tls::find_error(e) {
        let host = targets.split(", ").next().unwrap_or(targets);
        let host = host.rsplit_once(':').map_or(host, |(h, _)| h);
        return crate::tls::describe(tls, host).to_string();
    }
    match e.kind() {
        ConnectErrorKind::AuthorizationViolation | ConnectErrorKind::Authentication => {
            format!("authentication failed: {}", error_chain(e))
        }
        ConnectErrorKind::TimedOut => format!("connect timed out ({targets})"),
        ConnectErrorKind::Dns => format!("DNS resolution failed: {}", error_chain(e)),
        _ => io_error(e)
            .and_then(|io| connect_failure(io, targets))
            .unwrap_or_else(|| format!("{} ({targets})", error_chain(e))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_list() {
        assert_eq!(
            servers("nats://127.0.0.1:4222").unwrap(),
            vec![("127.0.0.1".to_string(), 4222)]
        );
        assert_eq!(
            servers("nats://u:p@a,nats://b:5222").unwrap(),
            vec![("a".to_string(), 4222), ("b".to_string(), 5222)]
        );
        assert_eq!(
            servers("nats://[::1]:4223").unwrap(),
            vec![("::1".to_string(), 4223)]
        );
        assert_eq!(
            servers("tls://h:4223").unwrap(),
            vec![("h".to_string(), 4223)]
        );
        assert!(servers("wss://h:443").is_err());
        assert!(wants_tls("nats://a:1, tls://b:2"));
        assert!(!wants_tls("nats://a:1"));
    }
}
