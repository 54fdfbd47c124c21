"""The one thing pyproject.toml cannot declare stably: the compiled cone-query kernel.

Everything else (metadata, packages, dependencies) is in pyproject.toml. Cython and a C
compiler are needed at install (Cython comes from the build requirements); without the
kernel the ephemeris store falls back to its numpy path (same results, 1.6-5x slower
sparse queries) and warns.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "ssassoc.core.ephemeris._query_kernel",
            ["core/ephemeris/_query_kernel.pyx"],
            # no errno from libm, so sqrt and friends inline (IEEE results unchanged, unlike -ffast-math)
            extra_compile_args=["-O3", "-fno-math-errno"],
        )
    ]
)
