-- noncompliant_by_severity: how much non-compliance is there at each compliance level right now?
-- One row per compliance level (CRITICAL ... INFORMATIONAL, then UNSPECIFIED for patches without
-- one), over the patch rows of each node's latest result (latest_patch_states) in a
-- non-compliant state (INSTALLED_PENDING_REBOOT, INSTALLED_REJECTED, MISSING, FAILED):
-- noncompliant_patches counts node x patch rows, nodes the nodes with at least one,
-- nodes_at_highest the nodes whose overall severity (their worst level) is this one. Levels
-- nothing is non-compliant at are left out.
CREATE OR REPLACE VIEW noncompliant_by_severity AS
WITH rows AS (
    SELECT node_id, package, state, coalesce(compliance_level, 'UNSPECIFIED') AS level
    FROM latest_patch_states
    WHERE state IN ('INSTALLED_PENDING_REBOOT', 'INSTALLED_REJECTED', 'MISSING', 'FAILED')
),
highest AS (
    SELECT overall_severity AS level, count(*) AS nodes_at_highest
    FROM latest_node_summaries
    WHERE status = 'NON_COMPLIANT' AND overall_severity IS NOT NULL
    GROUP BY overall_severity
)
SELECT
    r.level AS compliance_level,
    count(*) AS noncompliant_patches,
    count(*) FILTER (WHERE r.state = 'MISSING') AS missing_patches,
    count(*) FILTER (WHERE r.state = 'FAILED') AS failed_patches,
    count(*) FILTER (WHERE r.state = 'INSTALLED_PENDING_REBOOT') AS pending_reboot_patches,
    count(*) FILTER (WHERE r.state = 'INSTALLED_REJECTED') AS rejected_patches,
    count(DISTINCT r.package) AS packages,
    count(DISTINCT r.node_id) AS nodes,
    coalesce(any_value(h.nodes_at_highest), 0) AS nodes_at_highest
FROM rows AS r
LEFT JOIN highest AS h ON h.level = r.level
GROUP BY r.level
ORDER BY coalesce(list_position(
    ['CRITICAL', 'HIGH', 'MEDIUM', 'LOW', 'INFORMATIONAL', 'UNSPECIFIED'], r.level), 7);
