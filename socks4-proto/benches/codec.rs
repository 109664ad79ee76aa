//! Request decode and encode, per operation. Run with `cargo bench -p socks4-proto`;
//! the README's performance section records the results.
#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main, Criterion};
use socks4_proto::{Command, Dest, Limits, Reply, ReplyCode, Request};
use std::hint::black_box;

fn bench(c: &mut Criterion) {
    let limits = Limits::default();
    let socks4 = b"\x04\x01\x00\x50\x7f\x00\x00\x01fred\0".to_vec();
    let socks4a = b"\x04\x01\x01\xbb\x00\x00\x00\x01fred\0www.example.com\0".to_vec();
    let mut long = b"\x04\x01\x00\x50\x00\x00\x00\x01".to_vec();
    long.extend(std::iter::repeat_n(b'u', 255));
    long.push(0);
    long.extend(std::iter::repeat_n(b'h', 255));
    long.push(0);

    let mut g = c.benchmark_group("request_decode");
    for (name, bytes) in [
        ("socks4", &socks4),
        ("socks4a", &socks4a),
        ("max_len", &long),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| Request::decode(black_box(bytes), &limits))
        });
    }
    g.finish();

    let req = Request {
        command: Command::Connect,
        dest: Dest::Domain("www.example.com", 443),
        user_id: b"fred",
    };
    let mut buf = Vec::with_capacity(64);
    c.bench_function("request_encode/socks4a_reused_vec", |b| {
        b.iter(|| {
            buf.clear();
            black_box(&req).encode(&mut buf);
            black_box(buf.len())
        })
    });
    let reply = Reply::with_code(ReplyCode::Granted);
    c.bench_function("reply_encode", |b| b.iter(|| black_box(&reply).to_bytes()));
}

criterion_group!(benches, bench);
criterion_main!(benches);
