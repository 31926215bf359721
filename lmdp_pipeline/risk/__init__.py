"""Re-identification risk of an extract: measured in DuckDB SQL, judged against the policy, with safer levels suggested.

Because the registers hold the whole population, the frequency of a combination of
quasi-identifiers in the population is counted, not estimated from a sample as
sdcMicro or ARX must. One module per job, imported in this order (no cycles):

- ``model``: which delivered columns are quasi-identifiers, at which level, with which
  coarser levels; which are sensitive (restricted) variables.
- ``sources``: the rows measured, as SQL: the candidate extract's tables, or the
  warehouse for a preview, and the whole register for population frequencies.
- ``measures``: equivalence classes, sample and population frequencies, l-diversity
  and the longitudinal view, for one choice of levels (a lattice node).
- ``verdict``: the figures against the policy.
- ``memo``: the search's answer kept for the next build of the same data.
- ``lattice``: the search for the least coarsening that meets the policy.
- ``report``: the ``_risk`` table, the lines ``lmdp approvals check`` prints, Dagster metadata.
- ``assess``: the two entry points, on a build's connection and from the warehouse.
"""
