#!/usr/bin/env python3
"""Regenerates data/compat.json, the compatibility data embedded in kubectl-meshup.

Inputs, in order of authority:
  1. the seed documents (../shared/seeds/*.md): the primary tables (Gloo Mesh OSS, Kmesh);
  2. ../shared/compat-sources.json: sourced rows for everything else (Istio 1.5-1.31, rules, mspider);
  3. data/sources/istio-patches.json: the patch releases of each Istio minor, from istio.io's
     release-announcement folders.
Where a seed disagrees with compat-sources.json, the seed's value is used and the disagreement is
kept as a note on the row.

Usage: python3 scripts/import-compat.py [--shared ../shared] [--check]
  --check  exit 1 if data/compat.json is not what the inputs produce (for CI or review).
"""
import argparse
import json
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent


def minors(values):
    return [v for v in values]


def seed_table_rows(text, header_start):
    """Rows of the first Markdown table whose header line starts with header_start."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.strip().startswith(header_start):
            rows = []
            for row in lines[i + 2:]:
                if not row.strip().startswith("|"):
                    break
                rows.append([c.strip() for c in row.strip().strip("|").split("|")])
            return rows
    raise SystemExit(f"seed table starting {header_start!r} not found")


def expand_range(cell):
    """'1.7 - 1.10' -> ['1.7', ..., '1.10']; '1.23, 1.24' -> list."""
    cell = cell.replace("`", "").replace("*", "").strip()
    m = re.fullmatch(r"(\d+)\.(\d+)\s*-\s*(\d+)\.(\d+)", cell)
    if m:
        a, b, c, d = map(int, m.groups())
        assert a == c
        return [f"{a}.{x}" for x in range(b, d + 1)]
    return [p.strip() for p in cell.split(",") if p.strip()]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", default=str(ROOT.parent / "shared"))
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args()
    shared = pathlib.Path(args.shared)
    src = json.loads((shared / "compat-sources.json").read_text())
    patches_path = ROOT / "data" / "sources" / "istio-patches.json"
    patches = json.loads(patches_path.read_text()) if patches_path.exists() else {"minors": {}}

    sources = set()

    # --- Istio -----------------------------------------------------------------------------
    releases = []
    for r in src["istio"]:
        p = patches["minors"].get(r["version"], {})
        notes = list(r.get("disagreements", []))
        if r.get("notes"):
            notes.append(r["notes"])
        release = {
            "minor": r["version"],
            "supportedK8s": r["supported_k8s"],
            "testedK8s": r.get("tested_k8s") or [],
            "patches": p.get("patches", []),
            "eolStatus": r.get("eol_status", "unknown"),
            "source": r["source"],
        }
        if p.get("source"):
            release["notes"] = []
            notes.append(f"patches: {p['source']}")
        if r.get("release_date"):
            release["releaseDate"] = r["release_date"]
        if r.get("eol"):
            release["eol"] = r["eol"]
        if r.get("uncertain"):
            release["uncertain"] = True
        if notes:
            release["notes"] = notes
        releases.append(release)
        sources.add("istio/istio.io data/compatibility/supportStatus.yml and release announcements")

    rules = src["istio_upgrade_rules"]
    amb = src["istio_ambient"]
    istio = {
        "releases": releases,
        "inPlaceMaxMinors": {
            "value": rules["in_place"]["max_minor_hops"],
            "rule": rules["in_place"]["rule"],
            "source": rules["in_place"]["source"],
        },
        "canaryMaxMinors": {
            "value": rules["canary"]["max_minor_hops"],
            "rule": rules["canary"]["rule"],
            "source": rules["canary"]["source"],
        },
        "downgradeMaxMinors": {
            "value": rules["in_place"]["downgrade_max_minor_hops"],
            "rule": rules["in_place"]["downgrade_rule"],
            "source": rules["in_place"]["source"],
        },
        "dataPlaneMaxLagMinors": {
            "value": rules["data_plane_skew"]["control_plane_may_lead_data_plane_by_minors"],
            "rule": rules["data_plane_skew"]["rule"],
            "source": rules["data_plane_skew"]["source"],
        },
        "ambientComponentsMaxLagMinors": {
            "value": rules["ambient_components_skew"]["control_plane_may_lead_ztunnel_cni_by_minors"],
            "rule": rules["ambient_components_skew"]["rule"],
            "source": rules["ambient_components_skew"]["source"],
        },
        "ambientGa": {
            "value": amb["min_istio_for_ambient_ga"]["version"],
            "rule": "Ambient mode (ztunnel, waypoints and APIs) is GA / Stable from Istio 1.24; earlier releases ship it as alpha (1.18) or beta (1.22).",
            "source": amb["min_istio_for_ambient_ga"]["source"],
        },
    }

    # --- Gloo Mesh OSS: seed table first ----------------------------------------------------
    seed_gm_path = "seeds/gloo-mesh-oss-supported-versions.md"
    seed_gm = seed_table_rows((shared / seed_gm_path).read_text(), "| Gloo Mesh Open Source")
    seed_gm_rows = {row[0]: row for row in seed_gm}
    gm_releases = []
    for r in src["gloo_mesh_oss"]:
        notes = []
        istio_v, k8s_v, source = r["istio"], r.get("k8s") or [], r["source"]
        if r["version"] in seed_gm_rows:
            row = seed_gm_rows[r["version"]]
            seed_istio, seed_k8s = expand_range(row[1]), expand_range(row[2])
            if seed_istio != istio_v or seed_k8s != k8s_v:
                notes.append(
                    f"compat-sources.json gives Istio {', '.join(istio_v)} and Kubernetes "
                    f"{', '.join(k8s_v)} ({source}); the seed table is primary."
                )
            istio_v, k8s_v = seed_istio, seed_k8s
            source = f"shared/{seed_gm_path} (seed table), cross-checked with {r['source']}"
        notes.extend(r.get("disagreements", []))
        major, minor = map(int, r["version"].split("."))
        rel = {
            "minor": r["version"],
            "istio": istio_v,
            "k8s": k8s_v,
            "runbook": "pre-1.0" if major < 1 else "helm",
            "source": source,
        }
        if r.get("k8s_min"):
            rel["k8sMin"] = r["k8s_min"]
        m = re.match(r"(\d+\.\d+\.\d+)", r.get("latest_patch_seen", ""))
        if m:
            rel["latestPatch"] = m.group(1)
        if r.get("uncertain"):
            rel["uncertain"] = True
        if notes:
            rel["notes"] = notes
        gm_releases.append(rel)
    sources.add(f"shared/{seed_gm_path}")
    sources.add("shared/seeds/gloo-mesh-upgrading.md")
    sources.add("solo-io/gloo-mesh docs/content/reference/version/versions.md")
    gloo_mesh = {
        "releases": gm_releases,
        "remoteMaxLagMinors": {
            "value": 1,
            "rule": "Remote clusters can run one version behind the management cluster (n-1), only for as long as the upgrade takes.",
            "source": f"shared/{seed_gm_path} (Version skew policy for management and remote clusters)",
        },
    }

    # --- Kmesh: seed tables first -----------------------------------------------------------
    seed_km_path = "seeds/kmesh-support-status.md"
    km_text = (shared / seed_km_path).read_text()
    dual_text, native_text = km_text.split("**Kmesh Kernel-Native Mode:**")
    km_releases = []
    for mode, text in (("dual-engine", dual_text), ("kernel-native", native_text)):
        for row in seed_table_rows(text, "| Version"):
            version = row[0]
            minor = None if version.startswith("main") else version.removesuffix(".x")
            rel = {
                "mode": {"name": mode},
                "istio": expand_range(row[2]),
                "k8s": expand_range(row[3]),
                "source": f"shared/{seed_km_path} (seed table), same as kmesh-net/kmesh docs/en/kmesh_support.md",
            }
            if minor:
                rel["minor"] = minor
            km_releases.append(rel)
    sources.add(f"shared/{seed_km_path}")
    kmesh = {
        "kernelMin": {
            "value": src["kmesh"]["kernel_min"],
            "rule": "Kmesh needs kernel eBPF functionality and can only run on kernel 5.10 or newer.",
            "source": f"shared/{seed_km_path}",
        },
        "dualEngineMinIstio": {
            "value": "1.22",
            "rule": "Dual-Engine mode requires pilot.env.PILOT_ENABLE_AMBIENT=true in istiod, so Istio 1.22 or newer.",
            "source": f"shared/{seed_km_path}",
        },
        "kernelNativeL7NativeOs": {
            "value": ["openEuler 23.03"],
            "rule": "Kernel-Native mode's L7 functionality requires Kmesh kernel patches, except on openEuler 23.03.",
            "source": f"shared/{seed_km_path}",
        },
        "releases": km_releases,
    }

    # --- DaoCloud mspider -------------------------------------------------------------------
    ms = src["mspider"]
    seed_dc_path = "seeds/daocloud-mesh-istio-upgrade.md"
    versions = set()
    for rel in ms["releases"]:
        for v in rel.get("istio_added", []):
            if re.fullmatch(r"\d+\.\d+\.\d+", v):
                versions.add(v)
    mspider = {
        "noMixedUpgrade": {
            "value": True,
            "rule": "The upgrade process of native and customized (-mspider) versions is the same, but mixed upgrades of different types are not supported.",
            "source": f"shared/{seed_dc_path}",
        },
        "noRollback": {
            "value": True,
            "rule": "After the upgrade, you will not be able to roll back to a lower version.",
            "source": f"shared/{seed_dc_path} (step 1, Select the target version)",
        },
        "istioVersions": sorted(versions, key=lambda v: tuple(map(int, v.split(".")))),
        "source": ms["releases_source"],
    }
    sources.add(f"shared/{seed_dc_path}")
    sources.add("DaoCloud/DaoCloud-docs docs/en/docs/mspider/intro/release-notes.md")
    sources.add("kmesh-net/kmesh docs/en/kmesh_support.md")

    data = {
        "schemaVersion": 1,
        "date": "2026-09-09",
        "sources": sorted(sources),
        "istio": istio,
        "glooMesh": gloo_mesh,
        "kmesh": kmesh,
        "mspider": mspider,
    }
    out = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    target = ROOT / "data" / "compat.json"
    if args.check:
        if not target.exists() or target.read_text() != out:
            print("data/compat.json is out of date: run python3 scripts/import-compat.py", file=sys.stderr)
            sys.exit(1)
        return
    target.write_text(out)
    print(f"wrote {target.relative_to(ROOT)}: {len(releases)} Istio minors, "
          f"{len(gm_releases)} Gloo Mesh minors, {len(km_releases)} Kmesh rows")


if __name__ == "__main__":
    main()
