"""`loom_cc_proto`: compiles a .proto with the system protoc into a cc_library.

Bazel 4's native proto rules would download protobuf's sources; Debian ships protoc and
libprotobuf, so a genrule is all that is needed. Generated headers are included as
"<package>/<name>.pb.h".
"""

load("@rules_cc//cc:defs.bzl", "cc_library")

def loom_cc_proto(name, src, deps = [], visibility = None):
    base = src[:-len(".proto")]
    native.genrule(
        name = name + "_gen",
        srcs = [src] + [d + "_srcs" for d in deps],
        outs = [base + ".pb.h", base + ".pb.cc"],
        cmd = "protoc --proto_path=. --cpp_out=$(GENDIR) $(location %s)" % src,
    )
    native.filegroup(name = name + "_srcs", srcs = [src], visibility = visibility)
    cc_library(
        name = name,
        srcs = [base + ".pb.cc"],
        hdrs = [base + ".pb.h"],
        deps = deps + ["//third_party:protobuf"],
        visibility = visibility,
    )
