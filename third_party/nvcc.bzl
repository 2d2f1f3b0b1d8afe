"""`loom_cuda_objects`: compiles .cu files with nvcc into position-independent objects.

Used only under `--config=cuda`; the objects go into a cc_library's srcs so that the CPU and CUDA
paths of a kernel share one C++ interface. Architectures are chosen for the GPUs Loom targets
(A100 = sm_80, H100 = sm_90) plus PTX for newer ones.
"""

def loom_cuda_objects(name, srcs, hdrs = [], copts = []):
    outs = []
    for src in srcs:
        out = src[:-len(".cu")] + ".cu.pic.o"
        outs.append(out)
        native.genrule(
            name = name + "_" + src.replace("/", "_").replace(".", "_"),
            srcs = [src] + hdrs + ["@local_cuda//:nvcc", "@local_cuda//:headers"],
            outs = [out],
            # Only built when a cc_library selects it under --config=cuda.
            tags = ["manual"],
            cmd = " ".join([
                "$(location @local_cuda//:nvcc)",
                "-std=c++17 -O3 -Xcompiler=-fPIC -I.",
                "-gencode arch=compute_80,code=sm_80",
                "-gencode arch=compute_90,code=sm_90",
                "-gencode arch=compute_90,code=compute_90",
            ] + copts + [
                "-c $(location %s) -o $@" % src,
            ]),
        )
    native.filegroup(name = name, srcs = outs, tags = ["manual"])
