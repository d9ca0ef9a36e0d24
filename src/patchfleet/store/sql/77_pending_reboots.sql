-- pending_reboots: which nodes wait for a reboot right now?
-- One row per node whose latest result (latest_node_summaries) has patches in state
-- INSTALLED_PENDING_REBOOT (installed by a patchfleet Install, no reboot since) or whose OS says
-- a reboot is required (reboot_required: /var/run/reboot-required, needs-restarting -r, zypper
-- needs-rebooting); pending_packages lists the former, reboot_required_packages what the OS
-- names. Nodes with the most pending patches first.
CREATE OR REPLACE VIEW pending_reboots AS
WITH pending AS (
    SELECT node_id, list(DISTINCT package ORDER BY package) AS pending_packages
    FROM latest_patch_states
    WHERE state = 'INSTALLED_PENDING_REBOOT'
    GROUP BY node_id
)
SELECT
    n.node_id,
    n.host,
    n.operating_system,
    n.patch_group,
    n.status,
    n.installed_pending_reboot_count,
    coalesce(p.pending_packages, []::VARCHAR[]) AS pending_packages,
    coalesce(n.reboot_required, false) AS reboot_required,
    coalesce(n.reboot_required_packages, []::VARCHAR[]) AS reboot_required_packages,
    n.boot_id,
    n.operation AS last_operation,
    n.operation_end_time AS last_report_time,
    n.run_id
FROM latest_node_summaries AS n
LEFT JOIN pending AS p ON p.node_id = n.node_id
WHERE n.installed_pending_reboot_count > 0 OR n.reboot_required IS TRUE
ORDER BY n.installed_pending_reboot_count DESC, n.node_id;
