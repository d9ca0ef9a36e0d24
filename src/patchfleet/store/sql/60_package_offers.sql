-- package_offers: every version a node's repositories offered, one row per node x run x
-- package x version (x notice, for rpm versions an updateinfo notice or zypper patch lists),
-- flattened from package_facts (schema v2; runs stored by older versions have no rows here).
-- source: 'apt' (a version of apt-cache policy that some repository offers), 'update' (the
-- newest version dnf/zypper offers), 'notice' (a version a notice lists). candidate: apt's
-- candidate, or the newest rpm update. version is dpkg's version or rpm's E:V-R (no epoch
-- when it is 0), as in patch_states.available_version.
CREATE OR REPLACE VIEW package_offers AS
WITH apt AS (
    SELECT node_id, run_id, date, package, installed_version, candidate_version,
           unnest(versions) AS v
    FROM package_facts
    WHERE kind = 'candidates'
),
notices AS (
    SELECT node_id, run_id, date, notice_id, notice_type, severity, issued, updated, cve_ids,
           bugzilla_ids, notice_installed, unnest(notice_packages) AS p
    FROM package_facts
    WHERE kind = 'notice'
)
SELECT node_id, run_id, date, 'apt' AS source, package, NULL::VARCHAR AS arch,
       installed_version, v.version AS version, v.version = candidate_version AS candidate,
       v.security AS security, v.priority AS priority, v.section AS section,
       array_to_string(list_transform(v.origins, lambda o: coalesce(nullif(o.label, ''),
           nullif(o.origin, ''), nullif(o.site, ''), 'local')
           || coalesce(':' || nullif(coalesce(nullif(o.codename, ''), o.archive), ''), '')),
           ', ') AS repository,
       NULL::TIMESTAMPTZ AS build_time, NULL::VARCHAR AS notice_id,
       NULL::VARCHAR AS notice_type, NULL::VARCHAR AS severity, NULL::TIMESTAMPTZ AS issued,
       NULL::TIMESTAMPTZ AS updated, NULL::VARCHAR[] AS cve_ids,
       NULL::VARCHAR[] AS bugzilla_ids
FROM apt
WHERE len(v.origins) > 0
UNION ALL
SELECT node_id, run_id, date, 'update', package, arch, installed_version, version, true,
       NULL, NULL, NULL, repository, build_time, NULL, NULL, NULL, NULL, NULL, NULL, NULL
FROM package_facts
WHERE kind = 'update'
UNION ALL
SELECT node_id, run_id, date, 'notice', p.name, p.arch, NULL,
       CASE WHEN p.epoch > 0 THEN p.epoch || ':' ELSE '' END || p.version || '-' || p.release,
       NULL, notice_type IN ('security', 'Security'), NULL, NULL, NULL, NULL, notice_id,
       notice_type, severity, issued, updated, cve_ids, bugzilla_ids
FROM notices;
