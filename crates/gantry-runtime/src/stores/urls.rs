//! Store URLs shown without their password: re-exports of the shared rules in `gantry_spec::url`.

pub(crate) use gantry_spec::url::percent_decode as decode;
pub use gantry_spec::url::{redact_url, url_secrets as secrets};

#[cfg(test)]
mod tests {
    use super::*;
    use gantry_spec::url::percent_decode;

    #[test]
    fn masks_the_password_of_a_url() {
        assert_eq!(
            redact_url("postgres://app:s3cret@db:5432/app"),
            "postgres://app:***@db:5432/app"
        );
        assert_eq!(
            redact_url("amqp://guest:guest@127.0.0.1:5672/%2f"),
            "amqp://guest:***@127.0.0.1:5672/%2f"
        );
        assert_eq!(
            redact_url("redis://:pw@127.0.0.1:6379/0"),
            "redis://:***@127.0.0.1:6379/0"
        );
        assert_eq!(
            redact_url("mysql://root:@127.0.0.1:3306/x"),
            "mysql://root:***@127.0.0.1:3306/x"
        );
    }

    #[test]
    fn leaves_urls_without_password_alone() {
        for u in [
            "postgres://postgres@127.0.0.1:5432/postgres",
            "redis://127.0.0.1:6379",
            "nats://127.0.0.1:4222",
            "sqlite://data/app.db",
            "data/app.db",
            "postgres://h/db?sslmode=disable&application_name=x",
        ] {
            assert_eq!(redact_url(u), u);
        }
    }

    #[test]
    fn raw_special_characters_in_the_password_never_leak() {
        for (url, secret) in [
            ("postgres://u:p@ss@h/db", "p@ss"),
            ("postgres://u:a/b:c@h:5432/db", "a/b:c"),
            ("mysql://u:x?y#z@h/db", "x?y#z"),
            ("postgres://u:pw@h/db?application_name=a@b", "pw"),
        ] {
            let shown = redact_url(url);
            assert!(!shown.contains(secret), "{url} -> {shown}");
            assert!(shown.starts_with(url.split(':').next().unwrap()), "{shown}");
        }
        assert_eq!(
            redact_url("postgres://u:p@ss@h/db"),
            "postgres://u:***@h/db"
        );
    }

    #[test]
    fn masks_password_parameters() {
        assert_eq!(
            redact_url("postgres://h/db?user=u&password=pw&sslmode=disable"),
            "postgres://h/db?user=u&password=***&sslmode=disable"
        );
        assert_eq!(
            redact_url("host=127.0.0.1 user=app password=s3cret dbname=app"),
            "host=127.0.0.1 user=app password=*** dbname=app"
        );
        assert_eq!(
            redact_url("host=h password='a b\\' c' dbname=x"),
            "host=h password=*** dbname=x"
        );
        assert_eq!(redact_url("host=h PWD=x"), "host=h PWD=***");
        // A key that merely ends in "password" is not one.
        assert_eq!(redact_url("h?nopassword=1"), "h?nopassword=1");
    }

    #[test]
    fn secrets_cover_raw_and_decoded_forms() {
        let s = secrets("postgres://u:p%40ss%2Fw@h/db");
        assert!(s.contains(&"p%40ss%2Fw".to_string()));
        assert!(s.contains(&"p@ss/w".to_string()));
        let s = secrets("host=h password='x y' dbname=d");
        assert!(s.contains(&"x y".to_string()), "{s:?}");
        assert!(secrets("redis://127.0.0.1").is_empty());
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%2Fb%40"), "a/b@");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
        assert_eq!(percent_decode("%é"), "%é");
    }
}
