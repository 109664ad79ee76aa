//! Decision time with 100,000 deny CIDRs (IPv4 and IPv6 mixed), and a small rule
//! set. Run with `cargo bench -p socks4-acl`; the README records the numbers.
#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main, Criterion};
use socks4_acl::{Command, IpNet, NetSet, Netmask, Policy, Subject};
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A small deterministic generator (xorshift64*), so every run measures the same set.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

fn nets(n: usize, rng: &mut Rng) -> Vec<Netmask> {
    (0..n)
        .map(|i| {
            let r = rng.next();
            let net = if i % 2 == 0 {
                IpNet::new(
                    IpAddr::V4(Ipv4Addr::from(r as u32)),
                    16 + (r >> 32) as u8 % 17,
                )
                .unwrap()
            } else {
                let addr = Ipv6Addr::from((u128::from(r) << 64) | u128::from(rng.next()));
                IpNet::new(IpAddr::V6(addr), 32 + (r >> 40) as u8 % 97).unwrap()
            };
            Netmask::new(net)
        })
        .collect()
}

fn probes(n: usize, rng: &mut Rng) -> Vec<IpAddr> {
    (0..n)
        .map(|i| {
            if i % 2 == 0 {
                IpAddr::V4(Ipv4Addr::from(rng.next() as u32))
            } else {
                IpAddr::V6(Ipv6Addr::from(
                    (u128::from(rng.next()) << 64) | u128::from(rng.next()),
                ))
            }
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let set: NetSet = nets(100_000, &mut rng).into_iter().collect();
    let addrs = probes(4096, &mut rng);
    let mut i = 0;
    c.bench_function("netset_100k_contains", |b| {
        b.iter(|| {
            i = (i + 1) & 4095;
            set.contains(black_box(addrs[i]))
        })
    });

    let mut policy: Policy = "pass from 10.0.0.0/8 to .example.com port eq 443\n\
                              block from any to any port lt 1024 command bind\n\
                              pass from 127.0.0.0/8 to any"
        .parse()
        .unwrap();
    policy.denials = set.clone();
    let mut j = 0;
    c.bench_function("policy_100k_denials_plus_3_rules", |b| {
        b.iter(|| {
            j = (j + 1) & 4095;
            let s = Subject {
                client: (addrs[j], 40000).into(),
                dest_addr: Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))),
                dest_host: Some("www.example.com"),
                dest_port: 443,
                command: Command::Connect,
                user_id: b"alice",
                cert: None,
            };
            policy.evaluate(black_box(&s))
        })
    });

    let fresh = nets(100_000, &mut rng);
    c.bench_function("netset_build_100k", |b| {
        b.iter(|| fresh.iter().copied().collect::<NetSet>())
    });
    let mut live = set.clone();
    let extra = nets(1, &mut rng)[0];
    c.bench_function("netset_100k_add_then_delete", |b| {
        b.iter(|| {
            live.insert(extra);
            live.remove(&extra)
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
