#![allow(dead_code, unused_imports)]
mod skel {
    include!(concat!(env!("OUT_DIR"), "/zonemon.skel.rs"));
}
use libbpf_rs::skel::{OpenSkel, Skel, SkelBuilder};
use std::mem::MaybeUninit;
fn main() {
    let mut obj = MaybeUninit::uninit();
    let open = skel::ZonemonSkelBuilder::default().open(&mut obj).unwrap();
    let mut sk = open.load().unwrap();
    sk.attach().unwrap();
    let mut b = libbpf_rs::RingBufferBuilder::new();
    b.add(&sk.maps.events, |d: &[u8]| {
        let mut e = skel::types::zm_event::default();
        unsafe { std::ptr::copy_nonoverlapping(d.as_ptr(), &mut e as *mut _ as *mut u8, std::mem::size_of_val(&e)) };
        let n: String = e.nodename.iter().take_while(|c| **c != 0).map(|c| *c as u8 as char).collect();
        let c: String = e.comm.iter().take_while(|c| **c != 0).map(|c| *c as u8 as char).collect();
        println!("kind={} ts={} start={} nsid={} pns={} inum={} pinum={} ppid={} lvl={} pid={} creator={} uts={} st={:#x} comm={} node={} drop={}", e.kind, e.ts_ns, e.start_ns, e.ns_id, e.parent_ns_id, e.pidns_inum, e.parent_pidns_inum, e.parent_init_pid, e.level, e.init_pid, e.creator_pid, e.utsns_inum, e.exit_status, c, n, e.dropped);
        0
    }).unwrap();
    let rb = b.build().unwrap();
    loop {
        rb.poll(std::time::Duration::from_secs(1)).unwrap();
    }
}
