"""mmprolong: turn long PDFs into a long-context vision-language model (the MMProLong LongPT recipe).

Stages: ingest (PDFs -> page store), synth (page store -> samples), train, eval. Each stage is a
function in :mod:`mmprolong.api` and a sub-command of the ``mmprolong`` CLI.
"""

__version__ = "0.1.0"
