//! Compiles the BPF programs and generates their typed skeletons (including the
//! Rust type of `struct zm_event` from `src/sources/ebpf/zonemon.h`) into `OUT_DIR`.
use std::env;
use std::path::PathBuf;

use libbpf_cargo::SkeletonBuilder;

/// The BPF programs, each compiled into a skeleton of its own (`<name>.skel.rs` in `OUT_DIR`).
const SOURCES: [(&str, &str); 2] = [
    ("zonemon", "src/sources/ebpf/zonemon.bpf.c"),
    ("first_ns", "src/sources/ebpf/first_ns.bpf.c"),
];

fn main() {
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR is set by cargo"));
    let multiarch = format!("-I/usr/include/{}-linux-gnu", env::consts::ARCH);
    for (name, src) in SOURCES {
        SkeletonBuilder::new()
            .source(src)
            .clang_args([
                "-O2",
                "-g",
                "-Wall",
                "-mcpu=v3",
                "-Isrc/sources/ebpf",
                &multiarch,
            ])
            .build_and_generate(out_dir.join(format!("{name}.skel.rs")))
            .unwrap_or_else(|e| panic!("building {src} failed (is clang installed?): {e:#}"));
        println!("cargo:rerun-if-changed={src}");
    }
    for f in ["src/sources/ebpf/zonemon.h", "src/sources/ebpf/kernel.h"] {
        println!("cargo:rerun-if-changed={f}");
    }
}
