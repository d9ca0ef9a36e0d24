"""One module per package manager, behind one Protocol.

- ``base``: :class:`~.base.PackageManagerSupport` (the Protocol every manager implements),
  :class:`~.base.Probe` (a command paired with its parser), the install request and outcome.
- ``common``: the os-release probe, how a failed probe becomes a NodeError, the lock-retry
  loop, argv checks, the install skeleton of managers whose holds live on the node.
- ``rpm``: what dnf and zypper share (rpm's database, the boot probe, rpm argv checks).
- ``post_probes``: post-install probes every family sends (/proc maps, auto-updaters).
- ``sources``: a baseline's alternative source on a node for one operation (a private
  directory, removed afterwards; each manager's ``SOURCE_LAYOUT`` says what goes in it and how
  its commands are pointed at it).
- ``apt``, ``dnf``, ``zypper``: everything about one manager: probes with their parsers,
  collector, refresh, install argv, block/unblock, lock and failure classification, reboot
  signals, post-install restart probes and the family's own auto-updaters.
- ``registry``: :func:`~.registry.support_for` a :class:`PackageManager`, and
  :func:`~.registry.collect_facts` (detect the OS, then collect with its manager).

Nothing outside this package compares package managers: ops/ asks the registry. (Baseline
evaluation per OS family lives in the pure ``domain/``.)

Adding a package manager (yum, apk, pacman...) touches:

1. ``managers/<name>.py``: its probes as :class:`~.base.Probe` records (command + parser, in
   scan order, starting with :data:`~.common.OS_RELEASE` and the refresh), a class with every
   member of :class:`~.base.PackageManagerSupport`, ``SOURCE_LAYOUT`` (a
   :class:`~.sources.SourceLayout`; collect and install run inside
   :func:`~.sources.node_source`), and ``SUPPORT = <Class>()``. New parsers go
   to ``parsers/<tool>.py`` (pure: text in, typed facts out, an unknown line raises).
2. ``managers/registry.py``: add ``<name>.SUPPORT`` to ``_SUPPORTS`` (and the enum value to
   ``domain.facts.PackageManager`` if os-release detection does not know it yet).
3. Golden cases: the node variant's cases in ``testnodes/capture_golden.py`` (plus, for probes
   with arguments, how the node gives them), captured into ``tests/golden/<name>/``; then
   ``python tests/golden/parse_golden.py --write`` and review the ``.parsed.json`` files. The
   golden tests find the new folder through the registry and check every capture's command.
"""
