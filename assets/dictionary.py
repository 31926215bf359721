"""Asset ``data_dictionary``: the contracts published as static HTML and Markdown."""


import dagster as dg

from lmdp_pipeline.dictionary import publish

from .registers import OWNERS
from .resources import PlatformResource

DICTIONARY_GROUP = "documentation"


@dg.asset(
    group_name=DICTIONARY_GROUP,
    kinds={"html", "markdown"},
    owners=OWNERS,
    description=(
        "The platform's data dictionary, published from data_contracts/: one page per register "
        "with every variable's description, format, codes, protection class and levels."
    ),
)
def data_dictionary(platform: PlatformResource) -> dg.MaterializeResult:
    contracts = platform.contracts()
    published = publish(contracts, platform.paths.dictionary)
    index = published.directory / "html" / "index.html"
    return dg.MaterializeResult(
        metadata={
            "index": dg.MetadataValue.path(str(index)),
            "registers": len(contracts.registers),
            "variables": sum(len(c.variables) for c in contracts),
            "pages": len(published.pages),
            "contract_versions": dg.MetadataValue.json({c.register: c.version for c in contracts}),
        }
    )
