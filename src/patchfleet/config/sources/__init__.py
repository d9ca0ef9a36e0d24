"""Node sources: where an inventory comes from (patchfleet YAML, Ansible INI/YAML, EC2).

Public surface::

    load_nodes_source(spec) -> Inventory     dispatch on the spec (see sources.loader)
"""

from __future__ import annotations

from patchfleet.config.sources.loader import load_nodes_source

__all__ = ["load_nodes_source"]
