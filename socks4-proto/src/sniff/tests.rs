use super::*;

const MAX: usize = 16 * 1024;

/// A ClientHello handshake message with these extensions (type, data).
fn hello(extensions: &[(u16, Vec<u8>)]) -> Vec<u8> {
    let mut body = vec![3, 3];
    body.extend_from_slice(&[7; 32]);
    body.push(32);
    body.extend_from_slice(&[9; 32]);
    body.extend_from_slice(&[0, 4, 0x13, 0x01, 0x13, 0x02]);
    body.extend_from_slice(&[1, 0]);
    let mut exts = Vec::new();
    for (kind, data) in extensions {
        exts.extend_from_slice(&kind.to_be_bytes());
        exts.extend_from_slice(&(data.len() as u16).to_be_bytes());
        exts.extend_from_slice(data);
    }
    body.extend_from_slice(&(exts.len() as u16).to_be_bytes());
    body.extend_from_slice(&exts);
    let mut hs = vec![1];
    hs.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    hs.extend_from_slice(&body);
    hs
}

fn sni_ext(name: &[u8]) -> (u16, Vec<u8>) {
    let mut entry = vec![0];
    entry.extend_from_slice(&(name.len() as u16).to_be_bytes());
    entry.extend_from_slice(name);
    let mut data = (entry.len() as u16).to_be_bytes().to_vec();
    data.extend_from_slice(&entry);
    (0, data)
}

/// Handshake bytes in TLS records of at most `size` bytes each.
fn records(hs: &[u8], size: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for chunk in hs.chunks(size) {
        out.extend_from_slice(&[0x16, 3, 1]);
        out.extend_from_slice(&(chunk.len() as u16).to_be_bytes());
        out.extend_from_slice(chunk);
    }
    out
}

fn name(n: &str, kind: NameKind) -> Sniffed {
    Sniffed::Name(n.into(), kind)
}

#[test]
fn sni_in_one_record() {
    let hs = hello(&[(10, vec![0, 2, 0, 29]), sni_ext(b"Name.Test.")]);
    let bytes = records(&hs, MAX_RECORD);
    assert_eq!(sniff(&bytes, MAX), name("name.test", NameKind::Sni));
    // Every prefix asks for more.
    for n in 0..bytes.len() - 1 {
        let found = sniff(&bytes[..n], MAX);
        assert!(
            found == Sniffed::NeedMore || found == name("name.test", NameKind::Sni),
            "{n}: {found:?}"
        );
    }
}

#[test]
fn sni_across_records() {
    // A large key share first (as post-quantum ones are), the SNI after it.
    let hs = hello(&[(51, vec![5; 1200]), sni_ext(b"far.name.test")]);
    for size in [1, 7, 100, 512] {
        let bytes = records(&hs, size);
        assert_eq!(
            sniff(&bytes, MAX),
            name("far.name.test", NameKind::Sni),
            "{size}"
        );
    }
    // Past the bound: not found.
    let bytes = records(&hs, 100);
    assert_eq!(sniff(&bytes, 600), Sniffed::NotFound);
}

#[test]
fn tls_without_a_name() {
    let bytes = records(&hello(&[(10, vec![0, 2, 0, 29])]), MAX_RECORD);
    assert_eq!(sniff(&bytes, MAX), Sniffed::NotFound);
    // An IP literal is no name.
    let bytes = records(&hello(&[sni_ext(b"10.0.0.1")]), MAX_RECORD);
    assert_eq!(sniff(&bytes, MAX), Sniffed::NotFound);
    let bytes = records(&hello(&[sni_ext(b"bad name")]), MAX_RECORD);
    assert_eq!(sniff(&bytes, MAX), Sniffed::NotFound);
    // Not a handshake record, not a ClientHello.
    assert_eq!(sniff(&[0x16, 3, 1, 0, 0], MAX), Sniffed::NotFound);
    assert_eq!(sniff(&[0x16, 2, 0, 0, 5], MAX), Sniffed::NotFound);
    assert_eq!(
        sniff(&[0x16, 3, 3, 0, 4, 2, 0, 0, 0], MAX),
        Sniffed::NotFound
    );
    // A record that is not a handshake's, mid-hello.
    let mut bytes = records(&hello(&[sni_ext(b"x.test")])[..20], MAX_RECORD);
    bytes.extend_from_slice(&[0x17, 3, 3, 0, 1, 0]);
    assert_eq!(sniff(&bytes, MAX), Sniffed::NotFound);
}

#[test]
fn http_host() {
    let get = b"GET /index.html HTTP/1.1\r\nUser-Agent: curl\r\nHOST: www.Name.test:8080\r\n\r\n";
    assert_eq!(sniff(get, MAX), name("www.name.test", NameKind::Host));
    for n in 0..get.len() {
        let found = sniff(&get[..n], MAX);
        assert!(
            found == Sniffed::NeedMore || found == name("www.name.test", NameKind::Host),
            "{n}: {found:?}"
        );
    }
    // LF alone ends lines too; HTTP/1.0.
    let get = b"POST http://x/ HTTP/1.0\nHost:name.test\n\n";
    assert_eq!(sniff(get, MAX), name("name.test", NameKind::Host));
}

#[test]
fn http_without_a_name() {
    for bytes in [
        &b"GET / HTTP/1.0\r\n\r\n"[..],
        b"GET / HTTP/2.0\r\nHost: x.test\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
        b"GET / HTTP/1.1\r\nno colon\r\nHost: x.test\r\n\r\n",
        b"SSH-2.0-OpenSSH_9.6\r\n",
        b"EHLO there\r\n",
        b"\x04\x01\x00\x50\x7f\x00\x00\x01\x00",
        b"get / HTTP/1.1\r\n",
    ] {
        assert_eq!(sniff(bytes, MAX), Sniffed::NotFound, "{bytes:?}");
    }
    // A request line without end, past the bound.
    let long = [b"GET /".as_slice(), &[b'a'; 200]].concat();
    assert_eq!(sniff(&long, 100), Sniffed::NotFound);
    assert_eq!(sniff(&long, MAX), Sniffed::NeedMore);
}

#[test]
fn the_sniffer_keeps_every_byte() {
    let get = b"GET / HTTP/1.1\r\nHost: name.test\r\n\r\nbody";
    let mut s = Sniffer::new(MAX);
    assert_eq!(s.room(), MAX);
    assert_eq!(s.feed(&get[..10]), &Sniffed::NeedMore);
    assert_eq!(s.feed(&get[10..]), &name("name.test", NameKind::Host));
    assert_eq!(s.room(), 0);
    assert_eq!(s.feed(b"more"), &name("name.test", NameKind::Host));
    let (bytes, verdict) = s.into_parts();
    assert_eq!(bytes, [&get[..], b"more"].concat());
    assert_eq!(verdict, name("name.test", NameKind::Host));
    // Time up.
    let mut s = Sniffer::new(MAX);
    s.feed(b"GET / HT");
    assert_eq!(s.finish(), &Sniffed::NotFound);
    assert_eq!(s.bytes(), b"GET / HT");
    // Nothing to look at.
    assert_eq!(Sniffer::new(0).verdict(), &Sniffed::NotFound);
}
