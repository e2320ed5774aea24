//! Compiles the BPF program and generates its typed skeleton (including the
//! Rust type of `struct zm_event` from `src/sources/ebpf/zonemon.h`) into `OUT_DIR`.
use std::env;
use std::path::PathBuf;

use libbpf_cargo::SkeletonBuilder;

const SRC: &str = "src/sources/ebpf/zonemon.bpf.c";

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR is set by cargo"))
        .join("zonemon.skel.rs");
    let multiarch = format!("-I/usr/include/{}-linux-gnu", env::consts::ARCH);
    SkeletonBuilder::new()
        .source(SRC)
        .clang_args([
            "-O2",
            "-g",
            "-Wall",
            "-mcpu=v3",
            "-Isrc/sources/ebpf",
            &multiarch,
        ])
        .build_and_generate(&out)
        .unwrap_or_else(|e| panic!("building {SRC} failed (is clang installed?): {e:#}"));
    for f in [
        SRC,
        "src/sources/ebpf/zonemon.h",
        "src/sources/ebpf/kernel.h",
    ] {
        println!("cargo:rerun-if-changed={f}");
    }
}
