-- noncompliant_severity_counts: per node and run, the non-compliant patches counted by
-- compliance level, as in AWS's "Noncompliant <Level> severity patch count" report columns.
-- Non-compliant states are INSTALLED_PENDING_REBOOT, INSTALLED_REJECTED, MISSING and FAILED; a
-- patch with no compliance level counts as UNSPECIFIED. Every node_summaries row has a row here
-- (zeros for compliant and failed nodes).
CREATE OR REPLACE VIEW noncompliant_severity_counts AS
WITH noncompliant AS (
    SELECT node_id, run_id, coalesce(compliance_level, 'UNSPECIFIED') AS level
    FROM patch_states
    WHERE state IN ('INSTALLED_PENDING_REBOOT', 'INSTALLED_REJECTED', 'MISSING', 'FAILED')
)
SELECT
    n.node_id,
    n.run_id,
    count(p.level) FILTER (WHERE p.level = 'CRITICAL')::INTEGER AS noncompliant_critical_count,
    count(p.level) FILTER (WHERE p.level = 'HIGH')::INTEGER AS noncompliant_high_count,
    count(p.level) FILTER (WHERE p.level = 'MEDIUM')::INTEGER AS noncompliant_medium_count,
    count(p.level) FILTER (WHERE p.level = 'LOW')::INTEGER AS noncompliant_low_count,
    count(p.level) FILTER (WHERE p.level = 'INFORMATIONAL')::INTEGER
        AS noncompliant_informational_count,
    count(p.level) FILTER (WHERE p.level = 'UNSPECIFIED')::INTEGER
        AS noncompliant_unspecified_count
FROM node_summaries AS n
LEFT JOIN noncompliant AS p ON p.node_id = n.node_id AND p.run_id = n.run_id
GROUP BY n.node_id, n.run_id;
