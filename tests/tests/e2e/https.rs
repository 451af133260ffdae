//! HTTPS: the server serves rustls with a given certificate; a device that trusts the
//! project's CA enrolls and syncs over it; plain HTTP to the TLS port gets nowhere.

use suivi_core::sync::HttpTransport;
use suivi_core::{Error, Store};
use suivi_server::storage::Role;
use suivi_server::{admin, SqliteStore, TlsFiles};
use suivi_tests::child;

#[test]
fn devices_sync_over_https_with_the_projects_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert_pem = cert.cert.pem();
    let files = TlsFiles {
        cert: dir.path().join("cert.pem"),
        key: dir.path().join("key.pem"),
    };
    std::fs::write(&files.cert, &cert_pem).unwrap();
    std::fs::write(&files.key, cert.key_pair.serialize_pem()).unwrap();

    let store =
        std::sync::Arc::new(SqliteStore::open(&dir.path().join("server.db"), None).unwrap());
    admin::add_user(store.as_ref(), "amina", Role::Agent, "sikasso", None).unwrap();
    let codes = suivi_server::auth::CodeKey::generate();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = runtime
        .block_on(suivi_server::spawn_tls(
            suivi_server::state(store.clone(), codes.clone()),
            "127.0.0.1:0".parse().unwrap(),
            &files,
        ))
        .unwrap();
    let url = format!("https://localhost:{}", server.addr.port());

    let mut device = Store::create(&dir.path().join("device.db"), "k", "amina", "phone").unwrap();
    // Without the project's CA the certificate is not trusted: offline, nothing lost.
    let untrusted = HttpTransport::new(&url).unwrap();
    let code = admin::enrollment_code(store.as_ref(), &codes, "amina").unwrap();
    assert!(matches!(
        device.enroll(&untrusted, &url, &code),
        Err(Error::Offline(_))
    ));
    let trusted = HttpTransport::with_root_certificate(&url, Some(cert_pem.as_bytes())).unwrap();
    device.enroll(&trusted, &url, &code).unwrap();
    device.create_case(&child(1)).unwrap();
    // The CA is kept in the encrypted store; later syncs build their transport from it.
    assert!(matches!(
        device.set_server_ca("not a certificate"),
        Err(Error::InvalidInput(_))
    ));
    assert!(matches!(
        device.sync(&device.transport().unwrap(), &mut |_| {}),
        Err(Error::Offline(_))
    ));
    device.set_server_ca(&cert_pem).unwrap();
    let report = device
        .sync(&device.transport().unwrap(), &mut |_| {})
        .unwrap();
    assert_eq!(report.cases_up, 1);
    // Plain HTTP to the TLS port does not get a sync through.
    let plain = HttpTransport::new(&format!("http://127.0.0.1:{}", server.addr.port())).unwrap();
    assert!(device.sync(&plain, &mut |_| {}).is_err());
    // Over HTTPS the console's cookies are marked Secure.
    let client = reqwest::blocking::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert_pem.as_bytes()).unwrap())
        .build()
        .unwrap();
    let login = client.get(format!("{url}/console/login")).send().unwrap();
    let cookie = login.headers()["set-cookie"].to_str().unwrap();
    assert!(
        cookie.contains("; Secure") && cookie.contains("HttpOnly"),
        "{cookie}"
    );
    // Browsers keep to HTTPS for a year once they have reached it.
    assert_eq!(
        login.headers()["strict-transport-security"],
        "max-age=31536000"
    );
    // The handshake offers HTTP/1.1 only, even to a client that asks for HTTP/2 first.
    let handshake = std::process::Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &format!("127.0.0.1:{}", server.addr.port()),
            "-alpn",
            "h2,http/1.1",
        ])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&handshake.stdout);
    assert!(said.contains("ALPN protocol: http/1.1"), "{said}");
    server.handle.abort();
}
