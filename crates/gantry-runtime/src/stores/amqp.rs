//! AMQP 0-9-1 (RabbitMQ) probe: connect (lapin), each queue in `queues` must exist, and
//! with `require_dlq = true` each must have a dead-letter exchange that exists.
//!
//! **Existence** is a passive `queue.declare` on a fresh channel per queue (a failed
//! passive declare closes its channel): 404 NOT_FOUND means missing, 405 RESOURCE_LOCKED
//! an exclusive queue of another connection.
//!
//! **Dead-letter exchange.** AMQP cannot read a queue's arguments: a passive declare only
//! answers name, message count and consumer count, and the management HTTP API (port 15672)
//! is a plugin that is often off (it is off on the test machine). What the broker does tell
//! is *why* a non-passive re-declare is inequivalent: RabbitMQ compares `durable`,
//! `auto_delete` and then the queue arguments one by one, and the first difference closes
//! the channel with `406 PRECONDITION_FAILED - inequivalent arg 'K' for queue 'Q' in vhost
//! 'V': received X but current is Y`. So the probe re-declares the queue with
//! `x-dead-letter-exchange` set to a random name no queue has, and reads Y:
//!
//! - `current is none` → the queue has no dead-letter exchange;
//! - `current is 'dlx'` (RabbitMQ 3.10; newer ones say `the value 'dlx' of type
//!   'longstr'`) → it dead-letters to `dlx`, whose existence is then checked with a
//!   passive `exchange.declare`;
//! - a difference on `durable` / `auto_delete` flips that flag and tries again; a
//!   difference on another argument (`x-message-ttl`, `x-queue-type`, ...) is copied back
//!   from the message and the declare tried again — at most [`MAX_ATTEMPTS`] times.
//!
//! Limits, said in the messages where they bite:
//! - a dead-letter exchange set by a **policy** is not a queue argument and is not seen
//!   (the check reports "no dead-letter exchange"); use `x-dead-letter-exchange` arguments,
//!   or a tcp/exec probe with `rabbitmqctl list_queues name effective_policy_definition`;
//! - the non-passive declare needs the **configure** permission on the queue (otherwise
//!   403 ACCESS_REFUSED, reported as such);
//! - each check makes the broker log one channel error (`precondition_failed`) per queue;
//! - if the queue is deleted between the passive and the non-passive declare, the declare
//!   creates it. A declare that succeeds is therefore followed by a second one with another
//!   random name: if the broker answers "current is <the first name>", the probe made that
//!   queue, deletes it again (if-unused, if-empty) and reports the queue as missing; a
//!   queue the probe did not make is never deleted;
//! - brokers other than RabbitMQ may word (or not check) the equivalence differently: a
//!   broker that accepts both re-declares is reported as one whose queue arguments cannot
//!   be read this way, and a 406 that cannot be read is reported verbatim.

use gantry_spec::StoreProbe;
use lapin::options::{ExchangeDeclareOptions, QueueDeclareOptions, QueueDeleteOptions};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::uri::{AMQPScheme, AMQPUri};
use lapin::{Connection, ConnectionProperties, ErrorKind, ExchangeKind};

use super::{Ctx, connect_failure, host_port, random_token, resolve};

/// The TLS endpoint of an `amqps://` probe (for the pre-flight's certificate report).
pub(super) fn tls_endpoint(p: &StoreProbe) -> Option<crate::tls::inspect::Endpoint> {
    let uri: AMQPUri = p.url.parse().ok()?;
    (uri.scheme == AMQPScheme::AMQPS).then(|| crate::tls::inspect::Endpoint {
        host: uri.authority.host.clone(),
        port: uri.authority.port,
        preamble: crate::tls::inspect::Preamble::None,
        verify: crate::tls::Verify::Full.with(&p.tls),
        tls: p.tls.clone(),
    })
}

/// Re-declares per queue while learning its flags and arguments.
pub(crate) const MAX_ATTEMPTS: usize = 8;

const NOT_FOUND: u16 = 404;
const ACCESS_REFUSED: u16 = 403;
const RESOURCE_LOCKED: u16 = 405;
const PRECONDITION_FAILED: u16 = 406;
const NOT_ALLOWED: u16 = 530;

/// An `amqps://` connection: lapin's own TLS hook (tcp-stream on rustls-connector, ring),
/// handed gantry's client config, so the verifier, the roots and the messages are the
/// other TLS probes'.
async fn connect_tls(
    uri: AMQPUri,
    tls: &gantry_spec::TlsOptions,
    base: &std::path::Path,
) -> Result<lapin::Result<Connection>, String> {
    use lapin::tcp::{AsyncTcpStream, RustlsConnector};
    let config = std::sync::Arc::new(
        crate::tls::client_config(tls, base, crate::tls::Verify::Full.with(tls)).await?,
    );
    let runtime = lapin::runtime::default_runtime().map_err(|e| e.to_string())?;
    let connect = async move |uri: AMQPUri, rt: async_rs::Runtime<async_rs::Tokio>| {
        let host = uri.authority.host.clone();
        let addrs: Vec<std::net::SocketAddr> =
            tokio::net::lookup_host((host.as_str(), uri.authority.port))
                .await?
                .collect();
        let plain = AsyncTcpStream::connect(&rt, addrs).await?;
        let connector = RustlsConnector::from(config.clone());
        let name = host.trim_start_matches('[').trim_end_matches(']');
        lapin::Result::Ok(plain.into_rustls(&connector, name).await?)
    };
    Ok(Connection::connector(uri, runtime, connect, ConnectionProperties::default()).await)
}

pub(super) async fn check(
    p: &StoreProbe,
    ctx: &Ctx,
    base: &std::path::Path,
) -> Result<String, String> {
    let uri: AMQPUri = p
        .url
        .parse()
        .map_err(|e| format!("invalid amqp URL: {e}"))?;
    let host = uri.authority.host.clone();
    let target = host_port(&host, uri.authority.port);
    let vhost = uri.vhost.clone();
    let user = uri.authority.userinfo.username.clone();
    ctx.step("resolving the host name");
    resolve(&host, uri.authority.port).await?;

    ctx.step("connecting");
    let conn = if uri.scheme == AMQPScheme::AMQPS {
        ctx.step("loading the TLS settings");
        let tls = connect_tls(uri, &p.tls, base);
        ctx.step("connecting over TLS");
        tls.await?
    } else {
        Connection::connect_uri(uri, ConnectionProperties::default()).await
    }
    .map_err(|e| describe_connect(&e, &target, &vhost, &user))?;
    let result = work(&conn, p, ctx, &vhost).await;
    ctx.step("closing the connection");
    let _ = conn.close(200, "gantry probe done".into()).await;
    result
}

async fn work(conn: &Connection, p: &StoreProbe, ctx: &Ctx, vhost: &str) -> Result<String, String> {
    let mut notes = Vec::new();
    for q in &p.queues {
        ctx.step(format!("checking queue {q:?}"));
        let ch = conn
            .create_channel()
            .await
            .map_err(|e| format!("cannot open a channel: {}", describe(&e)))?;
        let declared = ch
            .queue_declare(
                ShortString::from(q.as_str()),
                QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await;
        let _ = ch.close(200, "ok".into()).await;
        match declared {
            Ok(_) => {}
            Err(e) => {
                return Err(match code(&e) {
                    Some(NOT_FOUND) => format!("queue {q:?} does not exist in vhost {vhost:?}"),
                    Some(RESOURCE_LOCKED) => format!(
                        "queue {q:?} is exclusive to another connection: {}",
                        describe(&e)
                    ),
                    _ => format!("checking queue {q:?}: {}", describe(&e)),
                });
            }
        }
        if p.require_dlq {
            ctx.step(format!("reading the dead-letter exchange of queue {q:?}"));
            match dead_letter_exchange(conn, q, vhost).await? {
                None => {
                    return Err(format!(
                        "queue {q:?} has no dead-letter exchange (no x-dead-letter-exchange \
                         argument; one set by a policy cannot be seen over AMQP)"
                    ));
                }
                Some(dlx) if dlx.is_empty() => notes.push(format!("{q} → default exchange")),
                Some(dlx) => {
                    ctx.step(format!("checking dead-letter exchange {dlx:?}"));
                    exchange_exists(conn, &dlx)
                        .await
                        .map_err(|e| format!("queue {q:?} dead-letters to {dlx:?}: {e}"))?;
                    notes.push(format!("{q} → {dlx}"));
                }
            }
        }
    }
    let mut msg = "connected".to_string();
    if !p.queues.is_empty() {
        msg.push_str(&format!(", queues present: {}", p.queues.join(", ")));
    }
    if !notes.is_empty() {
        msg.push_str(&format!("; dead-letter exchanges: {}", notes.join(", ")));
    }
    Ok(msg)
}

/// The queue's `x-dead-letter-exchange` argument, read from the broker's inequivalence
/// answers (see the module doc).
async fn dead_letter_exchange(
    conn: &Connection,
    queue: &str,
    vhost: &str,
) -> Result<Option<String>, String> {
    let bogus = format!("gantry-probe-no-such-exchange-{}", random_token());
    let mut durable = true;
    let mut auto_delete = false;
    let mut learned: Vec<(String, AMQPValue)> = Vec::new();
    for _ in 0..MAX_ATTEMPTS {
        let flags = (durable, auto_delete);
        let err = match redeclare(conn, queue, flags, &learned, &bogus).await {
            Ok(()) => return Err(accepted(conn, queue, vhost, flags, &learned, &bogus).await),
            Err(e) => e,
        };
        match code(&err) {
            Some(PRECONDITION_FAILED) => {}
            Some(NOT_FOUND) => {
                return Err(format!("queue {queue:?} does not exist in vhost {vhost:?}"));
            }
            Some(ACCESS_REFUSED) => {
                return Err(format!(
                    "cannot read the dead-letter exchange of queue {queue:?}: the check re-declares \
                     the queue, which needs the configure permission ({})",
                    describe(&err)
                ));
            }
            _ => {
                return Err(format!(
                    "reading the dead-letter exchange of queue {queue:?}: {}",
                    describe(&err)
                ));
            }
        }
        let text = message(&err);
        let unreadable = || {
            format!(
                "cannot read the dead-letter exchange of queue {queue:?}: the broker answered {text:?}"
            )
        };
        let Some(diff) = parse_inequivalence(&text) else {
            return Err(unreadable());
        };
        match diff.key.as_str() {
            "x-dead-letter-exchange" => {
                return match diff.current {
                    Current::None => Ok(None),
                    Current::Value { value, .. } | Current::Plain(value) => Ok(Some(value)),
                };
            }
            "durable" => durable = !durable,
            "auto_delete" => auto_delete = !auto_delete,
            key => {
                let value = match &diff.current {
                    Current::Value { value, type_ } => amqp_value(value, type_),
                    Current::Plain(value) => Some(untyped_value(value)),
                    Current::None => None,
                };
                let Some(value) = value else {
                    return Err(unreadable());
                };
                learned.retain(|(k, _)| k != key);
                learned.push((key.to_string(), value));
            }
        }
    }
    Err(format!(
        "cannot read the dead-letter exchange of queue {queue:?}: still inequivalent after {MAX_ATTEMPTS} declares"
    ))
}

/// A non-passive `queue.declare` of `queue` with these flags, the learned arguments and
/// `x-dead-letter-exchange = dlx`, on a channel of its own.
async fn redeclare(
    conn: &Connection,
    queue: &str,
    (durable, auto_delete): (bool, bool),
    learned: &[(String, AMQPValue)],
    dlx: &str,
) -> Result<(), lapin::Error> {
    let ch = conn.create_channel().await?;
    let mut args = FieldTable::default();
    for (k, v) in learned {
        args.insert(ShortString::from(k.as_str()), v.clone());
    }
    args.insert(
        ShortString::from("x-dead-letter-exchange"),
        AMQPValue::LongString(LongString::from(dlx)),
    );
    ch.queue_declare(
        ShortString::from(queue),
        QueueDeclareOptions {
            passive: false,
            durable,
            exclusive: false,
            auto_delete,
            nowait: false,
        },
        args,
    )
    .await?;
    let _ = ch.close(200, "ok".into()).await;
    Ok(())
}

/// The broker accepted a re-declare with a dead-letter exchange no queue has. Either the
/// queue vanished after the passive check and that declare created it, or the broker does
/// not compare queue arguments. A second re-declare with yet another name tells which:
/// only a queue this probe created answers "current is <our first name>" — and only that
/// queue is deleted again. The answer is the failure message.
async fn accepted(
    conn: &Connection,
    queue: &str,
    vhost: &str,
    flags: (bool, bool),
    learned: &[(String, AMQPValue)],
    first: &str,
) -> String {
    let second = format!("gantry-probe-no-such-exchange-{}", random_token());
    match redeclare(conn, queue, flags, learned, &second).await {
        Err(e) if code(&e) == Some(PRECONDITION_FAILED) => {
            let ours = parse_inequivalence(&message(&e)).is_some_and(|d| {
                d.key == "x-dead-letter-exchange"
                    && matches!(&d.current, Current::Plain(v) | Current::Value { value: v, .. } if v == first)
            });
            if ours && let Ok(ch) = conn.create_channel().await {
                let _ = ch
                    .queue_delete(
                        ShortString::from(queue),
                        QueueDeleteOptions {
                            if_unused: true,
                            if_empty: true,
                            nowait: false,
                        },
                    )
                    .await;
                let _ = ch.close(200, "ok".into()).await;
                return format!(
                    "queue {queue:?} does not exist in vhost {vhost:?} (it was deleted during the check)"
                );
            }
            format!(
                "cannot read the dead-letter exchange of queue {queue:?}: the broker answered {:?}",
                message(&e)
            )
        }
        Ok(()) => format!(
            "cannot read the dead-letter exchange of queue {queue:?}: the broker accepts \
             re-declaring it with any x-dead-letter-exchange (it does not compare queue arguments)"
        ),
        Err(e) => format!(
            "reading the dead-letter exchange of queue {queue:?}: {}",
            describe(&e)
        ),
    }
}

async fn exchange_exists(conn: &Connection, name: &str) -> Result<(), String> {
    let ch = conn
        .create_channel()
        .await
        .map_err(|e| format!("cannot open a channel: {}", describe(&e)))?;
    let r = ch
        .exchange_declare(
            ShortString::from(name),
            ExchangeKind::Direct,
            ExchangeDeclareOptions {
                passive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await;
    let _ = ch.close(200, "ok".into()).await;
    match r {
        Ok(()) => Ok(()),
        Err(e) if code(&e) == Some(NOT_FOUND) => Err("that exchange does not exist".into()),
        Err(e) => Err(describe(&e)),
    }
}

/// One `inequivalent arg` answer: the key and what the queue currently has.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Inequivalence {
    pub key: String,
    pub current: Current,
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Current {
    /// `current is none`
    None,
    /// `current is the value 'V' of type 'T'` (queue arguments)
    Value { value: String, type_: String },
    /// `current is 'V'` (the durable / auto_delete flags)
    Plain(String),
}

/// Parses RabbitMQ's `inequivalent arg 'K' for queue 'Q' in vhost 'V': received X but
/// current is Y` (rabbit_misc:equivalence_fail).
pub(crate) fn parse_inequivalence(text: &str) -> Option<Inequivalence> {
    let start = text.find("inequivalent arg '")? + "inequivalent arg '".len();
    let rest = &text[start..];
    let key = &rest[..rest.find("' for ")?];
    let cur = &rest[rest.rfind("but current is ")? + "but current is ".len()..];
    let current = if cur == "none" {
        Current::None
    } else if let Some(v) = cur.strip_prefix("the value '") {
        let sep = v.rfind("' of type '")?;
        let type_ = v[sep + "' of type '".len()..].strip_suffix('\'')?;
        Current::Value {
            value: v[..sep].to_string(),
            type_: type_.to_string(),
        }
    } else {
        Current::Plain(cur.strip_prefix('\'')?.strip_suffix('\'')?.to_string())
    };
    Some(Inequivalence {
        key: key.to_string(),
        current,
    })
}

/// An argument value in the type class RabbitMQ compares (all integers are one class).
fn amqp_value(value: &str, type_: &str) -> Option<AMQPValue> {
    match type_ {
        "longstr" | "shortstr" => Some(AMQPValue::LongString(LongString::from(value))),
        "long" | "signedint" | "short" | "byte" | "unsignedbyte" | "unsignedshort"
        | "unsignedint" => value.parse().ok().map(AMQPValue::LongLongInt),
        "bool" => value.parse().ok().map(AMQPValue::Boolean),
        _ => None,
    }
}

/// A value from an answer that does not name its type (RabbitMQ 3.10 and older print
/// `current is '60000'`): integers and booleans by their looks, else a string.
fn untyped_value(value: &str) -> AMQPValue {
    if let Ok(n) = value.parse::<i64>() {
        AMQPValue::LongLongInt(n)
    } else if let Ok(b) = value.parse::<bool>() {
        AMQPValue::Boolean(b)
    } else {
        AMQPValue::LongString(LongString::from(value))
    }
}

fn code(e: &lapin::Error) -> Option<u16> {
    match e.kind() {
        ErrorKind::ProtocolError(p) => Some(p.get_id()),
        _ => None,
    }
}

fn message(e: &lapin::Error) -> String {
    match e.kind() {
        ErrorKind::ProtocolError(p) => p.get_message().to_string(),
        _ => e.to_string(),
    }
}

fn describe(e: &lapin::Error) -> String {
    match e.kind() {
        ErrorKind::ProtocolError(p) => format!("{} {}", p.get_id(), p.get_message()),
        _ => e.to_string(),
    }
}

fn describe_connect(e: &lapin::Error, target: &str, vhost: &str, user: &str) -> String {
    if let Some(tls) = crate::tls::find_error(e) {
        let host = target.rsplit_once(':').map_or(target, |(h, _)| h);
        return crate::tls::describe(tls, host).to_string();
    }
    match e.kind() {
        ErrorKind::ProtocolError(p) => {
            let text = p.get_message().to_string();
            match p.get_id() {
                ACCESS_REFUSED => format!("authentication failed for user {user:?}: {text}"),
                NOT_ALLOWED if text.contains("not found") => {
                    format!("vhost {vhost:?} does not exist: {text}")
                }
                NOT_ALLOWED => format!("access to vhost {vhost:?} refused: {text}"),
                id => format!("{id} {text}"),
            }
        }
        ErrorKind::IOError(io) => {
            connect_failure(io, target).unwrap_or_else(|| format!("{io} ({target})"))
        }
        _ => format!("{e} ({target})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_rabbitmq_inequivalence_answers() {
        let none = "PRECONDITION_FAILED - inequivalent arg 'x-dead-letter-exchange' for queue 'q' \
                    in vhost '/': received the value 'gantry-x' of type 'longstr' but current is none";
        assert_eq!(
            parse_inequivalence(none),
            Some(Inequivalence {
                key: "x-dead-letter-exchange".into(),
                current: Current::None
            })
        );
        let some = "PRECONDITION_FAILED - inequivalent arg 'x-dead-letter-exchange' for queue 'q' \
                    in vhost '/': received the value 'g' of type 'longstr' but current is the value \
                    'it''s dlx' of type 'longstr'";
        assert_eq!(
            parse_inequivalence(some).unwrap().current,
            Current::Value {
                value: "it''s dlx".into(),
                type_: "longstr".into()
            }
        );
        let durable = "PRECONDITION_FAILED - inequivalent arg 'durable' for queue 'q' in vhost '/': \
                       received 'true' but current is 'false'";
        assert_eq!(
            parse_inequivalence(durable).unwrap(),
            Inequivalence {
                key: "durable".into(),
                current: Current::Plain("false".into())
            }
        );
        let plain = "PRECONDITION_FAILED - inequivalent arg 'x-message-ttl' for queue 'q' in \
                     vhost '/': received none but current is '60000'";
        assert_eq!(
            parse_inequivalence(plain).unwrap().current,
            Current::Plain("60000".into())
        );
        assert_eq!(untyped_value("60000"), AMQPValue::LongLongInt(60000));
        assert_eq!(parse_inequivalence("NOT_FOUND - no queue 'q'"), None);
    }

    /// The race the second re-declare guards against, played against the real broker:
    /// a queue the probe's own declare created is deleted again; a queue it did not create
    /// (another dead-letter exchange) is left alone.
    #[tokio::test]
    async fn only_a_queue_the_probe_created_is_deleted() {
        let url = "amqp://guest:guest@127.0.0.1:5672/%2f";
        let conn = Connection::connect(url, ConnectionProperties::default())
            .await
            .unwrap_or_else(|e| {
                panic!("RabbitMQ is not answering on 127.0.0.1:5672 ({e}); run scripts/stores")
            });
        let flags = (true, false);
        let first = format!("gantry-probe-no-such-exchange-{}", random_token());

        // As if the queue vanished after the passive check and the probe's declare made it.
        let made = format!("gantry_probe_race_{}", random_token());
        redeclare(&conn, &made, flags, &[], &first).await.unwrap();
        let msg = accepted(&conn, &made, "/", flags, &[], &first).await;
        let made_left = redeclare_passive(&conn, &made).await;

        // A user's queue with its own dead-letter exchange.
        let theirs = format!("gantry_probe_theirs_{}", random_token());
        redeclare(&conn, &theirs, flags, &[], "their-dlx")
            .await
            .unwrap();
        let msg2 = accepted(&conn, &theirs, "/", flags, &[], &first).await;
        let theirs_left = redeclare_passive(&conn, &theirs).await;
        if let Ok(ch) = conn.create_channel().await {
            let _ = ch
                .queue_delete(ShortString::from(theirs.as_str()), Default::default())
                .await;
            let _ = ch
                .queue_delete(ShortString::from(made.as_str()), Default::default())
                .await;
        }
        let _ = conn.close(200, "ok".into()).await;

        assert!(msg.contains("does not exist"), "{msg}");
        assert!(!made_left, "the queue the probe made is deleted again");
        assert!(msg2.contains("cannot read"), "{msg2}");
        assert!(
            theirs_left,
            "a queue the probe did not make is never deleted"
        );
    }

    async fn redeclare_passive(conn: &Connection, queue: &str) -> bool {
        let ch = conn.create_channel().await.unwrap();
        let r = ch
            .queue_declare(
                ShortString::from(queue),
                QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await;
        let _ = ch.close(200, "ok".into()).await;
        r.is_ok()
    }

    #[test]
    fn argument_values_keep_their_type_class() {
        assert_eq!(
            amqp_value("60000", "long"),
            Some(AMQPValue::LongLongInt(60000))
        );
        assert_eq!(
            amqp_value("5", "signedint"),
            Some(AMQPValue::LongLongInt(5))
        );
        assert!(matches!(
            amqp_value("quorum", "longstr"),
            Some(AMQPValue::LongString(_))
        ));
        assert_eq!(amqp_value("x", "table"), None);
    }
}
