//! Proxy header hygiene: hop-by-hop headers removed both ways (Connection and every header
//! it names, Keep-Alive, TE, Trailer, Transfer-Encoding, Upgrade unless upgrading, Proxy-*),
//! and X-Forwarded-For/-Proto/-Host plus Forwarded added toward the upstream.

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use std::net::IpAddr;

/// Removes hop-by-hop headers; keeps `Connection: upgrade` + `Upgrade` when `upgrade` is set.
pub(crate) fn strip_hop_by_hop(h: &mut HeaderMap, upgrade: bool) {
    // Headers named by Connection go first (a value is a comma list of names).
    let named: Vec<HeaderName> = h
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .filter(|n| !(upgrade && *n == header::UPGRADE))
        .collect();
    for n in named {
        h.remove(n);
    }
    h.remove(header::CONNECTION);
    h.remove("keep-alive");
    h.remove(header::TE);
    h.remove(header::TRAILER);
    h.remove(header::TRANSFER_ENCODING);
    h.remove(header::PROXY_AUTHORIZATION);
    h.remove(header::PROXY_AUTHENTICATE);
    h.remove("proxy-connection");
    // Any other Proxy-* header.
    let proxy: Vec<HeaderName> = h
        .keys()
        .filter(|k| k.as_str().starts_with("proxy-"))
        .cloned()
        .collect();
    for n in proxy {
        h.remove(n);
    }
    if upgrade {
        h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    } else {
        h.remove(header::UPGRADE);
    }
}

/// Whether the request asks for a protocol upgrade (WebSocket and friends).
pub(crate) fn wants_upgrade(h: &HeaderMap) -> bool {
    h.contains_key(header::UPGRADE)
        && h.get_all(header::CONNECTION).iter().any(|v| {
            v.to_str().is_ok_and(|s| {
                s.split(',')
                    .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
            })
        })
}

/// Adds X-Forwarded-For (appended), -Proto, -Host and Forwarded (appended).
pub(crate) fn add_forwarded(h: &mut HeaderMap, client: IpAddr, tls: bool, host: Option<&str>) {
    let proto = if tls { "https" } else { "http" };
    let ip = client.to_string();
    let xff = match h.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
        Some(prev) if !prev.trim().is_empty() => format!("{prev}, {ip}"),
        _ => ip.clone(),
    };
    if let Ok(v) = HeaderValue::from_str(&xff) {
        h.insert("x-forwarded-for", v);
    }
    h.insert("x-forwarded-proto", HeaderValue::from_static(proto));
    if let Some(host) = host
        && let Ok(v) = HeaderValue::from_str(host)
    {
        h.insert("x-forwarded-host", v);
    }
    let node = match client {
        IpAddr::V4(_) => ip,
        IpAddr::V6(_) => format!("\"[{ip}]\""),
    };
    let mut fwd = format!("for={node};proto={proto}");
    if let Some(host) = host {
        // A host is a token or a quoted string; quote when it is not a plain token.
        if host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
        {
            fwd.push_str(";host=");
            fwd.push_str(host);
        } else if !host.contains(['"', '\\']) {
            fwd.push_str(";host=\"");
            fwd.push_str(host);
            fwd.push('"');
        }
    }
    let value = match h.get(header::FORWARDED).and_then(|v| v.to_str().ok()) {
        Some(prev) if !prev.trim().is_empty() => format!("{prev}, {fwd}"),
        _ => fwd,
    };
    if let Ok(v) = HeaderValue::from_str(&value) {
        h.insert(header::FORWARDED, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_connection_named_and_proxy_headers() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, x-secret"),
        );
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert("proxy-foo", HeaderValue::from_static("1"));
        h.insert(header::TE, HeaderValue::from_static("trailers"));
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        h.insert("x-keep", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut h, false);
        assert_eq!(h.len(), 1, "{h:?}");
        assert!(h.contains_key("x-keep"));
    }

    #[test]
    fn forwarded_appends() {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", HeaderValue::from_static("10.0.0.1"));
        add_forwarded(
            &mut h,
            "::1".parse().unwrap(),
            true,
            Some("example.com:8080"),
        );
        assert_eq!(h["x-forwarded-for"], "10.0.0.1, ::1");
        assert_eq!(h["x-forwarded-proto"], "https");
        assert_eq!(
            h["forwarded"],
            "for=\"[::1]\";proto=https;host=\"example.com:8080\""
        );
    }
}
