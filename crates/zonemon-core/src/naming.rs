//! Zone names: the seam where runtime resolvers plug in, and the fallbacks.
//!
//! A zone's name is, in order: the name its runtime gave it (a
//! [`NameResolver`]; found once and kept for the zone's life, so a shutdown
//! carries the name its boot had), else its own hostname (as it is at the
//! moment of each event), else `pidns-<inode>`.

/// Where a zone's name came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameSource {
    /// A runtime's own state; the label says which (e.g. `runc-state`).
    Runtime(&'static str),
    /// The zone's own UTS hostname.
    Hostname,
    /// Nothing better: `pidns-<inode>`.
    PidNs,
    /// Nothing better for a zone sharing the host's PID namespace: `host-pid-<init PID>`.
    HostPid,
}

impl NameSource {
    /// The word used in JSON output's `name_source`.
    pub fn as_str(self) -> &'static str {
        match self {
            NameSource::Runtime(label) => label,
            NameSource::Hostname => "hostname",
            NameSource::PidNs => "pidns",
            NameSource::HostPid => "host-pid",
        }
    }

    /// Whether the name is made from the zone's own identity: no other zone has it, so a
    /// zone of that name booting again is never a reboot.
    pub fn is_identity(self) -> bool {
        matches!(self, NameSource::PidNs | NameSource::HostPid)
    }
}

/// What a resolver may look at to name a zone (`Default`: nothing known).
#[derive(Debug, Clone, Copy, Default)]
pub struct ZoneFacts<'a> {
    /// Host PID of the zone's init.
    pub init_pid: u32,
    /// When the init started (CLOCK_BOOTTIME ns; 0 when unknown): with the
    /// PID, it tells the init from a later process given the same PID.
    pub start_ns: u64,
    /// Host PID of the process that created the init (0 when unknown).
    pub creator_pid: u32,
    /// Host PID of the init's parent, read for this lookup's observation
    /// with the init's start time checked (0: a resolver reads it itself).
    pub init_ppid: u32,
    /// Whether `/proc` was read for this lookup's observation and the init
    /// was gone: nothing of it is read again (its PID may be anyone's now).
    pub init_gone: bool,
    /// Inode number of the zone's PID namespace.
    pub pidns: u32,
    /// Depth of the zone's PID namespace: 1 directly below the host's, more when nested.
    pub level: u32,
    /// The zone's own hostname, if it has one.
    pub hostname: Option<&'a str>,
    /// The init's cgroup path, when known.
    pub cgroup: Option<&'a str>,
    /// The init's other cgroup paths (one per hierarchy), when they were
    /// read with `cgroup` for this event: `None` lets a resolver read them.
    pub more_cgroups: Option<&'a [String]>,
    /// The init's command name.
    pub comm: &'a str,
    /// Who was above the init when it was forked, for the lookup of that
    /// observation only (`None`: a resolver reads `/proc` for them).
    pub lineage: Option<crate::lineage::Lineage>,
}

/// A name found by a [`NameResolver`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedName {
    /// The name a user of the runtime knows the zone by.
    pub name: String,
    /// Which source gave it.
    pub source: NameSource,
    /// The runtime (`docker`, `runc`, …).
    pub runtime: Option<String>,
    /// The runtime's id for the zone.
    pub container_id: Option<String>,
    /// The Kubernetes names, when the zone is a container of a Kubernetes pod.
    pub k8s: Option<K8sNames>,
    /// Its image, labels, pod uid and sandbox mark, when the runtime's state has any
    /// (boxed: most zones have none).
    pub meta: Option<Box<crate::meta::ZoneMeta>>,
}

impl ResolvedName {
    /// The same name, with `meta` (none when it is empty).
    pub fn with_meta(mut self, meta: crate::meta::ZoneMeta) -> Self {
        self.meta = (!meta.is_empty()).then(|| Box::new(meta));
        self
    }
}

/// Where a Kubernetes container sits: its pod's namespace, its pod, and its own name.
///
/// A pod's sandbox (its "pause" container) is named `POD`, as the kubelet and CRI-O name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct K8sNames {
    /// The pod's namespace (`default`, `kube-system`, …).
    pub namespace: String,
    /// The pod's name.
    pub pod: String,
    /// The container's name within its pod.
    pub container: String,
}

impl K8sNames {
    /// The zone name a Kubernetes user knows: `namespace/pod/container`.
    pub fn zone_name(&self) -> String {
        format!("{}/{}/{}", self.namespace, self.pod, self.container)
    }
}

/// One lookup's answer: the zone's name, not yet, or never.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// The runtime that made the zone, and the name it gave it.
    Named(ResolvedName),
    /// No name yet, but a runtime shows signs of making the zone (its state
    /// is not written yet): ask again at the zone's next transition.
    NotYet,
    /// No runtime here made the zone: asking again would find nothing.
    Never,
}

impl Lookup {
    /// The name, when found.
    pub fn named(self) -> Option<ResolvedName> {
        match self {
            Lookup::Named(n) => Some(n),
            Lookup::NotYet | Lookup::Never => None,
        }
    }

    /// The answer of resolvers asked in turn, each only while none has named
    /// the zone: the first name; else not yet when any said so; else never.
    pub fn first_of<I: IntoIterator<Item = Lookup>>(answers: I) -> Lookup {
        let mut out = Lookup::Never;
        for answer in answers {
            match answer {
                Lookup::Named(_) => return answer,
                Lookup::NotYet => out = Lookup::NotYet,
                Lookup::Never => {}
            }
        }
        out
    }
}

/// A source of runtime names.
///
/// Contract: `lookup` is called on the event path, for each transition of a
/// zone until it answers [`Lookup::Named`] or [`Lookup::Never`], so it must
/// be cheap and must never block (no sockets, bounded reads). It answers
/// [`Lookup::NotYet`] only when a runtime is making the zone and a later
/// call may find its state; it never panics on hostile input.
pub trait NameResolver {
    /// What is known now of the name of the zone `facts` describes.
    fn lookup(&mut self, facts: &ZoneFacts<'_>) -> Lookup;
}

/// No runtime names: every zone is named by hostname or PID namespace.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoRuntimeNames;

impl NameResolver for NoRuntimeNames {
    fn lookup(&mut self, _facts: &ZoneFacts<'_>) -> Lookup {
        Lookup::Never
    }
}

/// Tries each resolver in order ([`Lookup::first_of`]).
impl NameResolver for Vec<Box<dyn NameResolver>> {
    fn lookup(&mut self, facts: &ZoneFacts<'_>) -> Lookup {
        Lookup::first_of(self.iter_mut().map(|r| r.lookup(facts)))
    }
}

/// The name of a zone no runtime claims: its own hostname, else `pidns-<inode>`, or for a
/// zone sharing the host's PID namespace (`level` 0) `host-pid-<init PID>`.
pub fn fallback_name(
    pidns: u32,
    level: u32,
    init_pid: u32,
    hostname: Option<&str>,
) -> (String, NameSource) {
    match hostname {
        Some(h) => (h.to_string(), NameSource::Hostname),
        None if level == 0 => (format!("host-pid-{init_pid}"), NameSource::HostPid),
        None => (format!("pidns-{pidns}"), NameSource::PidNs),
    }
}

/// The zone's own hostname: its nodename, when its UTS namespace is not its
/// parent's and the nodename is not simply inherited (equal to the parent's)
/// or empty.
pub fn own_hostname<'a>(
    utsns: u32,
    nodename: &'a str,
    parent_utsns: u32,
    parent_nodename: &str,
) -> Option<&'a str> {
    let own =
        utsns != 0 && utsns != parent_utsns && !nodename.is_empty() && nodename != parent_nodename;
    own.then_some(nodename)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Names PID 7; of PID 8 says not yet; never of the others.
    struct Fixed(&'static str);
    impl NameResolver for Fixed {
        fn lookup(&mut self, f: &ZoneFacts<'_>) -> Lookup {
            match f.init_pid {
                7 => Lookup::Named(ResolvedName {
                    name: self.0.into(),
                    source: NameSource::Runtime("fixed"),
                    runtime: Some("test".into()),
                    container_id: None,
                    k8s: None,
                    meta: None,
                }),
                8 => Lookup::NotYet,
                _ => Lookup::Never,
            }
        }
    }

    fn facts(init_pid: u32) -> ZoneFacts<'static> {
        ZoneFacts {
            init_pid,
            pidns: 1,
            level: 1,
            comm: "sh",
            ..ZoneFacts::default()
        }
    }

    #[test]
    fn chain_takes_first_match() {
        let mut chain: Vec<Box<dyn NameResolver>> = vec![
            Box::new(NoRuntimeNames),
            Box::new(Fixed("a")),
            Box::new(Fixed("b")),
        ];
        assert_eq!(chain.lookup(&facts(7)).named().unwrap().name, "a");
        assert_eq!(
            chain.lookup(&facts(8)),
            Lookup::NotYet,
            "one may name it later"
        );
        assert_eq!(chain.lookup(&facts(9)), Lookup::Never);
        let mut empty: Vec<Box<dyn NameResolver>> = Vec::new();
        assert_eq!(empty.lookup(&facts(7)), Lookup::Never);
    }

    #[test]
    fn k8s_zone_name() {
        let k = K8sNames {
            namespace: "default".into(),
            pod: "web-0".into(),
            container: "nginx".into(),
        };
        assert_eq!(k.zone_name(), "default/web-0/nginx");
    }

    #[test]
    fn fallbacks() {
        assert_eq!(
            fallback_name(42, 1, 7, Some("aap")),
            ("aap".into(), NameSource::Hostname)
        );
        assert_eq!(
            fallback_name(42, 1, 7, None),
            ("pidns-42".into(), NameSource::PidNs)
        );
        assert_eq!(
            fallback_name(42, 0, 7, None),
            ("host-pid-7".into(), NameSource::HostPid)
        );
        assert!(NameSource::HostPid.is_identity() && !NameSource::Hostname.is_identity());
    }

    #[test]
    fn own_hostname_needs_own_uts_and_own_name() {
        assert_eq!(own_hostname(5, "aap", 1, "host"), Some("aap"));
        assert_eq!(
            own_hostname(1, "host", 1, "host"),
            None,
            "shares the host's UTS"
        );
        assert_eq!(
            own_hostname(5, "host", 1, "host"),
            None,
            "inherited, never set"
        );
        assert_eq!(own_hostname(5, "", 1, "host"), None);
        assert_eq!(own_hostname(0, "aap", 1, "host"), None, "unknown UTS");
    }
}
