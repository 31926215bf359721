"""What researchers open: their extract's tables in Stata, SPSS and Parquet, a codebook, and an encrypted package.

One module per job: ``columns`` (what each delivered column becomes), ``names`` (names
and labels that fit each format), ``profile`` (what a binary header must know first),
``arrays`` (Arrow batches as numpy arrays), ``stata``, ``spss`` and ``parquet`` (the
writers), ``tables`` (one table, three formats, one pass), ``codebook``, ``package``
(the age-encrypted tar) and ``publish`` (all of it for one project, under its lock,
published atomically). Design and choices: docs/exports.md.
"""


class ExportError(ValueError):
    """An extract that cannot be exported as it is, or must not be; the message names the table, column or rule."""
