"""ijr — reproduction suite for sharpness, the edge of stability and implicit Jacobian
regularization (Lee, Park & Lee, ICML 2023, "Implicit Jacobian Regularization Weighted with
Impurity of Probability Output").

Layers (see README): ``ijr.models`` (architectures), ``ijr.data`` (datasets as tensors),
``ijr.curvature`` (pure-torch curvature math), ``ijr.methods`` (LightningModules),
``ijr.probes`` (Lightning callbacks), ``ijr.reporting`` (tables and figures).
"""

import os

# MKL's CPU kernels (dot, matrix-vector) otherwise round differently depending on how the
# operands happen to be aligned in memory, so two processes computing the same run could differ
# in the last bits (found by the kill -9 fault-injection test; a resumed run must equal an
# uninterrupted one byte for byte). STRICT: results independent of alignment, same code path
# (no measurable cost here). Read by MKL at its first call, so setting it on import suffices.
os.environ.setdefault("MKL_CBWR", "AUTO,STRICT")

__version__ = "0.1.0"
