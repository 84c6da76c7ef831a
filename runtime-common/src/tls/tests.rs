use super::*;

/// A self-signed certificate for `localhost`, written as PEM files into a
/// fresh directory.
struct Pki {
    dir: PathBuf,
}

impl Pki {
    fn new(test: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("chat-tls-{}-{test}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let certified = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        std::fs::write(dir.join("cert.pem"), certified.cert.pem()).unwrap();
        std::fs::write(dir.join("key.pem"), certified.signing_key.serialize_pem()).unwrap();
        Self { dir }
    }
    fn cert(&self) -> PathBuf {
        self.dir.join("cert.pem")
    }
    fn key(&self) -> PathBuf {
        self.dir.join("key.pem")
    }
    fn pair(&self, name: &str) -> (TlsSession, TlsSession) {
        let server = TlsSession::server(server_config(&self.cert(), &self.key()).unwrap()).unwrap();
        let client = TlsSession::client(
            client_config(Some(&self.cert())).unwrap(),
            server_name_of(name).unwrap(),
        )
        .unwrap();
        (server, client)
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Moves everything each side has to send to the other, in pieces of
/// `piece` bytes, until neither has anything; returns the plaintext each
/// received (server's, client's) or the first error.
fn exchange(
    server: &mut TlsSession,
    client: &mut TlsSession,
    piece: usize,
) -> Result<(Vec<u8>, Vec<u8>), TlsError> {
    let (mut at_server, mut at_client) = (Vec::new(), Vec::new());
    loop {
        let mut moved = false;
        while let Some(bytes) = Some(client.transmit().to_vec()).filter(|b| !b.is_empty()) {
            let n = bytes.len().min(piece);
            server.handle_input(&bytes[..n], &mut at_server)?;
            client.handle_written(n);
            moved = true;
        }
        while let Some(bytes) = Some(server.transmit().to_vec()).filter(|b| !b.is_empty()) {
            let n = bytes.len().min(piece);
            client.handle_input(&bytes[..n], &mut at_client)?;
            server.handle_written(n);
            moved = true;
        }
        if !moved {
            return Ok((at_server, at_client));
        }
    }
}

#[test]
fn a_handshake_then_plaintext_both_ways_in_any_piece_size() {
    let pki = Pki::new("roundtrip");
    for piece in [1, 7, 1500, usize::MAX] {
        let (mut server, mut client) = pki.pair("localhost:7878");
        assert!(server.is_handshaking() && !server.wants_plaintext());
        assert_eq!(
            server.send(b"too early"),
            0,
            "nothing is taken before the handshake"
        );
        exchange(&mut server, &mut client, piece).unwrap();
        assert!(!server.is_handshaking() && !client.is_handshaking());
        assert_eq!(client.send(b"\x00\x00\x00\x01\x04"), 5);
        assert_eq!(server.send(b"welcome"), 7);
        let (at_server, at_client) = exchange(&mut server, &mut client, piece).unwrap();
        assert_eq!(at_server, b"\x00\x00\x00\x01\x04");
        assert_eq!(at_client, b"welcome");
        client.close();
        exchange(&mut server, &mut client, piece).unwrap();
        assert!(server.peer_has_closed());
    }
}

#[test]
fn plaintext_is_taken_one_batch_at_a_time_once_the_last_is_written() {
    let pki = Pki::new("batch");
    let (mut server, mut client) = pki.pair("localhost");
    exchange(&mut server, &mut client, usize::MAX).unwrap();
    let big = vec![b'x'; 5 * PLAINTEXT_BATCH];
    assert_eq!(server.send(&big), PLAINTEXT_BATCH);
    let sealed = server.transmit().len();
    assert!(
        sealed > PLAINTEXT_BATCH && sealed < PLAINTEXT_BATCH + 512,
        "{sealed}"
    );
    assert_eq!(server.send(&big), 0, "the last batch is not written yet");
    let records = server.transmit().to_vec();
    let mut at_client = Vec::new();
    client
        .handle_input(&records[..sealed - 1], &mut at_client)
        .unwrap();
    server.handle_written(sealed - 1);
    assert_eq!(server.acknowledge(), 0, "one byte is still waiting");
    assert_eq!(server.send(&big), 0);
    client
        .handle_input(&records[sealed - 1..], &mut at_client)
        .unwrap();
    server.handle_written(1);
    assert_eq!(
        server.send(&big),
        0,
        "the written batch is acknowledged first"
    );
    assert_eq!(
        server.acknowledge(),
        PLAINTEXT_BATCH,
        "now the core may drop it"
    );
    assert_eq!(server.acknowledge(), 0, "once");
    assert_eq!(server.send(&big), PLAINTEXT_BATCH);
    let (_, rest) = exchange(&mut server, &mut client, 4096).unwrap();
    assert_eq!(at_client.len() + rest.len(), 2 * PLAINTEXT_BATCH);
}

#[test]
fn small_runs_are_sealed_together_up_to_one_batch() {
    let pki = Pki::new("vectored");
    let (mut server, mut client) = pki.pair("localhost");
    exchange(&mut server, &mut client, usize::MAX).unwrap();
    let lines: Vec<Vec<u8>> = (0..100)
        .map(|i| format!("line {i:03}\r\n").into_bytes())
        .collect();
    let runs: Vec<IoSlice<'_>> = lines.iter().map(|l| IoSlice::new(l)).collect();
    assert_eq!(server.send_vectored(&runs), 1000);
    let sealed = server.transmit().len();
    // One record for the hundred runs: a record each would be 100 headers
    // and tags (over 2 KiB more).
    assert!(sealed < 1000 + 64, "{sealed} bytes sealed for 1000");
    let (_, at_client) = exchange(&mut server, &mut client, 1500).unwrap();
    assert_eq!(at_client, lines.concat());
    assert_eq!(server.acknowledge(), 1000);
    // Runs past one batch are cut at it.
    let big = vec![b'y'; PLAINTEXT_BATCH - 10];
    let runs = [
        IoSlice::new(&big),
        IoSlice::new(&lines[0]),
        IoSlice::new(&big),
    ];
    assert_eq!(server.send_vectored(&runs), PLAINTEXT_BATCH);
    let (_, at_client) = exchange(&mut server, &mut client, usize::MAX).unwrap();
    assert_eq!(at_client[PLAINTEXT_BATCH - 10..], lines[0][..10]);
    assert_eq!(server.acknowledge(), PLAINTEXT_BATCH);
    // A first run that fills the batch goes alone, cut at it.
    let bigger = vec![b'z'; PLAINTEXT_BATCH + 5];
    let runs = [IoSlice::new(&bigger), IoSlice::new(&lines[1])];
    assert_eq!(server.send_vectored(&runs), PLAINTEXT_BATCH);
    let (_, at_client) = exchange(&mut server, &mut client, usize::MAX).unwrap();
    assert_eq!(at_client, bigger[..PLAINTEXT_BATCH]);
    assert_eq!(server.acknowledge(), PLAINTEXT_BATCH);
    // So does a single run.
    assert_eq!(server.send_vectored(&[IoSlice::new(&lines[2])]), 10);
    let (_, at_client) = exchange(&mut server, &mut client, usize::MAX).unwrap();
    assert_eq!(at_client, lines[2]);
}

#[test]
fn garbage_instead_of_a_client_hello_is_an_error_with_an_alert() {
    let pki = Pki::new("garbage");
    let (mut server, _) = pki.pair("localhost");
    let mut plaintext = Vec::new();
    let result = server.handle_input(b"\x00\x00\x00\x08\x01\x01\x05alice", &mut plaintext);
    assert!(matches!(result, Err(TlsError::Tls(_))), "{result:?}");
    assert!(plaintext.is_empty());
    assert!(!server.transmit().is_empty(), "an alert for the peer");
}

#[test]
fn a_certificate_for_another_name_or_from_another_ca_is_refused() {
    let pki = Pki::new("names");
    let (mut server, mut client) = pki.pair("example.com:7878");
    let error = exchange(&mut server, &mut client, usize::MAX).unwrap_err();
    assert!(error.to_string().contains("certificate"), "{error}");

    let other = Pki::new("other-ca");
    let server_config = server_config(&pki.cert(), &pki.key()).unwrap();
    let mut server = TlsSession::server(server_config).unwrap();
    let mut client = TlsSession::client(
        client_config(Some(&other.cert())).unwrap(),
        server_name_of("localhost").unwrap(),
    )
    .unwrap();
    let error = exchange(&mut server, &mut client, usize::MAX).unwrap_err();
    assert!(error.to_string().contains("certificate"), "{error}");
}

#[test]
fn bad_files_are_clear_errors() {
    let pki = Pki::new("files");
    let missing = pki.dir.join("missing.pem");
    let error = server_config(&missing, &pki.key()).unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with(&missing.display().to_string()),
        "{error}"
    );
    let error = server_config(&pki.key(), &pki.key()).unwrap_err();
    assert!(error.to_string().contains("no certificate"), "{error}");
    let error = server_config(&pki.cert(), &pki.cert()).unwrap_err();
    assert!(
        error.to_string().contains("key.pem") || error.to_string().contains("cert.pem"),
        "{error}"
    );
    let error = client_config(Some(&missing)).unwrap_err();
    assert!(matches!(error, TlsError::File { .. }), "{error}");
}

#[test]
fn server_names_come_from_the_host_part() {
    for (addr, name) in [
        ("localhost:7878", "localhost"),
        ("example.com", "example.com"),
        ("127.0.0.1:1", "127.0.0.1"),
        ("[::1]:7878", "::1"),
    ] {
        assert_eq!(server_name_of(addr).unwrap().to_str(), name, "{addr}");
    }
    assert!(server_name_of("bad name:1").is_err());
}
