"""Builds the optional native OTLP helpers; everything else is in pyproject.toml.

`optional=True`: without a C compiler the install still succeeds and the collector and gateway
run their pure-Python paths (each logs one line saying so).
"""

from Cython.Build import cythonize
from setuptools import Extension, setup

NATIVE = [
    Extension("collector._otlp_native", ["collector/_otlp_native.pyx"], optional=True),
    Extension("collector._otlp_spans", ["collector/_otlp_spans.pyx"], optional=True),
    Extension("gateway.telemetry._otlp_encode", ["gateway/telemetry/_otlp_encode.pyx"], optional=True),
]

setup(ext_modules=cythonize(NATIVE, compiler_directives={"language_level": "3"}, quiet=True))
