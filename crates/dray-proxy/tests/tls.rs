//! dray-proxy on loopback with TLS: certificates from files chosen by SNI (HTTP/2 and
//! HTTP/1.1), re-read at each deploy, redirects to https and to the canonical host, the
//! `--error-pages` templates, and all of it after a restart.

mod common;

use std::path::Path;

use common::{deploy_args, https, raw_request, Backend, Ca, Proxy};

fn tls_flags<'a>(cert: &'a str, key: &'a str) -> [String; 3] {
    [
        "--tls".to_string(),
        format!("--tls-certificate-path={cert}"),
        format!("--tls-private-key-path={key}"),
    ]
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

fn deploy(
    proxy: &Proxy,
    service: &str,
    backend: &Backend,
    extra: &[String],
) -> std::process::Output {
    let target = backend.target();
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    proxy.cli(&deploy_args(service, &target, &extra))
}

fn deploy_ok(proxy: &Proxy, service: &str, backend: &Backend, extra: &[String]) {
    let out = deploy(proxy, service, backend, extra);
    assert!(
        out.status.success(),
        "deploy {service} failed: {}\n--- proxy log ---\n{}",
        String::from_utf8_lossy(&out.stderr),
        proxy.log()
    );
}

#[test]
fn https_serves_each_host_its_certificate_by_sni_over_h2_and_http1() {
    let mut proxy = Proxy::start();
    let ca = Ca::new();
    let (a_cert, a_key, a_der) = ca.issue("a", &["a.test"]);
    let (b_cert, b_key, b_der) = ca.issue("b", &["b.test"]);
    let a = Backend::start("a", true);
    let b = Backend::start("b", true);
    let mut a_flags = vec!["--host=a.test".to_string()];
    a_flags.extend(tls_flags(&s(&a_cert), &s(&a_key)));
    deploy_ok(&proxy, "a-web", &a, &a_flags);
    let mut b_flags = vec!["--host=b.test".to_string()];
    b_flags.extend(tls_flags(&s(&b_cert), &s(&b_key)));
    deploy_ok(&proxy, "b-web", &b, &b_flags);

    let port = proxy.https_port;
    let r = https(
        port,
        &ca.der(),
        "a.test",
        "a.test",
        "/x",
        &["h2", "http/1.1"],
    )
    .expect("a over h2");
    assert_eq!((r.status, r.body.as_str()), (200, "a /x"));
    assert_eq!(r.alpn.as_deref(), Some("h2"));
    assert_eq!(r.cert, a_der);
    assert_eq!(r.headers["x-seen-forwarded-proto"], "https");
    let r =
        https(port, &ca.der(), "b.test", "b.test", "/", &["http/1.1"]).expect("b over http/1.1");
    assert_eq!((r.status, r.body.as_str()), (200, "b /"));
    assert_eq!(r.alpn.as_deref(), Some("http/1.1"));
    assert_eq!(r.cert, b_der);
    // No ALPN at all: HTTP/1.1.
    let r = https(port, &ca.der(), "b.test", "b.test", "/", &[]).expect("b without alpn");
    assert_eq!(r.status, 200);
    // A host no TLS service serves has no certificate.
    assert!(https(port, &ca.der(), "c.test", "c.test", "/", &[]).is_err());

    // A new certificate in the same files: the next deploy serves it.
    let (_, _, a2_der) = ca.issue("a", &["a.test"]);
    assert_ne!(a2_der, a_der);
    deploy_ok(&proxy, "a-web", &a, &a_flags);
    let r = https(port, &ca.der(), "a.test", "a.test", "/", &["h2"]).expect("a again");
    assert_eq!(r.cert, a2_der);

    // Files that do not load fail the deploy, with the file named, and the route stays.
    std::fs::write(&a_cert, "not a certificate").expect("write");
    let out = deploy(&proxy, "a-web", &a, &a_flags);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unable to load certificate") && err.contains("cert.pem"),
        "{err}"
    );
    let mut missing = vec!["--host=a.test".to_string()];
    missing.extend(tls_flags("/nonexistent/cert.pem", &s(&a_key)));
    let out = deploy(&proxy, "a-web", &a, &missing);
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/cert.pem"));
    // The other key with this certificate: refused too.
    let (c_cert, _, _) = ca.issue("c", &["a.test"]);
    let mut mismatch = vec!["--host=a.test".to_string()];
    mismatch.extend(tls_flags(&s(&c_cert), &s(&b_key)));
    assert!(!deploy(&proxy, "a-web", &a, &mismatch).status.success());
    let r = https(port, &ca.der(), "a.test", "a.test", "/still", &["h2"]).expect("old route");
    assert_eq!(
        (r.status, r.body.as_str(), r.cert),
        (200, "a /still", a2_der.clone())
    );

    // A restart reads the files again from the saved state; one that no longer loads (a's,
    // still broken) leaves that host without a certificate, the others served.
    let (_, _, b2_der) = ca.issue("b", &["b.test"]);
    assert_eq!(proxy.terminate(), Some(0));
    proxy.spawn();
    let r = https(port, &ca.der(), "b.test", "b.test", "/", &["h2"]).expect("b after restart");
    assert_eq!((r.status, r.cert), (200, b2_der));
    assert!(https(port, &ca.der(), "a.test", "a.test", "/", &["h2"]).is_err());
    assert!(proxy.log().contains("Cannot load for restored service"));
    let (_, _, a3_der) = ca.issue("a", &["a.test"]);
    assert_eq!(proxy.terminate(), Some(0));
    proxy.spawn();
    let r = https(port, &ca.der(), "a.test", "a.test", "/", &["h2"]).expect("a after restart");
    assert_eq!(r.cert, a3_der);
    assert!(proxy.ok(&["list"]).contains("yes"));
}

#[test]
fn plain_http_to_a_tls_host_is_redirected_to_https() {
    let mut proxy = Proxy::start();
    let ca = Ca::new();
    let (cert, key, _) = ca.issue("a", &["a.test", "www.a.test"]);
    let a = Backend::start("a", true);
    let plain = Backend::start("plain", true);
    let mut flags = vec!["--host=a.test,www.a.test".to_string()];
    flags.extend(tls_flags(&s(&cert), &s(&key)));
    deploy_ok(&proxy, "a-web", &a, &flags);
    deploy_ok(
        &proxy,
        "plain-web",
        &plain,
        &["--host=plain.test".to_string()],
    );
    let api = Backend::start("api", true);
    deploy_ok(
        &proxy,
        "a-api",
        &api,
        &[
            "--host=a.test".to_string(),
            "--path-prefix=/api".to_string(),
        ],
    );

    let (status, head, body) = raw_request(
        proxy.port,
        "GET /some/path?q=1&r=%20 HTTP/1.1\r\nHost: a.test:8080\r\n\r\n",
    );
    assert_eq!(status, 301, "{head}");
    let head = head.to_ascii_lowercase();
    assert!(
        head.contains("\r\nlocation: https://a.test/some/path?q=1&r=%20"),
        "{head}"
    );
    assert!(head.contains("\r\nconnection: close"), "{head}");
    assert!(body.contains("Moved Permanently"), "{body}");
    // Every path, ACME's included (certificates from files answer no challenge), and the
    // path-prefix service on the same host follows the root service's TLS settings.
    for path in ["/.well-known/acme-challenge/x", "/api/users"] {
        let (status, head, _) = raw_request(
            proxy.port,
            &format!("HEAD {path} HTTP/1.1\r\nHost: a.test\r\n\r\n"),
        );
        assert_eq!(status, 301, "{path}: {head}");
    }
    let r = https(
        proxy.https_port,
        &ca.der(),
        "a.test",
        "a.test",
        "/api/users",
        &["h2"],
    )
    .expect("api");
    assert_eq!((r.status, r.body.as_str()), (200, "api /users"));
    // A plain service is not redirected, and answers 503 when reached over TLS.
    assert_eq!(proxy.get("plain.test", "/"), (200, "plain /".into()));
    let r = https(
        proxy.https_port,
        &ca.der(),
        "a.test",
        "plain.test",
        "/",
        &["http/1.1"],
    )
    .expect("plain");
    assert_eq!(r.status, 503);

    // --canonical-host: the other host is sent to it, over https as well.
    let mut canon = flags.clone();
    canon.push("--canonical-host=a.test".to_string());
    deploy_ok(&proxy, "a-web", &a, &canon);
    let r = https(
        proxy.https_port,
        &ca.der(),
        "www.a.test",
        "www.a.test",
        "/p",
        &["h2"],
    )
    .expect("www");
    assert_eq!(r.status, 301);
    assert_eq!(r.headers["location"], "https://a.test/p");
    let r = https(
        proxy.https_port,
        &ca.der(),
        "a.test",
        "a.test",
        "/p",
        &["h2"],
    )
    .expect("canonical");
    assert_eq!(r.status, 200);

    // --tls-redirect=false: plain HTTP is served.
    let mut no_redirect = flags.clone();
    no_redirect.push("--tls-redirect=false".to_string());
    deploy_ok(&proxy, "a-web", &a, &no_redirect);
    assert_eq!(proxy.get("a.test", "/"), (200, "a /".into()));
    assert_eq!(proxy.get("a.test", "/api/x"), (200, "api /x".into()));
    // Kept across a restart.
    assert_eq!(proxy.terminate(), Some(0));
    proxy.spawn();
    assert_eq!(proxy.get("a.test", "/"), (200, "a /".into()));
    deploy_ok(&proxy, "a-web", &a, &flags);
    assert_eq!(proxy.terminate(), Some(0));
    proxy.spawn();
    assert_eq!(proxy.get("a.test", "/").0, 301);
}

#[test]
fn error_pages_replace_the_proxys_own_answers() {
    let mut proxy = Proxy::start();
    let pages = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        pages.path().join("503.html"),
        "<h1>Custom 503</h1>{{ if .Message }}<p>{{ .Message }}</p>{{ else }}<p>Down</p>{{ end }}",
    )
    .expect("write");
    std::fs::write(pages.path().join("502.html"), "<h1>Custom 502</h1>").expect("write");
    let mut backend = Backend::start("v1", true);
    let flags = vec![
        "--host=app.test".to_string(),
        format!("--error-pages={}", s(pages.path())),
        "--target-timeout=300ms".to_string(),
    ];
    deploy_ok(&proxy, "app-web", &backend, &flags);
    assert_eq!(proxy.get("app.test", "/"), (200, "v1 /".into()));

    // Maintenance: the template gets the message, escaped; health checks still pass.
    proxy.ok(&["stop", "app-web", "--message=Back at <noon>"]);
    let (status, body) = proxy.get("app.test", "/");
    assert_eq!(status, 503);
    assert_eq!(body, "<h1>Custom 503</h1><p>Back at &lt;noon&gt;</p>");
    assert_eq!(proxy.get("app.test", "/up"), (200, String::new()));
    proxy.ok(&["stop", "app-web"]);
    assert_eq!(
        proxy.get("app.test", "/").1,
        "<h1>Custom 503</h1><p>Down</p>"
    );
    // Still so after a restart (the pages are parsed again).
    assert_eq!(proxy.terminate(), Some(0));
    proxy.spawn();
    assert_eq!(
        proxy.get("app.test", "/").1,
        "<h1>Custom 503</h1><p>Down</p>"
    );
    proxy.ok(&["resume", "app-web"]);

    // A slow target: 504, which has no page of its own: the built-in one.
    let (status, body) = proxy.get("app.test", "/slow?ms=2000");
    assert_eq!(status, 504);
    assert!(body.contains("504 Gateway Timeout"), "{body}");
    // The target gone: the service's 502.
    backend.stop();
    assert_eq!(
        proxy.get("app.test", "/"),
        (502, "<h1>Custom 502</h1>".into())
    );
    // A host no service serves gets the built-in 404, never a service's page.
    assert!(proxy.get("other.test", "/").1.contains("404 Not Found"));

    // A directory without pages, or with one that does not parse, fails the deploy.
    let empty = tempfile::tempdir().expect("temp dir");
    let backend = Backend::start("v2", true);
    let bad = [format!("--error-pages={}", s(empty.path()))];
    let out = deploy(&proxy, "app-web", &backend, &bad);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unable to load error pages"));
    std::fs::write(empty.path().join("503.html"), "{{ if .Message }}").expect("write");
    assert!(!deploy(&proxy, "app-web", &backend, &bad).status.success());
}
