"""split-opt: find where to split a vision network between a device and a server.

The packages read like the pipeline: ``data`` and ``models`` at the bottom, then ``profiler``,
``codecs``, ``search``, ``report``, ``deploy``, with ``cli`` on top as the only place that prints.
"""

from __future__ import annotations

from optimizer.errors import UserError

__all__ = ["UserError", "__version__"]
__version__ = "0.4.0"
