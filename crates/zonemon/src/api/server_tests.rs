//! The server against an in-memory journal over a real Unix socket: routes,
//! errors, the seam between replay and follow, back-pressure. No root, but
//! for the test of the server thread's realtime priority.

use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::server::Limits;
use super::testutil::{MemStore, TestServer};

const T0: i128 = 1_764_648_000_000_000_000;
const SEC: i128 = 1_000_000_000;

fn server(store: &Arc<MemStore>) -> TestServer {
    TestServer::start(Arc::clone(store), Limits::default())
}

fn seqs(lines: &[Value]) -> Vec<u64> {
    lines.iter().map(|l| l["seq"].as_u64().unwrap()).collect()
}

#[test]
fn version_zones_and_one_zone() {
    let store = MemStore::new();
    store.add("booted", 1, "aap", T0);
    store.add("booted", 2, "noot", T0 + SEC);
    store.add("shutdown", 1, "aap", T0 + 2 * SEC);
    store.add("ready", 3, "a b/c", T0 + 3 * SEC);
    let s = server(&store);
    let v = s.get("/v1/version");
    assert_eq!((v.status, v.json()["api"].clone()), (200, json!("v1")));
    let zones = s.get("/v1/zones");
    assert_eq!(zones.status, 200);
    assert!(zones.head.contains("application/json"), "{}", zones.head);
    let names: Vec<_> = zones
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|z| z["name"].clone())
        .collect();
    assert_eq!(names, [json!("noot"), json!("a b/c")]);
    assert!(zones.json()[0].get("root").is_some() && zones.json()[0]["seq"] == 2);
    assert_eq!(s.get("/v1/zones/2").json()["name"], "noot");
    assert_eq!(s.get("/v1/zones/noot").json()["zone_id"], 2);
    assert_eq!(s.get("/v1/zones/a%20b%2Fc").json()["zone_id"], 3);
    let gone = s.get("/v1/zones/aap");
    assert_eq!(gone.status, 404);
    assert!(gone.json()["error"].as_str().unwrap().contains("aap"));
}

#[test]
fn replay_filters_and_time_windows() {
    let store = MemStore::new();
    for i in 0..10u64 {
        let name = if i % 2 == 0 { "web-1" } else { "db" };
        store.add(
            if i % 3 == 0 { "booted" } else { "shutdown" },
            i,
            name,
            T0 + i as i128 * SEC,
        );
    }
    let s = server(&store);
    let all = s.get("/v1/events?after=0&follow=false");
    assert!(all.head.contains("application/x-ndjson"), "{}", all.head);
    assert_eq!(seqs(&all.lines()), (1..=10).collect::<Vec<_>>());
    assert_eq!(
        seqs(&s.get("/v1/events?after=7&follow=false").lines()),
        [8, 9, 10]
    );
    let web = s.get("/v1/events?after=0&follow=false&filter=name%3Dweb-*&filter=event%3Dbooted");
    assert_eq!(seqs(&web.lines()), [1, 7]);
    let since = format!(
        "/v1/events?since={}&until={}",
        (T0 + 3 * SEC) / SEC,
        (T0 + 5 * SEC) / SEC
    );
    assert_eq!(seqs(&s.get(&since).lines()), [4, 5, 6]);
    let since_rfc = format!(
        "/v1/events?since={}&follow=false",
        zonemon_core::timefmt::rfc3339_nanos(T0 + 8 * SEC)
    );
    assert_eq!(seqs(&s.get(&since_rfc).lines()), [9, 10]);
}

#[test]
fn replay_then_follow_has_no_gap_and_no_duplicate_under_churn() {
    let store = MemStore::new();
    for i in 0..500 {
        store.add("booted", i, "z", T0 + i as i128);
    }
    let s = server(&store);
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (store, stop) = (Arc::clone(&store), Arc::clone(&stop));
        thread::spawn(move || {
            let mut i = 500u64;
            while !stop.load(Ordering::Relaxed) && i < 20_000 {
                store.add("booted", i, "z", T0 + i as i128);
                i += 1;
                if i % 64 == 0 {
                    thread::yield_now();
                }
            }
        })
    };
    // Connects while the writer commits: the seam falls somewhere inside the churn.
    let mut lines = s.open("/v1/events?after=0");
    let mut expected = 1;
    while expected <= 5_000 {
        let rec = lines.next().expect("the stream goes on");
        assert_eq!(rec["seq"], expected, "every record once, in order");
        expected += 1;
    }
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    let last = store.last_seq_now();
    while expected <= last {
        assert_eq!(lines.next().unwrap()["seq"], expected);
        expected += 1;
    }
    // Nothing more is committed: nothing more comes (the stream waits).
    lines
        .socket()
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    assert!(lines.next().is_none());
}

#[test]
fn initial_lists_running_zones_then_follows_without_repeating_them() {
    let store = MemStore::new();
    store.add("booted", 1, "aap", T0);
    store.add("booted", 2, "noot", T0);
    store.add("shutdown", 2, "noot", T0);
    let s = server(&store);
    let mut lines = s.open("/v1/events?initial=true");
    let first = lines.next().unwrap();
    assert_eq!(
        (
            first["event"].clone(),
            first["initial"].clone(),
            first["zone_id"].clone()
        ),
        (json!("running"), json!(true), json!(1))
    );
    store.add("shutdown", 1, "aap", T0 + SEC);
    let next = lines.next().unwrap();
    assert_eq!(
        (next["event"].clone(), next["seq"].clone()),
        (json!("shutdown"), json!(4))
    );
}

#[test]
fn wait_counts_the_past_since_and_follows_into_the_future() {
    let store = MemStore::new();
    store.add("shutdown", 1, "early", T0 - 5 * SEC); // before `since`: does not count
    store.add("booted", 2, "early", T0);
    let mut obj = json!({"event": "shutdown", "name": "early", "zone_id": 2, "exit_code": 3});
    obj["time"] = json!("x");
    store.add_object(obj.as_object().unwrap().clone(), T0 + SEC);
    let s = server(&store);
    let done = s.get(&format!("/v1/wait?name=early&since={}", T0 / SEC));
    assert_eq!(done.status, 200, "{}", done.body);
    assert_eq!(
        (done.json()["seq"].clone(), done.json()["exit_code"].clone()),
        (json!(3), json!(3))
    );
    assert_eq!(
        s.get(&format!("/v1/wait?zone_id=2&for=booted&since={}", T0 / SEC))
            .json()["seq"],
        2
    );
    // A zone that does not exist yet.
    let waiter = {
        let path = s.path.clone();
        thread::spawn(move || {
            let mut c = std::os::unix::net::UnixStream::connect(path).unwrap();
            let target = format!(
                "/v1/wait?name=later&for=down&timeout=20s&since={}",
                T0 / SEC
            );
            write!(c, "GET {target} HTTP/1.1\r\nHost: z\r\n\r\n").unwrap();
            let mut out = String::new();
            c.read_to_string(&mut out).unwrap();
            out
        })
    };
    thread::sleep(Duration::from_millis(200));
    store.add("booted", 5, "later", T0 + 10 * SEC);
    store.add("down", 6, "other", T0 + 10 * SEC);
    store.add("down", 5, "later", T0 + 11 * SEC);
    let out = waiter.join().unwrap();
    assert!(
        out.starts_with("HTTP/1.1 200") && out.contains("\"seq\":6"),
        "{out}"
    );
    let timeout = s.get("/v1/wait?name=never&timeout=200ms");
    assert_eq!(timeout.status, 408);
    assert!(timeout.json()["error"]
        .as_str()
        .unwrap()
        .starts_with("timeout"));
}

#[test]
fn malformed_requests_get_a_4xx_with_a_json_error() {
    let store = MemStore::new();
    let s = server(&store);
    for (target, status) in [
        ("/v1/events?colour=red", 400),
        ("/v1/events?after=x", 400),
        ("/v1/events?filter=size%3Dbig", 400),
        ("/v1/events?since=yesterday", 400),
        ("/v1/wait", 400),
        ("/v1/wait?name=a&for=exploded", 400),
        ("/v1/zones?x=1", 400),
        ("/v1/nothing", 404),
        ("/v2/events", 404),
        ("/v1/zones/%ff", 400),
    ] {
        let a = s.get(target);
        assert_eq!(a.status, status, "{target}: {a:?}");
        assert!(
            a.json()["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{target}"
        );
    }
    let post = s.raw(b"POST /v1/zones HTTP/1.1\r\nHost: z\r\nContent-Length: 2\r\n\r\n{}");
    assert_eq!(post.status, 405);
    let body = s.raw(b"GET /v1/zones HTTP/1.1\r\nHost: z\r\nContent-Length: 5\r\n\r\nhello");
    assert_eq!(body.status, 413);
    assert!(body.json()["error"].is_string());
    let long = s.get(&format!("/v1/events?filter=name%3D{}", "a".repeat(9000)));
    assert_eq!(long.status, 414);
    // What the HTTP parser itself refuses gets hyper's bare 4xx: still no crash.
    let huge = format!(
        "GET /v1/zones HTTP/1.1\r\nHost: z\r\nX-Big: {}\r\n\r\n",
        "b".repeat(40_000)
    );
    assert_eq!(s.raw(huge.as_bytes()).status, 431);
    assert_eq!(s.raw(b"\x00\x01garbage\r\n\r\n").status, 400);
    // Still serving.
    assert_eq!(s.get("/v1/version").status, 200);
}

#[test]
fn a_slow_request_is_cut_and_does_not_hold_up_others() {
    let store = MemStore::new();
    let limits = Limits {
        header_timeout: Duration::from_millis(300),
        ..Limits::default()
    };
    let s = TestServer::start(Arc::clone(&store), limits);
    let mut slow = s.connect();
    slow.write_all(b"GET /v1/zo").unwrap();
    assert_eq!(
        s.get("/v1/version").status,
        200,
        "others are served meanwhile"
    );
    let started = Instant::now();
    let mut rest = Vec::new();
    let _ = slow.read_to_end(&mut rest);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "cut by the header timeout"
    );
    let mut silent = s.connect();
    let _ = silent.read_to_end(&mut rest); // a client that never says anything is cut as well
}

#[test]
fn a_follower_too_far_behind_is_told_where_to_resume_and_cut() {
    let store = MemStore::new();
    let limits = Limits {
        max_lag: 2_000,
        ..Limits::default()
    };
    let s = TestServer::start(Arc::clone(&store), limits);
    let mut lines = s.open("/v1/events");
    // The client reads nothing while far more than the socket holds is committed.
    for i in 0..30_000 {
        store.add("booted", i, "churn", T0 + i as i128);
    }
    // Meanwhile another client is served at once.
    assert_eq!(s.get("/v1/zones/1").status, 200);
    let mut last_seq = 0;
    let notice = loop {
        let rec = lines.next().expect("a final notice before the end");
        if rec["event"] == "behind" {
            break rec;
        }
        let seq = rec["seq"].as_u64().unwrap();
        assert_eq!(seq, last_seq + 1);
        last_seq = seq;
    };
    assert_eq!(notice["resume_after"], last_seq, "{notice}");
    assert!(last_seq < 30_000);
    assert!(lines.next().is_none(), "disconnected after the notice");
    // Resuming from there gives the rest, exactly.
    let rest = s.get(&format!("/v1/events?after={last_seq}&follow=false"));
    assert_eq!(rest.lines().first().unwrap()["seq"], last_seq + 1);
    assert_eq!(rest.lines().last().unwrap()["seq"], 30_000);
}

/// A follower reading each record as it comes wakes the server's thread
/// once per record (for the commit), not twice: its reads free room in the
/// socket, which must not count as an event for the server (with a socket
/// registered for writing too, each of them did; see `conn_io`).
#[test]
fn a_follower_reading_along_does_not_wake_the_server() {
    let store = MemStore::new();
    let s = server(&store);
    let mut lines = s.open("/v1/events");
    let tid = s.server.as_ref().unwrap().tid();
    let switches =
        |tid| zonemon_testkit::voluntary_switches(std::process::id() as i32, tid).unwrap();
    let n = 300;
    // The first record through (the connection's own wakeups are done with).
    store.add("booted", 0, "warm", T0);
    assert_eq!(lines.next().unwrap()["seq"], 1);
    thread::sleep(Duration::from_millis(50));
    let before = switches(tid);
    for i in 1..=n {
        store.add("booted", i, "one-by-one", T0 + i as i128);
        // The record is sent and the server asleep again when the client reads it.
        thread::sleep(Duration::from_millis(3));
        assert_eq!(lines.next().unwrap()["seq"], i + 1);
    }
    let wakeups = switches(tid) - before;
    // The defect woke it twice per record (2n and more); a loaded machine adds a few
    // (473 for 300 once, with a compiler on both CPUs): the bound sits between the two.
    assert!(
        wakeups < n * 9 / 5,
        "{wakeups} wakeups of the server's thread for {n} records, one at a time"
    );
}

#[test]
fn a_client_that_stops_reading_is_disconnected() {
    let store = MemStore::new();
    let limits = Limits {
        stall_timeout: Duration::from_millis(300),
        ..Limits::default()
    };
    let s = TestServer::start(Arc::clone(&store), limits);
    let lines = s.open("/v1/events");
    for i in 0..30_000 {
        store.add("booted", i, "churn", T0 + i as i128);
    }
    thread::sleep(Duration::from_millis(1_500));
    // Whatever was in flight can still be read, then the stream ends.
    let mut sock = lines.socket().try_clone().unwrap();
    let mut sink = Vec::new();
    let n = sock.read_to_end(&mut sink).unwrap();
    assert!(
        n < 30_000 * 100,
        "the stream was cut, not completed ({n} bytes)"
    );
}

#[test]
fn clients_beyond_the_limit_get_a_503() {
    let store = MemStore::new();
    let limits = Limits {
        max_connections: 2,
        ..Limits::default()
    };
    let s = TestServer::start(Arc::clone(&store), limits);
    let _a = s.open("/v1/events");
    let _b = s.open("/v1/events");
    let third = s.get("/v1/version");
    assert_eq!(third.status, 503);
    assert!(third.json()["error"].as_str().unwrap().contains("too many"));
    drop((_a, _b));
}

#[test]
fn stopping_removes_the_socket_and_ends_followers() {
    let store = MemStore::new();
    let mut s = server(&store);
    let mut lines = s.open("/v1/events");
    let path = s.path.clone();
    s.server.take().unwrap().stop().unwrap();
    assert!(!path.exists());
    assert!(lines.next().is_none());
}

#[test]
fn a_realtime_api_thread_moved_by_its_budget_is_realtime_again_when_it_sleeps() {
    use super::server::{serve, ApiConfig};
    use crate::priority::{Priority, RT_HARD_LIMIT};
    if !zonemon_testkit::require_root_for(
        "a_realtime_api_thread_moved_by_its_budget_is_realtime_again_when_it_sleeps",
        "it sets SCHED_FIFO",
    ) {
        return;
    }
    fn policy() -> libc::c_int {
        // SAFETY: a plain syscall on the calling thread.
        unsafe { libc::sched_getscheduler(0) }
    }
    let dir = tempfile::tempdir().unwrap();
    let mut config = ApiConfig::new(&dir.path().join("api.sock"));
    config.group = None;
    config.priority = Priority::Realtime;
    let (tx, rx) = std::sync::mpsc::channel();
    // A task beside the server runs on its thread: it spins (a long replay)
    // until the budget moves the thread, then sleeps, as the thread does between bursts.
    let task: super::Beside = Box::new(move || {
        Box::pin(async move {
            let at_start = policy();
            let start = Instant::now();
            while policy() == libc::SCHED_FIFO && start.elapsed() < RT_HARD_LIMIT {
                std::hint::spin_loop();
            }
            let moved = policy();
            tokio::time::sleep(Duration::from_millis(20)).await;
            let _ = tx.send((at_start, moved, policy()));
        })
    });
    let server = serve(MemStore::new(), config, Some(task)).unwrap();
    let policies = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    server.stop().unwrap();
    assert_eq!(
        policies,
        (libc::SCHED_FIFO, libc::SCHED_OTHER, libc::SCHED_FIFO),
        "realtime, moved by the budget, realtime again after sleeping"
    );
}
