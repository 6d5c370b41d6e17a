"""ijr — reproduction suite for sharpness, the edge of stability and implicit Jacobian
regularization (Lee, Park & Lee, ICML 2023, "Implicit Jacobian Regularization Weighted with
Impurity of Probability Output").

Layers (see README): ``ijr.models`` (architectures), ``ijr.data`` (datasets as tensors),
``ijr.curvature`` (pure-torch curvature math), ``ijr.methods`` (LightningModules),
``ijr.probes`` (Lightning callbacks), ``ijr.reporting`` (tables and figures).
"""

__version__ = "0.1.0"
