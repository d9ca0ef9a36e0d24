-- time_to_patch: how long does a missing patch stay missing, per severity and classification?
-- An episode is one node x package x arch from the first run that shows it MISSING to the first
-- later run that shows it installed (INSTALLED, or INSTALLED_PENDING_REBOOT: the package is in
-- place, the reboot is pending_reboots' business); a package missing again after that starts a
-- new episode. Installed time: the package's install_time in that run's facts (package_facts,
-- kind 'installed': dpkg's / rpm's own install time) when it lies between the two runs, else
-- the end time of the run that first showed it installed (so on stores without facts, and for
-- runs stored before schema v2, the figure is rounded up to the scan interval). severity and
-- classification are those of the first MISSING record (UNSPECIFIED / NULL when it had none).
-- patched counts closed episodes, still_missing open ones; mean_hours and p90_hours are over
-- the closed ones. What-if evaluations never count.
CREATE OR REPLACE VIEW time_to_patch AS
WITH what_if_runs AS (
    SELECT DISTINCT run_id FROM node_summaries WHERE what_if
),
missing AS (
    SELECT node_id, package, arch, severity, classification, scanned_at
    FROM patch_states
    WHERE state = 'MISSING' AND run_id NOT IN (SELECT run_id FROM what_if_runs)
),
patched AS (
    SELECT node_id, package, arch, scanned_at, run_id
    FROM patch_states
    WHERE state IN ('INSTALLED', 'INSTALLED_PENDING_REBOOT')
      AND (node_id, package, arch) IN (SELECT node_id, package, arch FROM missing)
      AND run_id NOT IN (SELECT run_id FROM what_if_runs)
),
-- each MISSING row meets the first installed row after it: the rows that meet the same one
-- (or none: still missing) are one episode
episodes AS (
    SELECT
        m.node_id, m.package, m.arch,
        min(m.scanned_at) AS first_missing,
        arg_min(m.severity, m.scanned_at) AS severity,
        arg_min(m.classification, m.scanned_at) AS classification,
        p.scanned_at AS patched_seen,
        any_value(p.run_id) AS patched_run
    FROM missing AS m
    ASOF LEFT JOIN patched AS p
        ON p.node_id = m.node_id AND p.package = m.package AND p.arch = m.arch
       AND p.scanned_at > m.scanned_at
    GROUP BY m.node_id, m.package, m.arch, p.scanned_at
),
install_times AS (
    SELECT node_id, run_id, package, arch, max(install_time) AS install_time
    FROM package_facts
    WHERE kind = 'installed' AND install_time IS NOT NULL
      AND (node_id, run_id) IN (SELECT node_id, patched_run FROM episodes)
    GROUP BY node_id, run_id, package, arch
),
timed AS (
    SELECT
        e.*,
        CASE WHEN f.install_time > e.first_missing AND f.install_time <= e.patched_seen
             THEN f.install_time ELSE e.patched_seen END AS installed_at
    FROM episodes AS e
    LEFT JOIN install_times AS f
        ON f.node_id = e.node_id AND f.run_id = e.patched_run AND f.package = e.package
       AND f.arch = e.arch
)
SELECT
    coalesce(severity, 'UNSPECIFIED') AS severity,
    classification,
    count(installed_at) AS patched,
    count(*) FILTER (WHERE installed_at IS NULL) AS still_missing,
    round(avg(epoch(installed_at - first_missing)) / 3600, 2) AS mean_hours,
    round(quantile_cont(epoch(installed_at - first_missing), 0.9) / 3600, 2) AS p90_hours,
    round(max(epoch(installed_at - first_missing)) / 3600, 2) AS max_hours
FROM timed
GROUP BY coalesce(severity, 'UNSPECIFIED'), classification
ORDER BY coalesce(list_position(
    ['CRITICAL', 'HIGH', 'IMPORTANT', 'MEDIUM', 'MODERATE', 'LOW', 'INFORMATIONAL', 'UNSPECIFIED'],
    upper(coalesce(severity, 'UNSPECIFIED'))), 9), severity, classification NULLS LAST;
