//! Proxy header hygiene: hop-by-hop headers removed both ways (Connection and every header
//! it names, Keep-Alive, TE, Trailer, Transfer-Encoding, Upgrade unless upgrading, Proxy-*),
//! and X-Forwarded-For/-Proto/-Host plus Forwarded added toward the upstream.

use http::header::{self, Entry, HeaderMap, HeaderName, HeaderValue};
use std::net::IpAddr;

/// Removes hop-by-hop headers; keeps `Connection: upgrade` + `Upgrade` when `upgrade` is set.
/// Returns whether the message had any (then `Connection` may have named any other header).
pub(crate) fn strip_hop_by_hop(h: &mut HeaderMap, upgrade: bool) -> bool {
    // Most messages carry none: one pass over the names instead of a lookup per header.
    if !upgrade && !h.keys().any(is_hop_by_hop) {
        return false;
    }
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
    true
}

/// Whether `name` is hop-by-hop (or a `Proxy-*` header) and never forwarded as is.
fn is_hop_by_hop(name: &HeaderName) -> bool {
    *name == header::CONNECTION
        || *name == header::TE
        || *name == header::TRAILER
        || *name == header::TRANSFER_ENCODING
        || *name == header::UPGRADE
        || name.as_str() == "keep-alive"
        || name.as_str().starts_with("proxy-")
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

// Static names: inserting by `&str` copies a non-standard name into a new allocation each time.
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// What one client connection adds toward the upstream: X-Forwarded-For (appended), -Proto,
/// -Host and Forwarded (appended). Built once per connection, so a keep-alive request pays
/// no formatting unless it brings its own forwarding headers or a new `Host`.
pub(crate) struct Forwarding {
    proto: &'static str,
    /// The client's address as an X-Forwarded-For value.
    client: HeaderValue,
    /// `for=NODE;proto=P`, the start of this hop's Forwarded element.
    element: String,
    /// The last `Host` seen and the Forwarded value built for it.
    last: std::sync::Mutex<Option<(HeaderValue, HeaderValue)>>,
}

impl Forwarding {
    pub(crate) fn new(client: IpAddr, tls: bool) -> Self {
        let proto = if tls { "https" } else { "http" };
        let ip = client.to_string();
        let node = match client {
            IpAddr::V4(_) => ip.clone(),
            IpAddr::V6(_) => format!("\"[{ip}]\""),
        };
        Forwarding {
            proto,
            client: HeaderValue::from_maybe_shared(bytes::Bytes::from(ip))
                .unwrap_or_else(|_| HeaderValue::from_static("unknown")),
            element: format!("for={node};proto={proto}"),
            last: std::sync::Mutex::new(None),
        }
    }

    /// Adds this hop's forwarding headers to a request head going upstream. One lookup per
    /// header: a client's own X-Forwarded-For or Forwarded is appended to in place.
    pub(crate) fn apply(&self, h: &mut HeaderMap, host: Option<&HeaderValue>) {
        match h.entry(X_FORWARDED_FOR) {
            Entry::Occupied(mut e) => {
                let joined = match e.get().to_str().ok().filter(|p| !p.trim().is_empty()) {
                    Some(prev) => {
                        HeaderValue::from_str(&format!("{prev}, {}", self.client_ip())).ok()
                    }
                    None => Some(self.client.clone()),
                };
                if let Some(v) = joined {
                    e.insert(v);
                }
            }
            Entry::Vacant(e) => {
                e.insert(self.client.clone());
            }
        }
        h.insert(X_FORWARDED_PROTO, HeaderValue::from_static(self.proto));
        if let Some(host) = host {
            h.insert(X_FORWARDED_HOST, host.clone());
        }
        match h.entry(header::FORWARDED) {
            Entry::Occupied(mut e) => {
                let joined = match e.get().to_str().ok().filter(|p| !p.trim().is_empty()) {
                    Some(prev) => {
                        HeaderValue::from_str(&format!("{prev}, {}", self.element(host))).ok()
                    }
                    None => Some(self.cached(host)),
                };
                if let Some(v) = joined {
                    e.insert(v);
                }
            }
            Entry::Vacant(e) => {
                e.insert(self.cached(host));
            }
        }
    }

    fn client_ip(&self) -> &str {
        self.client.to_str().unwrap_or("unknown")
    }

    /// This hop's Forwarded element for `host`, from the cache when the host repeats.
    fn cached(&self, host: Option<&HeaderValue>) -> HeaderValue {
        let mut last = self
            .last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((h, v)) = last.as_ref()
            && Some(h) == host
        {
            return v.clone();
        }
        let v = HeaderValue::from_maybe_shared(bytes::Bytes::from(self.element(host)))
            .unwrap_or_else(|_| HeaderValue::from_static(""));
        *last = host.map(|h| (h.clone(), v.clone()));
        v
    }

    fn element(&self, host: Option<&HeaderValue>) -> String {
        let mut fwd = self.element.clone();
        if let Some(host) = host.and_then(|h| h.to_str().ok()) {
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
        fwd
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
        assert!(strip_hop_by_hop(&mut h, false));
        assert_eq!(h.len(), 1, "{h:?}");
        assert!(h.contains_key("x-keep"));
    }

    #[test]
    fn forwarded_appends() {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", HeaderValue::from_static("10.0.0.1"));
        let host = HeaderValue::from_static("example.com:8080");
        let f = Forwarding::new("::1".parse().unwrap(), true);
        f.apply(&mut h, Some(&host));
        assert_eq!(h["x-forwarded-for"], "10.0.0.1, ::1");
        assert_eq!(h["x-forwarded-proto"], "https");
        assert_eq!(
            h["forwarded"],
            "for=\"[::1]\";proto=https;host=\"example.com:8080\""
        );
        // A second request on the connection: the cached element, no append of its own.
        let mut h2 = HeaderMap::new();
        f.apply(&mut h2, Some(&host));
        assert_eq!(h2["x-forwarded-for"], "::1");
        assert_eq!(
            h2["forwarded"],
            "for=\"[::1]\";proto=https;host=\"example.com:8080\""
        );
        let mut h3 = HeaderMap::new();
        f.apply(&mut h3, None);
        assert_eq!(h3["forwarded"], "for=\"[::1]\";proto=https");
    }
}
