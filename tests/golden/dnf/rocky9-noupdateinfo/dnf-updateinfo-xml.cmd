env LC_ALL=C LANG=C LANGUAGE=C DEBIAN_FRONTEND=noninteractive APT_LISTCHANGES_FRONTEND=none NEEDRESTART_SUSPEND=1 COLUMNS=1000 TZ=UTC sh -c 'read -r shebang < /usr/bin/dnf && exec ${shebang#"#!"} -c "$1"' patchfleet '
import bz2, gzip, lzma, os, subprocess, sys
import xml.etree.ElementTree as ET
import dnf, dnf.rpm
base = dnf.Base()
conf = base.conf
conf.read()
if os.geteuid() != 0:  # a user reads root'"'"'s cache, as `dnf -C` does (not a per-user one)
    conf.cachedir = conf.system_cachedir
conf.substitutions["releasever"] = dnf.rpm.detect_releasever(conf.installroot)
try:
    conf.substitutions.update_from_etc(conf.installroot, varsdir=conf.varsdir)
except TypeError:
    conf.substitutions.update_from_etc(conf.installroot)
base.read_all_repos()
out = sys.stdout.buffer
for repo in sorted(base.repos.iter_enabled(), key=lambda r: r.id):
    repodata = os.path.join(repo._repo.getCachedir(), "repodata")
    try:
        root = ET.parse(os.path.join(repodata, "repomd.xml")).getroot()
    except (OSError, ET.ParseError):
        out.write(("=== repo %s: no cache\n" % repo.id).encode())
        continue
    href = None
    for data in root:
        if data.tag.endswith("}data") and data.get("type") == "updateinfo":
            for loc in data:
                if loc.tag.endswith("}location"):
                    href = loc.get("href")
    if not href:
        out.write(("=== repo %s: none\n" % repo.id).encode())
        continue
    path = os.path.join(repodata, os.path.basename(href))
    opener = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}.get(
        os.path.splitext(path)[1], open if path.endswith(".xml") else None)
    if opener is None and path.endswith(".zst"):
        data = subprocess.run(["zstd", "-dc", path], stdout=subprocess.PIPE, check=True).stdout
    elif opener is None:
        out.write(("=== repo %s: unsupported compression %s\n" % (repo.id, path)).encode())
        continue
    else:
        with opener(path, "rb") as f:
            data = f.read()
    out.write(("=== repo %s: %s\n" % (repo.id, path)).encode())
    out.write(data if data.endswith(b"\n") else data + b"\n")
'
