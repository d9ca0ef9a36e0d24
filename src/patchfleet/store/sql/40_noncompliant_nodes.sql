-- noncompliant_nodes: nodes whose latest status is NON_COMPLIANT or FAILED, and why.
-- reason is the failure reason of a FAILED node, otherwise a short count of what is wrong and the
-- highest severity; missing_packages lists the packages in state MISSING. Worst first: failed
-- nodes, then by overall severity.
CREATE OR REPLACE VIEW noncompliant_nodes AS
WITH missing AS (
    SELECT node_id, list(DISTINCT package ORDER BY package) AS missing_packages
    FROM latest_patch_states
    WHERE state = 'MISSING'
    GROUP BY node_id
)
SELECT
    n.node_id,
    n.host,
    n.platform_name,
    n.platform_version,
    n.patch_group,
    n.baseline_id,
    n.status,
    n.overall_severity,
    CASE
        WHEN n.status = 'FAILED' THEN coalesce(n.failure_reason, 'scan failed (no reason recorded)')
        ELSE concat_ws(', ',
            CASE WHEN n.missing_count > 0 THEN n.missing_count || ' missing' END,
            CASE WHEN n.failed_count > 0 THEN n.failed_count || ' failed' END,
            CASE WHEN n.installed_pending_reboot_count > 0
                THEN n.installed_pending_reboot_count || ' pending reboot' END,
            CASE WHEN n.installed_rejected_count > 0
                THEN n.installed_rejected_count || ' rejected but installed' END
        ) || coalesce('; highest severity ' || n.overall_severity, '')
    END AS reason,
    n.failure_reason,
    n.missing_count,
    n.failed_count,
    n.installed_pending_reboot_count,
    n.installed_rejected_count,
    n.critical_non_compliant_count,
    n.security_non_compliant_count,
    n.other_non_compliant_count,
    s.noncompliant_critical_count,
    s.noncompliant_high_count,
    s.noncompliant_medium_count,
    s.noncompliant_low_count,
    s.noncompliant_informational_count,
    s.noncompliant_unspecified_count,
    coalesce(m.missing_packages, []::VARCHAR[]) AS missing_packages,
    n.operation_end_time AS last_report_time,
    n.run_id,
    n.date
FROM latest_node_summaries AS n
LEFT JOIN noncompliant_severity_counts AS s ON s.node_id = n.node_id AND s.run_id = n.run_id
LEFT JOIN missing AS m ON m.node_id = n.node_id
WHERE n.status IN ('NON_COMPLIANT', 'FAILED')
ORDER BY
    n.status = 'FAILED' DESC,
    coalesce(list_position(
        ['CRITICAL', 'HIGH', 'MEDIUM', 'LOW', 'INFORMATIONAL', 'UNSPECIFIED'], n.overall_severity
    ), 7),
    n.node_id;
