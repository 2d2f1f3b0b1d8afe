"""Repository rules that discover Loom's system dependencies instead of downloading them.

Every rule looks the dependency up on the machine (an override variable first, then the usual
place), symlinks it into an external repository and writes a BUILD file for it, so one WORKSPACE
works on a laptop, in CI and on a cluster. Nothing here touches the network.

  LIBTORCH_HOME  a LibTorch tree (include/, lib/); default: the `torch` package of `python3`
  CUDA_HOME      the CUDA toolkit; default /usr/local/cuda
  MPICXX         the Open MPI C++ wrapper; default `mpicxx`
  LOOM_SHARED_DIR  the shared reference material (golden vectors); default <workspace>/../shared
"""

def _fail_missing(what, hint):
    fail("Loom: could not find %s. %s Run launch/setup.sh to install the dependencies." % (what, hint))

def _libtorch_impl(ctx):
    home = ctx.os.environ.get("LIBTORCH_HOME", "")
    if not home:
        python = ctx.which("python3")
        if not python:
            _fail_missing("python3", "LibTorch is discovered from the pinned `torch` wheel.")
        res = ctx.execute([python, "-c", "import os, torch; print(os.path.dirname(torch.__file__))"])
        if res.return_code != 0:
            _fail_missing("the `torch` Python package", "Set LIBTORCH_HOME or install the pinned wheel. (%s)" % res.stderr.strip())
        home = res.stdout.strip()
    if not ctx.path(home + "/include/torch").exists:
        _fail_missing("LibTorch headers under " + home, "")
    ctx.symlink(home + "/include", "include")
    ctx.symlink(home + "/lib", "lib")
    has_cuda = ctx.path(home + "/lib/libtorch_cuda.so").exists
    ctx.file("BUILD", """
package(default_visibility = ["//visibility:public"])

# Headers only: narrow includes keep compile times down (one <torch/torch.h> costs ~20 s).
cc_library(
    name = "headers",
    hdrs = glob(["include/**/*.h", "include/**/*.hpp", "include/**/*.cuh"], allow_empty = True),
    includes = ["include", "include/torch/csrc/api/include"],
)

# CPU libraries. Linked by absolute path with an rpath to the real directory (not through
# Bazel's _solib symlinks): the wheel's libraries find the CUDA runtime of its nvidia-* packages
# through $ORIGIN-relative rpaths, which only resolve from the real location. In the CUDA-enabled
# wheel libtorch.so also needs libtorch_cuda.so; it loads without a GPU and is never used unless
# a tensor is put on one.
cc_library(
    name = "torch",
    linkopts = ["-L%s/lib", "-Wl,-rpath,%s/lib", "-Wl,--push-state,--no-as-needed", "-ltorch", "-ltorch_cpu", "-lc10", "-Wl,--pop-state"],
    deps = [":headers"],
)

cc_library(
    name = "torch_cuda",
    linkopts = %s,
    deps = [":torch"],
)
""" % (
        home,
        home,
        '["-Wl,--push-state,--no-as-needed", "-ltorch_cuda", "-lc10_cuda", "-Wl,--pop-state"]' if has_cuda else "[]",
    ))
libtorch_repository = repository_rule(
    implementation = _libtorch_impl,
    environ = ["LIBTORCH_HOME", "PATH"],
    local = True,
)

def _cuda_impl(ctx):
    home = ctx.os.environ.get("CUDA_HOME", "/usr/local/cuda")
    found = ctx.path(home + "/bin/nvcc").exists
    if found:
        ctx.symlink(home + "/include", "include")
        ctx.symlink(home + "/lib64", "lib64")
        # A wrapper, not a symlink: nvcc finds cicc and its profile relative to its real path.
        ctx.file("bin/nvcc", "#!/bin/sh\nexec %s/bin/nvcc \"$@\"\n" % home, executable = True)
        ctx.file("BUILD", """
package(default_visibility = ["//visibility:public"])

exports_files(["bin/nvcc"])

filegroup(name = "nvcc", srcs = ["bin/nvcc"])

cc_library(
    name = "headers",
    hdrs = glob(["include/**/*.h", "include/**/*.hpp", "include/**/*.cuh", "include/**/*.inl"]),
    includes = ["include"],
)

cc_library(
    name = "cudart",
    srcs = ["lib64/libcudart.so"],
    linkopts = ["-Wl,-rpath,%s/lib64"],
    deps = [":headers"],
)

cc_library(name = "cublas", srcs = ["lib64/libcublas.so", "lib64/libcublasLt.so"], deps = [":cudart"])

cc_library(name = "cufft", srcs = ["lib64/libcufft.so"], deps = [":cudart"])

cc_library(name = "nccl", srcs = glob(["lib64/libnccl.so"]), deps = [":cudart"])
""" % home)
    else:
        ctx.file("BUILD", """
package(default_visibility = ["//visibility:public"])
# CUDA_HOME=%s has no bin/nvcc: the CUDA configuration cannot be built on this machine.
[genrule(
    name = n,
    outs = [n + ".missing"],
    cmd = "echo 'Loom: --config=cuda needs the CUDA toolkit (CUDA_HOME=%s has no bin/nvcc)' >&2; exit 1",
) for n in ["nvcc", "headers", "cudart", "cublas", "cufft", "nccl"]]
""" % (home, home))

cuda_repository = repository_rule(
    implementation = _cuda_impl,
    environ = ["CUDA_HOME"],
    local = True,
)

def _mpi_impl(ctx):
    mpicxx = ctx.os.environ.get("MPICXX", "mpicxx")
    tool = ctx.which(mpicxx) if not mpicxx.startswith("/") else ctx.path(mpicxx)
    if not tool:
        _fail_missing("mpicxx (Open MPI)", "Install openmpi-bin and libopenmpi-dev.")
    comp = ctx.execute([tool, "--showme:incdirs"])
    link = ctx.execute([tool, "--showme:libdirs"])
    libs = ctx.execute([tool, "--showme:libs"])
    if comp.return_code != 0 or link.return_code != 0 or libs.return_code != 0:
        _fail_missing("a working mpicxx", comp.stderr + link.stderr)
    incdirs = comp.stdout.strip().split(" ")
    libdirs = link.stdout.strip().split(" ")
    names = libs.stdout.strip().split(" ")
    hdr_links = []
    for i, d in enumerate(incdirs):
        ctx.symlink(d, "inc%d" % i)
        hdr_links.append("inc%d" % i)
    linkopts = ["-L" + d for d in libdirs] + ["-Wl,-rpath," + d for d in libdirs] + ["-l" + n for n in names if n != "mpi_cxx"]
    ctx.file("BUILD", """
package(default_visibility = ["//visibility:public"])

cc_library(
    name = "mpi",
    hdrs = glob([%s]),
    includes = %s,
    linkopts = %s,
)
""" % (
        ", ".join(['"%s/**/*.h"' % h for h in hdr_links]),
        str(hdr_links),
        str(linkopts),
    ))

mpi_repository = repository_rule(
    implementation = _mpi_impl,
    environ = ["MPICXX", "PATH"],
    local = True,
)

def _shared_impl(ctx):
    d = ctx.os.environ.get("LOOM_SHARED_DIR", "")
    if not d:
        d = str(ctx.path(Label("@//:WORKSPACE")).dirname) + "/../shared"
    p = ctx.path(d)
    if p.exists:
        ctx.symlink(p.realpath.get_child("golden"), "golden")
        ctx.symlink(p.realpath.get_child("data"), "data")
    prefix = ""
    ctx.file("BUILD", """
package(default_visibility = ["//visibility:public"])
# The shared reference material (golden vectors, corpus), from {d}.
filegroup(name = "golden_tokenizer", srcs = glob(["{p}golden/tokenizer/*.json"]))
filegroup(name = "golden_structured_ffn", srcs = glob(["{p}golden/structured_ffn/*.safetensors"]))
filegroup(name = "golden_s4_sgconv", srcs = glob(["{p}golden/s4_sgconv/*.safetensors"]))
filegroup(name = "corpus", srcs = glob(["{p}data/corpus/*.txt"]))
""".format(d = d, p = prefix))

shared_repository = repository_rule(
    implementation = _shared_impl,
    environ = ["LOOM_SHARED_DIR"],
    local = True,
)

def _pkg_config_impl(ctx):
    pkg_config = ctx.which("pkg-config")
    if not pkg_config:
        _fail_missing("pkg-config", "Install the pkg-config package.")
    modules = ctx.attr.modules
    libs = ctx.execute([pkg_config, "--libs"] + modules)
    cflags = ctx.execute([pkg_config, "--cflags-only-I"] + modules)
    if libs.return_code != 0 or cflags.return_code != 0:
        _fail_missing(
            "%s (pkg-config modules %s)" % (ctx.attr.what, ", ".join(modules)),
            "Install %s. (%s)" % (ctx.attr.debian_package, (libs.stderr + cflags.stderr).strip()),
        )
    includes = []
    hdr_globs = []
    for i, flag in enumerate([f for f in cflags.stdout.strip().split(" ") if f.startswith("-I")]):
        d = flag[2:]
        if d in ["/usr/include", "/usr/local/include"]:
            continue  # on the compiler's default search path
        ctx.symlink(d, "inc%d" % i)
        includes.append("inc%d" % i)
        hdr_globs.append("inc%d/**" % i)
    linkopts = [f for f in libs.stdout.strip().split(" ") if f]
    ctx.file("BUILD", """
package(default_visibility = ["//visibility:public"])

# {what}, discovered by pkg-config ({modules}).
cc_library(
    name = "lib",
    hdrs = glob({hdr_globs}, allow_empty = True),
    includes = {includes},
    linkopts = {linkopts} + ["-pthread"],
)
""".format(
        what = ctx.attr.what,
        modules = ", ".join(modules),
        hdr_globs = str(hdr_globs),
        includes = str(includes),
        linkopts = str(linkopts),
    ))

pkg_config_repository = repository_rule(
    implementation = _pkg_config_impl,
    attrs = {
        "modules": attr.string_list(mandatory = True),
        "what": attr.string(mandatory = True),
        "debian_package": attr.string(mandatory = True),
    },
    environ = ["PKG_CONFIG_PATH", "PATH"],
    local = True,
)
