"""Output checking: researchers' result tables computed from the extract, checked, protected and released with evidence.

One module per job, imported in this order (no cycles):

- ``request``: request and review files, parsed strictly into typed models.
- ``extract``: a request checked against the extract's ``_dictionary``, and its tables' SQL.
- ``tables``: a table's cells and totals computed in DuckDB, with the evidence the rules need.
- ``rules``: threshold, zeros, (n, k) dominance, p-percent, negative values.
- ``differencing``: each new cell against every cell already released for the project.
- ``own_columns``: tables using the researchers' own columns in more than one way go to an output checker.
- ``suppression``: secondary suppression, so no suppressed cell can be recomputed.
- ``published``: the published grid, CSV and XLSX, suppressed cells marked.
- ``evidence``: ``results.json`` in ACRO's format (full for checkers, without reasons for release), checksums.
- ``attachments``: attached files checked as far as a machine can.
- ``ledger``: the decision on each request and the ledger of releases.
- ``checks``: the blocking checks on the candidate files.
- ``examination``: one version of a request examined and decided, nothing written (``lmdp outputs check``).
- ``release``: one request from file to published decision, audited.
"""
