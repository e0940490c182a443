"""The paper's findings tested in miniature: ``mmprolong reproduce --out DIR [--findings ...] [--seeds N]``.

``findings`` holds what each finding trains and claims and the verdict rule; ``run`` trains and evaluates the arms
and writes DIR/report.md, report.html and reproduce.json.
"""

from mmprolong.reproduce.findings import ARMS, FINDINGS
from mmprolong.reproduce.run import ReproduceConfig, reproduce

__all__ = ["ARMS", "FINDINGS", "ReproduceConfig", "reproduce"]
