// Temporary experiment: cost of one naming lookup warm vs with caches flushed.
use std::path::Path;
use std::time::Instant;
use zonemon_core::lineage::{Forebear, Lineage};
use zonemon_core::naming::{NameResolver, ZoneFacts};
use zonemon_core::runtimes::default_chain;

fn comm(pid: u32) -> Vec<u8> {
    std::fs::read(format!("/proc/{pid}/comm"))
        .unwrap_or_default()
        .into_iter()
        .filter(|&b| b != b'\n')
        .collect()
}
fn ppid(pid: u32) -> u32 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest = &s[s.rfind(')').unwrap() + 2..];
    rest.split(' ').nth(1).unwrap().parse().unwrap()
}

fn main() {
    let init: u32 = std::env::args().nth(1).unwrap().parse().unwrap();
    let flush = std::env::args().nth(2).is_some();
    let pidns: u32 = std::fs::read_link(format!("/proc/{init}/ns/pid"))
        .unwrap()
        .to_string_lossy()
        .trim_start_matches("pid:[")
        .trim_end_matches(']')
        .parse()
        .unwrap();
    let p1 = ppid(init);
    let p2 = ppid(p1);
    let p3 = ppid(p2);
    let p4 = ppid(p3);
    let lineage = Lineage([
        Forebear::new(p1, &comm(p1)),
        Forebear::new(p2, &comm(p2)),
        Forebear::new(p3, &comm(p3)),
        Forebear::new(p4, &comm(p4)),
    ]);
    let cg = std::fs::read_to_string(format!("/proc/{init}/cgroup")).unwrap();
    let cgroup = cg
        .lines()
        .find(|l| l.starts_with("0::"))
        .map(|l| l[3..].to_string());
    let c = comm(init);
    let c = String::from_utf8_lossy(&c).to_string();
    let facts = ZoneFacts {
        init_pid: init,
        start_ns: 0,
        init_ppid: 0,
        init_gone: false,
        creator_pid: p1,
        pidns,
        level: 1,
        hostname: None,
        cgroup: cgroup.as_deref(),
        more_cgroups: None,
        comm: &c,
        lineage: Some(lineage),
    };
    let mut chain = default_chain(Path::new("/"));
    let mut junk = vec![0u8; 64 << 20];
    let mut times = Vec::new();
    for i in 0..300 {
        if flush {
            for j in (0..junk.len()).step_by(64) {
                junk[j] = junk[j].wrapping_add(i as u8);
            }
        }
        let t = Instant::now();
        let r = chain.lookup(&facts);
        times.push(t.elapsed().as_nanos() as f64 / 1000.0);
        if i == 0 {
            println!("{r:?}");
        }
    }
    println!("first {:.1} us", times[0]);
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "p50 {:.1} p90 {:.1} max {:.1} us (flush={flush}) sum junk {}",
        times[150], times[270], times[299], junk[7]
    );
}
