//! MySQL / MariaDB probe: connect (mysql_async; TLS on its rustls backend), `SELECT 1`, and
//! with `rw = true` a write/read/delete round trip in the scratch table of the URL's database.
//!
//! TLS is asked for with the MySQL client's `ssl-mode` (also `ssl_mode`, `sslmode`):
//! `REQUIRED` encrypts without verifying unless `ca_file` is set, `VERIFY_CA` checks the
//! chain, `VERIFY_IDENTITY` the chain and the host name; `DISABLED` and `PREFERRED` connect
//! without TLS. mysql_async's own `require_ssl=true` (with `verify_ca`, `verify_identity`)
//! works too. The roots are `ca_file`, else the system's; `cert_file` and `key_file` give
//! the client certificate.
//!
//! mysql_async cannot leave the host name out of its check (its `skip_domain_validation`
//! looks for a message rustls 0.23 no longer writes), so for `VERIFY_CA` the probe first
//! looks at the certificate (one handshake of its own) and, when the URL's host is not
//! among its names, has mysql_async verify the chain against a name the certificate lists:
//! the chain is still verified on the connection that logs in.

use std::path::Path;

use gantry_spec::{StoreProbe, TlsOptions};
use mysql_async::prelude::Queryable;
use mysql_async::{ClientIdentity, Conn, Opts, OptsBuilder, SslOpts};

use super::{Ctx, SCRATCH_TABLE, connect_failure, host_port, io_error, random_token, resolve};
use crate::tls::Verify;
use crate::tls::inspect::{Endpoint, Preamble};

/// The URL without `ssl-mode`, and what it asked for (`None`: no TLS).
fn split_ssl_mode(url: &str) -> Result<(String, Option<Verify>), String> {
    let Some((head, query)) = url.split_once('?') else {
        return Ok((url.to_string(), None));
    };
    let mut mode = None;
    let mut kept = Vec::new();
    for param in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = param.split_once('=').unwrap_or((param, ""));
        if !matches!(
            k.to_ascii_lowercase().as_str(),
            "ssl-mode" | "ssl_mode" | "sslmode"
        ) {
            kept.push(param);
            continue;
        }
        mode = match v.to_ascii_lowercase().replace('-', "_").as_str() {
            "disabled" | "preferred" => None,
            "required" => Some(Verify::None),
            "verify_ca" => Some(Verify::ChainOnly),
            "verify_identity" => Some(Verify::Full),
            _ => {
                return Err(format!(
                    "invalid mysql URL: {k}={v:?} (DISABLED, PREFERRED, REQUIRED, VERIFY_CA or VERIFY_IDENTITY)"
                ));
            }
        };
    }
    let url = if kept.is_empty() {
        head.to_string()
    } else {
        format!("{head}?{}", kept.join("&"))
    };
    Ok((url, mode))
}

/// The parsed options and how TLS is verified (`None`: no TLS).
fn options(p: &StoreProbe) -> Result<(Opts, Option<Verify>), String> {
    let (url, mode) = split_ssl_mode(&p.url)?;
    let opts = Opts::from_url(&url).map_err(|e| format!("invalid mysql URL: {e}"))?;
    let verify = match (mode, opts.ssl_opts()) {
        // The MySQL client: REQUIRED with a CA verifies the chain.
        (Some(Verify::None), _) if p.tls.ca_file.is_some() => Some(Verify::ChainOnly),
        (Some(v), _) => Some(v),
        (None, Some(ssl)) if ssl.accept_invalid_certs() => Some(Verify::None),
        (None, Some(ssl)) if ssl.skip_domain_validation() => Some(Verify::ChainOnly),
        (None, Some(_)) => Some(Verify::Full),
        (None, None) => None,
    };
    Ok((opts, verify.map(|v| v.with(&p.tls))))
}

/// mysql_async's TLS options for `verify`, with the probe's CA (else the system roots) and
/// client certificate.
async fn ssl_opts(tls: &TlsOptions, base: &Path, verify: Verify) -> Result<SslOpts, String> {
    // mysql_async builds a verifier even when it accepts any certificate, and that needs a
    // root: its bundled ones serve for that, unused.
    let mut ssl = SslOpts::default()
        .with_disable_built_in_roots(verify != Verify::None)
        .with_danger_accept_invalid_certs(verify == Verify::None);
    if verify != Verify::None {
        // PEM or DER buffers (mysql_async's `PathOrBuf` is not exported; `Vec<u8>` converts).
        let roots: Vec<Vec<u8>> = match &tls.ca_file {
            Some(ca) => vec![crate::tls::read_pem(base, "ca_file", ca)?],
            None => crate::tls::system_root_certs()
                .await?
                .iter()
                .map(|c| c.as_ref().to_vec())
                .collect(),
        };
        ssl = ssl.with_root_certs(roots.into_iter().map(Into::into).collect());
    }
    if let (Some(cert), Some(key)) = (&tls.cert_file, &tls.key_file) {
        let cert = crate::tls::read_pem(base, "cert_file", cert)?;
        let key = crate::tls::read_pem(base, "key_file", key)?;
        ssl = ssl.with_client_identity(Some(ClientIdentity::new(cert.into(), key.into())));
    }
    Ok(ssl)
}

/// The TLS endpoint of a mysql probe whose URL asks for TLS.
pub(super) fn tls_endpoint(p: &StoreProbe) -> Option<Endpoint> {
    let (opts, verify) = options(p).ok()?;
    if opts.socket().is_some() {
        return None;
    }
    Some(Endpoint {
        host: opts.ip_or_hostname().to_string(),
        port: opts.tcp_port(),
        preamble: Preamble::Mysql,
        verify: verify?,
        tls: p.tls.clone(),
    })
}

pub(super) async fn check(p: &StoreProbe, ctx: &Ctx, base: &Path) -> Result<String, String> {
    let (opts, verify) = options(p)?;
    let target = match opts.socket() {
        Some(sock) => sock.to_string(),
        None => host_port(opts.ip_or_hostname(), opts.tcp_port()),
    };
    let db = opts.db_name().map(str::to_string);
    if opts.socket().is_none() {
        ctx.step("resolving the host name");
        resolve(opts.ip_or_hostname(), opts.tcp_port()).await?;
    }
    // One plain connection: no switch to the unix socket after connecting over TCP (that
    // would be a second connection, and not the path the URL names).
    let endpoint = tls_endpoint(p);
    let mut opts = OptsBuilder::from_opts(opts).prefer_socket(false);
    if let Some(verify) = verify {
        ctx.step("loading the TLS settings");
        let mut ssl = ssl_opts(&p.tls, base, verify).await?;
        if verify == Verify::ChainOnly
            && let Some(ep) = &endpoint
        {
            ctx.step("looking at the server's certificate (VERIFY_CA)");
            let name =
                crate::tls::inspect::name_for_chain_check(ep, base, ctx.client_timeout()).await?;
            ssl = ssl.with_danger_tls_hostname_override(name);
        }
        opts = opts.ssl_opts(Some(ssl));
    }

    ctx.step("connecting");
    let mut conn = Conn::new(opts)
        .await
        .map_err(|e| describe(&e, &target, db.as_deref()))?;
    let result = work(&mut conn, p, ctx, &target, db.as_deref()).await;
    ctx.step("closing the connection");
    let _ = conn.disconnect().await;
    result
}

async fn work(
    conn: &mut Conn,
    p: &StoreProbe,
    ctx: &Ctx,
    target: &str,
    db: Option<&str>,
) -> Result<String, String> {
    let fail =
        |e: mysql_async::Error| format!("{}: {}", ctx.current_step(), describe(&e, target, db));
    ctx.step("running SELECT 1");
    let one: Option<i64> = conn.query_first("SELECT 1").await.map_err(fail)?;
    if one != Some(1) {
        return Err(format!("SELECT 1 returned {one:?}"));
    }
    if !p.rw {
        return Ok("connected, SELECT 1 ok".into());
    }
    if db.is_none() {
        return Err(format!(
            "rw = true needs a database in the URL (mysql://user@host:3306/DB) for {SCRATCH_TABLE}"
        ));
    }
    ctx.step(format!("creating table {SCRATCH_TABLE}"));
    conn.query_drop(format!(
        "CREATE TABLE IF NOT EXISTS {SCRATCH_TABLE} \
         (k VARCHAR(64) PRIMARY KEY, v TEXT, at TIMESTAMP DEFAULT CURRENT_TIMESTAMP)"
    ))
    .await
    .map_err(fail)?;
    let key = format!("gantry-probe-{}", random_token());
    let value = random_token();
    ctx.step(format!("inserting into {SCRATCH_TABLE}"));
    conn.exec_drop(
        format!("INSERT INTO {SCRATCH_TABLE} (k, v) VALUES (?, ?)"),
        (&key, &value),
    )
    .await
    .map_err(fail)?;
    ctx.step(format!("reading back from {SCRATCH_TABLE}"));
    let read: Option<String> = conn
        .exec_first(
            format!("SELECT v FROM {SCRATCH_TABLE} WHERE k = ?"),
            (&key,),
        )
        .await
        .map_err(fail)?;
    ctx.step(format!("deleting from {SCRATCH_TABLE}"));
    conn.exec_drop(format!("DELETE FROM {SCRATCH_TABLE} WHERE k = ?"), (&key,))
        .await
        .map_err(fail)?;
    let deleted = conn.affected_rows();
    super::round_trip_result(read.as_deref(), &value, deleted)?;
    Ok("connected, SELECT 1 ok, write/read/delete ok".into())
}

/// What went wrong, by MySQL error code or socket error.
fn describe(e: &mysql_async::Error, target: &str, db: Option<&str>) -> String {
    if let Some(tls) = crate::tls::find_error(e) {
        let host = target.rsplit_once(':').map_or(target, |(h, _)| h);
        return crate::tls::describe(tls, host).to_string();
    }
    match e {
        mysql_async::Error::Server(s) => match s.code {
            // ER_BAD_DB_ERROR
            1049 => format!(
                "database {} does not exist ({})",
                db.map(|d| format!("{d:?}")).unwrap_or_default(),
                s.message
            ),
            // ER_ACCESS_DENIED_ERROR, ER_ACCESS_DENIED_NO_PASSWORD_ERROR, ER_HOST_NOT_PRIVILEGED
            1045 | 1698 | 1130 => format!("authentication failed: {}", s.message),
            // ER_DBACCESS_DENIED_ERROR
            1044 => format!("access to the database denied: {}", s.message),
            // ER_CON_COUNT_ERROR
            1040 => format!("too many connections: {}", s.message),
            // ER_OPTION_PREVENTS_STATEMENT (read_only), ER_CANT_EXECUTE_IN_READ_ONLY_TRANSACTION
            1290 | 1792 => format!("the database is read-only: {}", s.message),
            code => format!("server error {code} ({}): {}", s.state, s.message),
        },
        mysql_async::Error::Io(_) => match io_error(e).and_then(|io| connect_failure(io, target)) {
            Some(m) => m,
            None => format!("{e} ({target})"),
        },
        mysql_async::Error::Driver(mysql_async::DriverError::ConnectionClosed) => {
            format!("the server closed the connection ({target})")
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssl_mode_is_taken_out_of_the_url() {
        let (url, mode) = split_ssl_mode("mysql://u@h:3306/db?ssl-mode=VERIFY_IDENTITY").unwrap();
        assert_eq!(
            (url.as_str(), mode),
            ("mysql://u@h:3306/db", Some(Verify::Full))
        );
        let (url, mode) = split_ssl_mode("mysql://u@h/db?x=1&ssl_mode=required").unwrap();
        assert_eq!(
            (url.as_str(), mode),
            ("mysql://u@h/db?x=1", Some(Verify::None))
        );
        let (_, mode) = split_ssl_mode("mysql://u@h/db?sslmode=verify-ca").unwrap();
        assert_eq!(mode, Some(Verify::ChainOnly));
        let (_, mode) = split_ssl_mode("mysql://u@h/db?ssl-mode=DISABLED").unwrap();
        assert_eq!(mode, None);
        assert!(split_ssl_mode("mysql://u@h/db?ssl-mode=sure").is_err());
    }

    #[test]
    fn require_ssl_of_mysql_async_counts_too() {
        let p = |url: &str, ca: Option<&str>| StoreProbe {
            url: url.into(),
            tls: TlsOptions {
                ca_file: ca.map(Into::into),
                ..TlsOptions::default()
            },
            ..StoreProbe::default()
        };
        let v = |probe| options(&probe).unwrap().1;
        assert_eq!(
            v(p("mysql://u@h/db?require_ssl=true", None)),
            Some(Verify::Full)
        );
        assert_eq!(
            v(p(
                "mysql://u@h/db?require_ssl=true&verify_identity=false",
                None
            )),
            Some(Verify::ChainOnly)
        );
        assert_eq!(
            v(p("mysql://u@h/db?ssl-mode=REQUIRED", Some("ca.pem"))),
            Some(Verify::ChainOnly)
        );
        assert_eq!(v(p("mysql://u@h/db", None)), None);
        let ep = tls_endpoint(&p("mysql://u@db:3307/x?ssl-mode=VERIFY_IDENTITY", None)).unwrap();
        assert_eq!(
            (ep.host.as_str(), ep.port, ep.preamble),
            ("db", 3307, Preamble::Mysql)
        );
    }
}
