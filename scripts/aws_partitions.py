#!/usr/bin/env python3
"""Writes infra/aws-partitions/<partition>.json from the locked AWS SDK.

Every AWS SDK service crate embeds the table of AWS partitions (aws, aws-cn,
aws-us-gov, ...) and parses it, compiling each partition's region regex,
when its first client is built: once per service crate, at every cold
start. The SDK reads a replacement table from the file named by
SMITHY_CLIENT_SDK_CUSTOM_PARTITION instead. A function only ever calls the
regions of its own stack's partition, so the stacks point it at a table of
that one partition, shipped in the rules layer (/opt/aws-partitions/).

Each file is the SDK's entry for one partition, less the regions that
change nothing: the SDK matches a region by name first and by the
partition's regex second, so within one partition a region that only
carries a description and matches the regex resolves alike without its
entry, and parsing the entries was a third of the table's cost. Regions
with overrides, or that the regex does not match (`aws-global`), stay.
shared/aws/tests/aws-regions.json lists every region of every partition,
for the test in nudge-aws that resolves each with every service nudge
calls, with and without the file. The service crates nudge uses must embed the same table.

    scripts/aws_partitions.py          write the files
    scripts/aws_partitions.py --check  fail if they differ from the locked SDK
"""

import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "infra/aws-partitions"
REGIONS = ROOT / "shared/aws/tests/aws-regions.json"
SERVICES = ["aws-sdk-dynamodb", "aws-sdk-scheduler", "aws-sdk-sesv2", "aws-sdk-eventbridge", "aws-sdk-ssm"]
LITERAL = re.compile(rb'new_from_json\(b"((?:[^"\\]|\\.)*)"\)')


def embedded_table(package):
    source = Path(package["manifest_path"]).parent / "src/endpoint_lib.rs"
    found = LITERAL.findall(source.read_bytes())
    if len(found) != 1:
        sys.exit(f"{source}: expected one embedded partition table, found {len(found)}")
    # A Rust byte string: \" \\ and \n are the only escapes in this table.
    return json.loads(found[0].decode("ascii").encode().decode("unicode_escape"))


def files():
    meta = json.loads(subprocess.run(["cargo", "metadata", "--format-version", "1", "--locked"], cwd=ROOT,
                                     check=True, capture_output=True, text=True).stdout)
    packages = {p["name"]: p for p in meta["packages"] if p["name"] in SERVICES}
    missing = set(SERVICES) - set(packages)
    if missing:
        sys.exit(f"not in Cargo.lock: {sorted(missing)}")
    tables = {name: embedded_table(p) for name, p in packages.items()}
    first = tables[SERVICES[0]]
    for name, table in tables.items():
        if table != first:
            sys.exit(f"{name} embeds another partition table than {SERVICES[0]}: one file per partition would be wrong for one of them")
    out, every_region = {}, {}
    for partition in first["partitions"]:
        # The SDK's regex-lite has ASCII classes, as re.ASCII.
        pattern = re.compile(partition["regionRegex"], re.ASCII)
        regions = {name: overrides for name, region in partition["regions"].items()
                   if (overrides := {k: v for k, v in region.items() if k != "description"}) or not pattern.search(name)}
        table = {"partitions": [dict(partition, regions=regions)], "version": first["version"]}
        out[OUT / f"{partition['id']}.json"] = json.dumps(table, separators=(",", ":"), sort_keys=True) + "\n"
        every_region[partition["id"]] = sorted(partition["regions"])
    out[REGIONS] = json.dumps(every_region, indent=1, sort_keys=True) + "\n"
    return out


def main():
    want = files()
    if sys.argv[1:] == ["--check"]:
        have = {p: p.read_text() for p in [*OUT.glob("*.json"), REGIONS] if p.exists()}
        if have != want:
            stale = sorted(str(p.relative_to(ROOT)) for p in set(have) | set(want) if have.get(p) != want.get(p))
            sys.exit(f"stale: {stale}: run scripts/aws_partitions.py")
        print(f"infra/aws-partitions: {len(want) - 1} partitions, as the locked SDK embeds them")
        return
    OUT.mkdir(exist_ok=True)
    for old in OUT.glob("*.json"):
        old.unlink()
    for path, text in want.items():
        path.write_text(text)
    print(f"wrote {len(want) - 1} partition tables to {OUT.relative_to(ROOT)} and {REGIONS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
