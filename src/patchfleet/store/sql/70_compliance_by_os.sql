-- compliance_by_os: how compliant is each operating system right now?
-- One row per AWS OperatingSystem value (DEBIAN, UBUNTU, ROCKY_LINUX, SUSE, ...) over each node's
-- latest result (latest_node_summaries: what-if evaluations never count). operating_system is
-- NULL for nodes whose latest run was stored before schema v2. compliant_pct is over the nodes
-- that were scanned (FAILED nodes claim nothing either way), as in compliance_history.
CREATE OR REPLACE VIEW compliance_by_os AS
SELECT
    operating_system,
    count(*) AS nodes,
    count(*) FILTER (WHERE status = 'COMPLIANT') AS compliant_nodes,
    count(*) FILTER (WHERE status = 'NON_COMPLIANT') AS non_compliant_nodes,
    count(*) FILTER (WHERE status = 'FAILED') AS failed_nodes,
    round(100.0 * count(*) FILTER (WHERE status = 'COMPLIANT')
          / nullif(count(*) FILTER (WHERE status <> 'FAILED'), 0), 1) AS compliant_pct,
    coalesce(sum(missing_count), 0)::BIGINT AS missing_patches,
    coalesce(sum(critical_non_compliant_count), 0)::BIGINT AS critical_non_compliant_patches,
    coalesce(sum(security_non_compliant_count), 0)::BIGINT AS security_non_compliant_patches
FROM latest_node_summaries
GROUP BY operating_system
ORDER BY operating_system NULLS LAST;
