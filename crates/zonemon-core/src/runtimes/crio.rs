//! CRI-O (Kubernetes): named `namespace/pod/container`.
//!
//! Evidence that CRI-O made the zone: the init's cgroup (`crio-<id>.scope`
//! with systemd, `…/pod<uid>/crio-<id>` with cgroupfs), or a `conmon`
//! above it that is not Podman's (`conmon … -c <id> -n
//! k8s_<container>_<pod>_<namespace>_<uid>_<attempt> …`). The names are the
//! Kubernetes annotations CRI-O writes into the container's OCI spec,
//! `/run/containers/storage/overlay-containers/<id>/userdata/config.json`
//! (also kept under `/var/lib/containers/storage/…`):
//! `io.kubernetes.pod.namespace`, `io.kubernetes.pod.name`,
//! `io.kubernetes.container.name` (`POD` for a pod's sandbox). When that
//! file cannot be read, the kubelet-style name conmon was given is parsed.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::fsread::{FileCache, MAX_STATE_FILE};
use super::jsonpick::{annotations, SPEC_KEYS};
use super::podman::is_podman_conmon;
use super::probe::Probe;
use super::resolver::{is_hex64, resolved_k8s, RuntimeResolver};
use super::{cgroup, jsonpick, procfs};
use crate::escape::{bound, MAX_NAME_LEN};
use crate::meta::ZoneMeta;
use crate::naming::ResolvedName;

/// Where CRI-O's containers/storage keeps each container's `userdata/config.json`, below the root: run dir first.
pub const USERDATA_DIRS: [&str; 2] = [
    "run/containers/storage/overlay-containers",
    "var/lib/containers/storage/overlay-containers",
];

/// The Kubernetes names in a CRI-O container's OCI annotations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrioNames {
    /// `io.kubernetes.cri-o.ContainerID`, when present.
    pub id: Option<String>,
    /// Pod namespace.
    pub namespace: String,
    /// Pod name.
    pub pod: String,
    /// Container name (`POD` for the sandbox).
    pub container: String,
    /// Its image, its Kubernetes labels (`io.kubernetes.cri-o.Labels`), pod uid and sandbox mark.
    pub meta: ZoneMeta,
}

/// Parses a CRI-O container's `config.json`: `None` unless it carries the
/// Kubernetes annotations and is not marked as another manager's.
pub fn parse_config(bytes: &[u8]) -> Option<CrioNames> {
    let spec = jsonpick::parse(bytes, SPEC_KEYS)?;
    let ann = annotations(&spec)?;
    let get = |k: &str| ann.get(k).and_then(|v| v.as_str());
    if get("io.container.manager").is_some_and(|m| m != "cri-o") {
        return None;
    }
    let namespace = get("io.kubernetes.pod.namespace")?;
    let pod = get("io.kubernetes.pod.name")?;
    let container = match get("io.kubernetes.container.name") {
        Some(c) => c,
        None if get("io.kubernetes.cri-o.ContainerType") == Some("sandbox") => "POD",
        None => return None,
    };
    // The container's Kubernetes labels, which CRI-O keeps as one JSON string.
    let labels = get("io.kubernetes.cri-o.Labels")
        .and_then(|l| serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(l).ok());
    let mut meta = ZoneMeta::default()
        .with_image(get("io.kubernetes.cri-o.ImageName"))
        .with_labels(labels.as_ref());
    meta.pod_uid = get("io.kubernetes.pod.uid").map(|u| bound(u, MAX_NAME_LEN));
    meta.sandbox = get("io.kubernetes.cri-o.ContainerType") == Some("sandbox");
    Some(CrioNames {
        meta,
        id: get("io.kubernetes.cri-o.ContainerID").map(str::to_string),
        namespace: namespace.to_string(),
        pod: pod.to_string(),
        container: container.to_string(),
    })
}

/// Splits a kubelet-style container name,
/// `k8s_<container>_<pod>_<namespace>_<uid>_<attempt>`, into (namespace,
/// pod, container). Kubernetes names cannot hold `_`, so the split is exact.
pub fn parse_kubelet_name(name: &str) -> Option<(&str, &str, &str)> {
    let rest = name.strip_prefix("k8s_")?;
    let parts: Vec<&str> = rest.split('_').collect();
    let [container, pod, namespace, uid, attempt] = parts[..] else {
        return None;
    };
    if [container, pod, namespace, uid]
        .iter()
        .any(|s| s.is_empty())
        || attempt.is_empty()
        || !attempt.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    Some((namespace, pod, container))
}

/// Names CRI-O's containers from their Kubernetes annotations.
pub struct CriO {
    root: Arc<Path>,
    cache: FileCache<CrioNames>,
}

impl CriO {
    /// A CRI-O resolver reading below `root`.
    pub fn new(root: &Path) -> Self {
        CriO {
            root: Arc::from(root),
            cache: FileCache::new(1024),
        }
    }
}

/// CRI-O's processes that may be above its containers' inits.
const PROCESSES: &[&str] = &["conmon", "crio"];

impl RuntimeResolver for CriO {
    fn resolve_probe(&mut self, probe: &Probe<'_>) -> Option<ResolvedName> {
        let from_cgroup = probe
            .cgroups()
            .iter()
            .filter_map(|p| cgroup::prefixed_id(p, "crio-"))
            .find(|id| is_hex64(id))
            .map(str::to_string);
        let conmon = probe
            .ancestors_like(&["conmon"])
            .find(|a| procfs::program(&a.args) == "conmon" && !is_podman_conmon(a));
        let conmon_id = conmon
            .and_then(|a| procfs::option(&a.args, &["-c", "--cid"]))
            .filter(|id| is_hex64(id));
        let id = match (from_cgroup.as_deref(), conmon_id) {
            (Some(c), Some(m)) if c != m => return None,
            (Some(c), _) => c.to_string(),
            (None, Some(m)) => m.to_string(),
            (None, None) => return None,
        };
        let rel = PathBuf::from(&id).join("userdata/config.json");
        for dir in USERDATA_DIRS {
            let names = self
                .cache
                .get(&probe.path(dir), &rel, MAX_STATE_FILE, parse_config);
            if let Some(n) = names.filter(|n| n.id.as_deref().is_none_or(|i| i == id)) {
                return resolved_k8s(
                    &n.namespace,
                    &n.pod,
                    &n.container,
                    "crio-config",
                    "cri-o",
                    Some(&id),
                )
                .map(|r| r.with_meta(n.meta.clone()));
            }
        }
        let name = conmon.and_then(|a| procfs::option(&a.args, &["-n", "--name"]))?;
        let (ns, pod, c) = parse_kubelet_name(name)?;
        resolved_k8s(ns, pod, c, "crio-conmon", "cri-o", Some(&id))
    }

    fn could_claim_later(&self, probe: &Probe<'_>) -> bool {
        probe.shows_signs_of(PROCESSES, &["crio"])
    }

    fn ancestor_comms(&self) -> Option<&'static [&'static str]> {
        Some(PROCESSES)
    }
}

super::resolver::standalone_resolver!(CriO);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::naming::{NameResolver, NameSource};
    use crate::runtimes::testutil::{facts, mutated_any, TempTree, CASES};
    use proptest::prelude::*;

    const ID: &str = "438e2ba9d5970597608a7df68ae72f6085a1460f976f964ed5f369c793eaa4fe";
    const SANDBOX: &str = "500027715b8ab8cdb7871c0894b8a7d3eea199c7a8f458351952f44a6ad6cc14";
    const UID: &str = "5b5e07db-f1b9-4530-81ef-b7d04d66b83e";

    /// A CRI-O 1.2x container `config.json`, with the annotations CRI-O writes
    /// (trimmed of the process, mounts and seccomp sections zonemon does not read).
    fn container_config(id: &str) -> String {
        format!(
            r#"{{
  "ociVersion": "1.0.2-dev",
  "process": {{"user": {{"uid": 0, "gid": 0}}, "args": ["/coredns", "-conf", "/etc/coredns/Corefile"], "cwd": "/"}},
  "root": {{"path": "/var/lib/containers/storage/overlay/921af5ce8bca/merged"}},
  "hostname": "coredns-6d4b75cb6d-4mtdm",
  "annotations": {{
    "io.container.manager": "cri-o",
    "io.kubernetes.container.hash": "6a4f1a2c",
    "io.kubernetes.container.name": "coredns",
    "io.kubernetes.container.restartCount": "0",
    "io.kubernetes.cri-o.Annotations": "{{\"io.kubernetes.container.hash\":\"6a4f1a2c\",\"io.kubernetes.container.restartCount\":\"0\"}}",
    "io.kubernetes.cri-o.ContainerID": "{id}",
    "io.kubernetes.cri-o.ContainerType": "container",
    "io.kubernetes.cri-o.Created": "2026-11-26T05:42:01.123456789Z",
    "io.kubernetes.cri-o.Image": "k8s.gcr.io/coredns/coredns:v1.8.6",
    "io.kubernetes.cri-o.ImageName": "k8s.gcr.io/coredns/coredns:v1.8.6",
    "io.kubernetes.cri-o.Labels": "{{\"io.kubernetes.container.name\":\"coredns\",\"io.kubernetes.pod.name\":\"coredns-6d4b75cb6d-4mtdm\",\"io.kubernetes.pod.namespace\":\"kube-system\",\"io.kubernetes.pod.uid\":\"{UID}\"}}",
    "io.kubernetes.cri-o.LogPath": "/var/log/pods/kube-system_coredns-6d4b75cb6d-4mtdm_{UID}/coredns/0.log",
    "io.kubernetes.cri-o.Metadata": "{{\"name\":\"coredns\"}}",
    "io.kubernetes.cri-o.MountPoint": "/var/lib/containers/storage/overlay/921af5ce8bca/merged",
    "io.kubernetes.cri-o.Name": "k8s_coredns_coredns-6d4b75cb6d-4mtdm_kube-system_{UID}_0",
    "io.kubernetes.cri-o.ResolvPath": "/run/containers/storage/overlay-containers/{SANDBOX}/userdata/resolv.conf",
    "io.kubernetes.cri-o.SandboxID": "{SANDBOX}",
    "io.kubernetes.cri-o.SandboxName": "k8s_coredns-6d4b75cb6d-4mtdm_kube-system_{UID}_0",
    "io.kubernetes.cri-o.SeccompProfilePath": "RuntimeDefault",
    "io.kubernetes.cri-o.TTY": "false",
    "io.kubernetes.pod.name": "coredns-6d4b75cb6d-4mtdm",
    "io.kubernetes.pod.namespace": "kube-system",
    "io.kubernetes.pod.terminationGracePeriod": "30",
    "io.kubernetes.pod.uid": "{UID}"
  }},
  "linux": {{
    "cgroupsPath": "kubepods-burstable-pod5b5e07db_f1b9_4530_81ef_b7d04d66b83e.slice:crio:{id}",
    "namespaces": [{{"type": "pid"}}, {{"type": "network", "path": "/var/run/netns/9abac4ae"}}, {{"type": "ipc", "path": "/var/run/ipcns/9abac4ae"}}, {{"type": "uts", "path": "/var/run/utsns/9abac4ae"}}, {{"type": "mount"}}]
  }}
}}"#
        )
    }

    /// A pod sandbox's `config.json`: CRI-O marks it `sandbox` and names its container `POD`.
    fn sandbox_config() -> String {
        format!(
            r#"{{"ociVersion":"1.0.2-dev","process":{{"args":["/pause"]}},"hostname":"coredns-6d4b75cb6d-4mtdm","annotations":{{"io.container.manager":"cri-o","io.kubernetes.container.name":"POD","io.kubernetes.cri-o.ContainerID":"{SANDBOX}","io.kubernetes.cri-o.ContainerName":"k8s_POD_coredns-6d4b75cb6d-4mtdm_kube-system_{UID}_0","io.kubernetes.cri-o.ContainerType":"sandbox","io.kubernetes.cri-o.KubeName":"coredns-6d4b75cb6d-4mtdm","io.kubernetes.cri-o.Namespace":"kube-system","io.kubernetes.cri-o.SandboxID":"{SANDBOX}","io.kubernetes.pod.name":"coredns-6d4b75cb6d-4mtdm","io.kubernetes.pod.namespace":"kube-system","io.kubernetes.pod.uid":"{UID}"}},"linux":{{"cgroupsPath":"kubepods-burstable-pod5b5e07db_f1b9_4530_81ef_b7d04d66b83e.slice:crio:{SANDBOX}"}}}}"#
        )
    }

    fn conmon(id: &str, name: &str) -> Vec<String> {
        let ud = format!("/run/containers/storage/overlay-containers/{id}/userdata");
        [
            "/usr/bin/conmon",
            "-b",
            &ud,
            "-c",
            id,
            "--exit-dir",
            "/var/run/crio/exits",
            "-l",
            &format!("/var/log/pods/kube-system_coredns_{UID}/coredns/0.log"),
            "--log-level",
            "info",
            "-n",
            name,
            "--runtime-arg",
            "--root=/run/runc",
            "-p",
            &format!("{ud}/pidfile"),
            "-P",
            &format!("{ud}/conmon-pidfile"),
            "--persist-dir",
            &format!("/var/lib/containers/storage/overlay-containers/{id}/userdata"),
            "-r",
            "/usr/bin/runc",
            "--runtime-arg",
            "--systemd-cgroup",
            "--socket-dir-path",
            "/var/run/crio",
            "--syslog",
            "-u",
            id,
            "-s",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }

    fn host(t: &TempTree, id: &str, cgroup: &str) {
        t.proc(300, 200, 5000, &[300, 1], &["/coredns"], cgroup);
        let argv = conmon(
            id,
            &format!("k8s_coredns_coredns-6d4b75cb6d-4mtdm_kube-system_{UID}_0"),
        );
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        t.proc(200, 1, 4990, &[200], &argv, "0::/\n");
    }

    #[test]
    fn names_a_pod_container_from_its_annotations() {
        let t = TempTree::new("crio");
        let cg = format!(
            "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod5b5e07db_f1b9_4530_81ef_b7d04d66b83e.slice/crio-{ID}.scope"
        );
        host(&t, ID, &format!("0::{cg}\n"));
        t.write(
            &format!("{}/{ID}/userdata/config.json", USERDATA_DIRS[0]),
            container_config(ID),
        );
        let r = CriO::new(t.root())
            .lookup(&facts(300, 0, Some(&cg)))
            .named()
            .expect("named");
        assert_eq!(r.name, "kube-system/coredns-6d4b75cb6d-4mtdm/coredns");
        assert_eq!(r.source, NameSource::Runtime("crio-config"));
        assert_eq!(r.runtime.as_deref(), Some("cri-o"));
        assert_eq!(r.container_id.as_deref(), Some(ID));
        let k = r.k8s.unwrap();
        assert_eq!(
            (k.namespace.as_str(), k.pod.as_str(), k.container.as_str()),
            ("kube-system", "coredns-6d4b75cb6d-4mtdm", "coredns")
        );
    }

    #[test]
    fn names_the_sandbox_pod_and_uses_the_persistent_copy() {
        let t = TempTree::new("crio-sandbox");
        let cg = format!("/kubepods/burstable/pod{UID}/crio-{SANDBOX}");
        host(&t, SANDBOX, "0::/\n");
        t.write(
            &format!("{}/{SANDBOX}/userdata/config.json", USERDATA_DIRS[1]),
            sandbox_config(),
        );
        let r = CriO::new(t.root())
            .lookup(&facts(300, 0, Some(&cg)))
            .named()
            .unwrap();
        assert_eq!(r.name, "kube-system/coredns-6d4b75cb6d-4mtdm/POD");
    }

    #[test]
    fn falls_back_to_conmons_kubelet_name() {
        let t = TempTree::new("crio-conmon");
        host(&t, ID, "0::/\n");
        let r = CriO::new(t.root())
            .lookup(&facts(300, 0, None))
            .named()
            .unwrap();
        assert_eq!(r.name, "kube-system/coredns-6d4b75cb6d-4mtdm/coredns");
        assert_eq!(r.source, NameSource::Runtime("crio-conmon"));
    }

    #[test]
    fn refuses_foreign_or_mismatched_configs() {
        let t = TempTree::new("crio-refuse");
        let cg = format!("/kubepods/pod{UID}/crio-{ID}");
        t.write(
            &format!("{}/{ID}/userdata/config.json", USERDATA_DIRS[0]),
            container_config(SANDBOX),
        );
        assert!(
            CriO::new(t.root())
                .lookup(&facts(300, 0, Some(&cg)))
                .named()
                .is_none(),
            "another id"
        );
        let podman = container_config(ID).replace(
            r#""io.container.manager": "cri-o""#,
            r#""io.container.manager": "libpod""#,
        );
        t.write(
            &format!("{}/{ID}/userdata/config.json", USERDATA_DIRS[0]),
            podman,
        );
        assert!(
            CriO::new(t.root())
                .lookup(&facts(300, 0, Some(&cg)))
                .named()
                .is_none(),
            "Podman's"
        );
        let conmon_cg = format!("/kubepods/pod{UID}/crio-conmon-{ID}.scope");
        assert!(CriO::new(t.root())
            .lookup(&facts(300, 0, Some(&conmon_cg)))
            .named()
            .is_none());
    }

    #[test]
    fn kubelet_names() {
        assert_eq!(
            parse_kubelet_name("k8s_POD_web-0_default_6f1c-aa_3"),
            Some(("default", "web-0", "POD"))
        );
        assert_eq!(parse_kubelet_name("k8s_a_b_c_d"), None);
        assert_eq!(parse_kubelet_name("k8s_a_b_c_d_e_1"), None);
        assert_eq!(parse_kubelet_name("k8s_a_b_c_d_x"), None);
        assert_eq!(parse_kubelet_name("k8s__b_c_d_1"), None);
        assert_eq!(parse_kubelet_name("aap"), None);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(CASES))]
        #[test]
        fn parsers_survive_mutations(
            input in mutated_any(&[container_config(ID), sandbox_config()])
        ) {
            if let Some(n) = parse_config(&input) {
                prop_assert!(n.namespace.len() + n.pod.len() + n.container.len() <= input.len() + 3);
            }
            let s = String::from_utf8_lossy(&input[..input.len().min(200)]).into_owned();
            let _ = parse_kubelet_name(&s);
        }
    }
}
