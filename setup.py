"""Build the fastconv extension: one Cython module over the C kernels in src_c/.

Files under src_c/kernels/avx2/ get -mavx2 -mfma, files under src_c/kernels/avx512/ get
the AVX-512 F/VL/DQ/BW flags (plus AVX2/FMA), and nothing else gets either, so no AVX2 or
AVX-512 instruction can run before the CPUID/XGETBV check at import. OpenMP is probed by
compiling a tiny program; without it the extension still builds, single-threaded.
Set FASTCONV_NO_OPENMP=1 to skip OpenMP on purpose.
"""
import os
import sys
import tempfile
from glob import glob

import numpy
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

AVX2_FLAGS = ["-mavx2", "-mfma"]
AVX512_FLAGS = AVX2_FLAGS + ["-mavx512f", "-mavx512vl", "-mavx512dq", "-mavx512bw"]
BASE_FLAGS = ["-O3", "-std=gnu99", "-fno-strict-aliasing", "-Wall", "-Wno-unused-function"]


def c_sources():
    files = glob("src_c/*.c") + glob("src_c/ref/*.c") + glob("src_c/kernels/*/*.c")
    return sorted(f.replace(os.sep, "/") for f in files)


def compiler_accepts(compiler, flags, source, link=True):
    """Compile (and link) a probe program with `flags`; True if that works."""
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "probe.c")
        with open(src, "w") as f:
            f.write(source)
        try:
            objs = compiler.compile([src], output_dir=tmp, extra_postargs=flags)
            if link:
                compiler.link_executable(objs, os.path.join(tmp, "probe"), extra_postargs=flags)
        except Exception:
            return False
    return True


OPENMP_PROBE = "#include <omp.h>\nint main(void){int n=0;\n#pragma omp parallel reduction(+:n)\nn++;\nreturn n>0?0:1;}\n"


class BuildExt(build_ext):
    def build_extensions(self):
        cc = self.compiler
        use_omp = os.environ.get("FASTCONV_NO_OPENMP", "") not in ("1", "true", "yes")
        if use_omp and not compiler_accepts(cc, ["-fopenmp"], OPENMP_PROBE):
            print("fastconv: the compiler does not support OpenMP; building single-threaded "
                  "(fc.cpu_info()['openmp'] will be False)", file=sys.stderr)
            use_omp = False
        for ext in self.extensions:
            ext.extra_compile_args = BASE_FLAGS + (["-fopenmp"] if use_omp else [])
            ext.extra_link_args = ["-fopenmp"] if use_omp else []
        original = cc._compile

        def compile_one(obj, src, ext, cc_args, extra_postargs, pp_opts):
            path = src.replace(os.sep, "/")
            if "/kernels/avx2/" in path:
                extra_postargs = list(extra_postargs) + AVX2_FLAGS
            elif "/kernels/avx512/" in path:
                extra_postargs = list(extra_postargs) + AVX512_FLAGS
            return original(obj, src, ext, cc_args, extra_postargs, pp_opts)

        cc._compile = compile_one
        super().build_extensions()


ext = Extension(
    "fastconv._kernels",
    sources=["fastconv/_kernels.pyx"] + c_sources(),
    include_dirs=["src_c", numpy.get_include()],
    define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
)

setup(
    ext_modules=[ext],
    cmdclass={"build_ext": BuildExt},
)
