"""The project wing: from an approval to a published, checked extract, and to its retirement.

One module per job, imported in this order (no cycles):

- ``approval``: the approval file parsed strictly into typed models.
- ``rules``: need-to-know rules against the contracts, the period against the warehouse.
- ``scope``: the population and period compiled to SQL.
- ``granularity``: levels compiled to SQL.
- ``pseudonyms``: HMAC pseudonyms in SQL under the project's key.
- ``plan``: what one build delivers (tables, columns, row order).
- ``external``: the researchers' own files, checked and linked.
- ``documentation``: ``_manifest``, ``_inputs``, ``_dictionary``, ``_lineage``.
- ``checks``: the blocking checks on the candidate file.
- ``build``: the candidate file, written and checked on one connection, then published.
- ``lifecycle``: build, key and retirement rules, locks and audit, whoever starts them.
"""
