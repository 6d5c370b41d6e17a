"""The papers' claims as checks over run directories (``ijr-report claims``, ``make claims``).

* :mod:`.spec` -- the ``claims:`` lists and ``<profile>_scale:`` blocks of conf/experiment/*.yaml;
* :mod:`.checks` -- the check vocabulary (small functions over runs read with pandas);
* :mod:`.evaluate` -- statuses (pass / fail / not reached / missing runs / not run) and the
  claims.md / claims.csv report;
* :mod:`.runner` -- the training queue of ``make claims``;
* :mod:`.scale` -- a profile's per-experiment overrides (``cpu_scale.overrides``).
"""
