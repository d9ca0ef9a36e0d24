-- install_outcomes: what did each install run achieve?
-- One row per run with operation INSTALL (a patch-now or a maintenance window's run; what-if
-- evaluations never count): run_label (the patch policy's name, or window/task for a
-- maintenance window's task; empty for a patch-now), execution_type (COMMAND: an operator's
-- patchfleet install, PATCH_POLICY: a patch policy's scheduled run), reboot_option, its nodes by status,
-- installed_patches (node x patch rows the run left INSTALLED_PENDING_REBOOT, i.e. installed by
-- it with no reboot since, or INSTALLED where the node's previous run had them MISSING or
-- FAILED, i.e. installed and rebooted), failed_patches (rows FAILED: requested but not
-- installed), still_missing_patches, and the nodes that failed as a whole. Newest first.
CREATE OR REPLACE VIEW install_outcomes AS
WITH runs AS (
    SELECT node_id, run_id, operation, operation_end_time,
           lag(run_id) OVER (
               PARTITION BY node_id
               ORDER BY operation_end_time, operation_start_time, run_id
           ) AS previous_run_id
    FROM node_summaries
    WHERE what_if IS NOT TRUE
),
installs AS (
    SELECT * FROM node_summaries
    WHERE operation = 'INSTALL' AND what_if IS NOT TRUE
),
before AS (
    SELECT r.node_id, r.run_id, b.package, b.arch
    FROM runs AS r
    JOIN patch_states AS b ON b.node_id = r.node_id AND b.run_id = r.previous_run_id
    WHERE r.operation = 'INSTALL' AND b.state IN ('MISSING', 'FAILED')
),
patches AS (
    SELECT
        p.run_id,
        count(*) FILTER (WHERE p.state = 'INSTALLED_PENDING_REBOOT'
                         OR (p.state = 'INSTALLED' AND b.package IS NOT NULL))
            AS installed_patches,
        count(*) FILTER (WHERE p.state = 'FAILED') AS failed_patches,
        count(*) FILTER (WHERE p.state = 'MISSING') AS still_missing_patches
    FROM patch_states AS p
    LEFT JOIN before AS b
        ON b.node_id = p.node_id AND b.run_id = p.run_id AND b.package = p.package
       AND b.arch = p.arch
    WHERE (p.node_id, p.run_id) IN (SELECT node_id, run_id FROM installs)
    GROUP BY p.run_id
)
SELECT
    i.run_id,
    i.date,
    any_value(i.run_label) AS run_label,
    any_value(i.execution_type) AS execution_type,
    any_value(i.reboot_option) AS reboot_option,
    min(i.operation_start_time) AS started_at,
    max(i.operation_end_time) AS finished_at,
    count(*) AS nodes,
    count(*) FILTER (WHERE i.status = 'COMPLIANT') AS compliant_nodes,
    count(*) FILTER (WHERE i.status = 'NON_COMPLIANT') AS non_compliant_nodes,
    count(*) FILTER (WHERE i.status = 'FAILED') AS failed_nodes,
    coalesce(any_value(p.installed_patches), 0) AS installed_patches,
    coalesce(any_value(p.failed_patches), 0) AS failed_patches,
    coalesce(any_value(p.still_missing_patches), 0) AS still_missing_patches,
    coalesce(list(i.node_id ORDER BY i.node_id) FILTER (WHERE i.status = 'FAILED'),
             []::VARCHAR[]) AS failed_node_ids
FROM installs AS i
LEFT JOIN patches AS p ON p.run_id = i.run_id
GROUP BY i.run_id, i.date
ORDER BY started_at DESC, i.run_id;
