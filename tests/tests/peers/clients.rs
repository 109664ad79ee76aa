//! Real third-party SOCKS clients against every adapter: curl (SOCKS4 and
//! SOCKS4a), PySocks with remote DNS on and off, OpenBSD nc with a half-close
//! (on the splice and on the copy path), and proxychains4.

use socks4_tests::e2e::*;
use std::process::Command as Process;

socks4_tests::on_every_adapter!(
    curl_socks4_and_socks4a,
    pysocks_with_remote_dns_on_and_off,
    openbsd_nc_half_close_echo,
    openbsd_nc_half_close_echo_on_the_copy_path,
    proxychains4_connect,
);

fn curl_socks4_and_socks4a(bin: &str) {
    let server = Server::start(bin, &[]);
    let web = http(2, "hello through socks4");
    let proxy = server.addr.to_string();
    for (flag, host) in [("--socks4", "127.0.0.1"), ("--socks4a", "localhost")] {
        let url = format!("http://{host}:{}/", web.port());
        let (status, out, err) = run(
            Process::new("curl").args(["-sS", "--max-time", "10", flag, &proxy, &url]),
            b"",
        );
        assert!(
            status.success(),
            "{bin} curl {flag}: {err}\n{}",
            server.log()
        );
        assert_eq!(
            String::from_utf8_lossy(&out),
            "hello through socks4",
            "{bin} curl {flag}"
        );
    }
    server.wait_says("dns_lookup"); // 4a: resolved by the server
}

fn pysocks_with_remote_dns_on_and_off(bin: &str) {
    let server = Server::start(bin, &[]);
    let echo = echo_after_eof(2);
    let script = r#"
import socks, sys
proxy_port, dest_port, rdns = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "1"
s = socks.socksocket()
s.settimeout(10)
s.set_proxy(socks.SOCKS4, "127.0.0.1", proxy_port, rdns=rdns, username="pyuser")
s.connect(("localhost", dest_port))
s.sendall(b"ping from pysocks")
s.shutdown(1)
data = b""
while True:
    chunk = s.recv(4096)
    if not chunk:
        break
    data += chunk
sys.stdout.write(data.decode())
"#;
    for rdns in ["1", "0"] {
        let (status, out, err) = run(
            Process::new("python3").args([
                "-c",
                script,
                &server.addr.port().to_string(),
                &echo.port().to_string(),
                rdns,
            ]),
            b"",
        );
        assert!(
            status.success(),
            "{bin} pysocks rdns={rdns}: {err}\n{}",
            server.log()
        );
        assert_eq!(
            String::from_utf8_lossy(&out),
            "ping from pysocks",
            "{bin} rdns={rdns}"
        );
    }
    let lines = server.wait_for_n("closed", 2, closed);
    assert_eq!(
        server.count(|l| says(l, "dns_lookup")),
        1,
        "{bin}: only rdns=1 resolves at the proxy\n{}",
        server.log()
    );
    assert!(
        lines.iter().all(|l| field(l, "user") == "pyuser"),
        "{bin}: the user id reached the server\n{}",
        server.log()
    );
}

fn openbsd_nc_half_close_echo(bin: &str) {
    nc_half_close_echo(bin, &[]);
}

/// The same with splice turned off: bytes go through user space.
fn openbsd_nc_half_close_echo_on_the_copy_path(bin: &str) {
    nc_half_close_echo(bin, &["--relay-pipes", "0"]);
}

fn nc_half_close_echo(bin: &str, args: &[&str]) {
    let server = Server::start(bin, args);
    let echo = echo_after_eof(1);
    let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let (status, out, err) = run(
        Process::new("nc.openbsd").args([
            "-N",
            "-w",
            "10",
            "-X",
            "4",
            "-x",
            &server.addr.to_string(),
            "127.0.0.1",
            &echo.port().to_string(),
        ]),
        &data,
    );
    assert!(status.success(), "{bin} nc: {err}\n{}", server.log());
    assert_eq!(
        out.len(),
        data.len(),
        "{bin}: the echo answered after the half-close"
    );
    assert!(out == data, "{bin}: echo intact");
    // Bytes counted exactly, each way.
    let line = server.wait_for("the relay's end", closed);
    assert_eq!(field(&line, "outcome"), "done", "{bin}: {line}");
    assert_eq!(
        field(&line, "bytes_up"),
        data.len().to_string(),
        "{bin}: {line}"
    );
    assert_eq!(
        field(&line, "bytes_down"),
        data.len().to_string(),
        "{bin}: {line}"
    );
}

fn proxychains4_connect(bin: &str) {
    let server = Server::start(bin, &[]);
    let web = http(1, "via proxychains");
    let dir = socks4_tests::scratch::dir("pc");
    let conf = dir.join(format!("{bin}.conf"));
    std::fs::write(
            &conf,
            format!("strict_chain\nquiet_mode\ntcp_read_time_out 10000\ntcp_connect_time_out 10000\n[ProxyList]\nsocks4 127.0.0.1 {}\n", server.addr.port()),
        )
        .unwrap();
    let url = format!("http://127.0.0.1:{}/", web.port());
    let (status, out, err) = run(
        Process::new("proxychains4").arg("-f").arg(&conf).args([
            "curl",
            "-sS",
            "--max-time",
            "10",
            &url,
        ]),
        b"",
    );
    assert!(
        status.success(),
        "{bin} proxychains4: {err}\n{}",
        server.log()
    );
    assert_eq!(String::from_utf8_lossy(&out), "via proxychains");
    server.wait_says("sock_up"); // the connection went through the proxy
}
