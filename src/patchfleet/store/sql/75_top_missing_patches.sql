-- top_missing_patches: which missing patches affect the most nodes right now?
-- One row per package in state MISSING in some node's latest result (latest_patch_states), most
-- nodes first (then by package name): nodes missing it, the versions they are missing (nodes on
-- different images may miss different versions), its highest compliance level, and the
-- advisories and CVEs those versions fix. Take the top N with LIMIT N.
CREATE OR REPLACE VIEW top_missing_patches AS
SELECT
    package,
    count(DISTINCT node_id) AS nodes,
    list(DISTINCT available_version ORDER BY available_version)
        FILTER (WHERE available_version IS NOT NULL) AS versions,
    CASE min(coalesce(list_position(
        ['CRITICAL', 'HIGH', 'MEDIUM', 'LOW', 'INFORMATIONAL'], compliance_level), 6))
        WHEN 1 THEN 'CRITICAL' WHEN 2 THEN 'HIGH' WHEN 3 THEN 'MEDIUM' WHEN 4 THEN 'LOW'
        WHEN 5 THEN 'INFORMATIONAL' ELSE 'UNSPECIFIED'
    END AS compliance_level,
    list_sort(list_distinct(flatten(list(advisory_ids)))) AS advisory_ids,
    list_sort(list_distinct(flatten(list(cve_ids)))) AS cve_ids
FROM latest_patch_states
WHERE state = 'MISSING'
GROUP BY package
ORDER BY nodes DESC, package;
