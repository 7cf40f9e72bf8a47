"""Writes synthetic patients' FHIR R4 bundles from carebundle (PyPI), with fixed seeds.

Usage: python generate.py OUT_DIR SEED... — one file per profile and seed,
OUT_DIR/<profile>-<seed>.json. Prints the file names.
"""
import os
import sys

import carebundle

PROFILES = ["healthy", "type2_diabetes", "hypertension", "ckd_stage3", "anaemia"]

out = sys.argv[1]
for seed in (int(s) for s in sys.argv[2:]):
    for profile in PROFILES:
        path = os.path.join(out, f"{profile}-{seed}.json")
        with open(path, "w", encoding="utf-8") as f:
            f.write(carebundle.to_json(carebundle.generate_bundle(profile=profile, seed=seed)))
        print(path)
