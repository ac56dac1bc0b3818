//! infra/aws-partitions/<partition>.json, which the stacks hand the AWS SDK
//! through `SMITHY_CLIENT_SDK_CUSTOM_PARTITION` so that a cold start parses
//! one partition, without the region entries that change nothing, instead
//! of all eight: every service nudge calls must resolve every region of
//! that partition in the SDK's table (aws-regions.json) to the same
//! endpoint as with the SDK's own table, with and without FIPS and
//! dual-stack. (That the files are cut from the locked SDK's table is
//! checked by `scripts/aws_partitions.py --check` in `make test`.)

use std::path::{Path, PathBuf};
use std::process::Command;

fn partitions_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../infra/aws-partitions")
}

/// `cargo test` builds the package's examples next to its test binaries.
fn endpoints_example() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let examples = exe.parent().unwrap().parent().unwrap().join("examples");
    let example = examples.join(format!("endpoints{}", std::env::consts::EXE_SUFFIX));
    assert!(example.is_file(), "{} not built: run the tests through cargo test", example.display());
    example
}

fn endpoints(regions: &[String], partitions: Option<&Path>) -> String {
    let mut cmd = Command::new(endpoints_example());
    cmd.args(regions).env_remove("SMITHY_CLIENT_SDK_CUSTOM_PARTITION");
    if let Some(file) = partitions {
        cmd.env("SMITHY_CLIENT_SDK_CUSTOM_PARTITION", file);
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn each_partition_file_resolves_every_region_of_it_as_the_sdk_table_does() {
    let every_region: std::collections::BTreeMap<String, Vec<String>> = serde_json::from_slice(
        &std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/aws-regions.json")).unwrap(),
    )
    .unwrap();
    let mut files: Vec<PathBuf> = std::fs::read_dir(partitions_dir()).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort_by_key(|f| f.file_stem().map(|s| s.to_owned()));
    let ids: Vec<String> = files.iter().map(|f| f.file_stem().unwrap().to_string_lossy().into_owned()).collect();
    assert_eq!(ids, every_region.keys().cloned().collect::<Vec<_>>(), "a file per partition");
    for required in ["aws", "aws-cn", "aws-us-gov"] {
        assert!(ids.iter().any(|id| id == required), "no {required}.json among {ids:?}");
    }
    let mut compared = 0;
    for (file, id) in files.iter().zip(&ids) {
        let table: serde_json::Value = serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
        let partitions = table["partitions"].as_array().unwrap();
        assert_eq!(partitions.len(), 1, "{}: one partition per file", file.display());
        assert_eq!(partitions[0]["id"], id.as_str(), "{}", file.display());
        let regions = &every_region[id];
        assert!(!regions.is_empty(), "{id}: no regions");
        let sdk = endpoints(regions, None);
        let ours = endpoints(regions, Some(file));
        assert_eq!(ours, sdk, "{}", file.display());
        assert!(!ours.contains("error"), "{}: {ours}", file.display());
        compared += ours.lines().count();
    }
    assert!(compared > 150, "only {compared} resolutions compared");
}

#[test]
fn a_partition_file_really_replaces_the_sdk_table() {
    // Without this, the comparison above would also pass if the SDK never
    // read the file.
    let dir = tempfile::tempdir().unwrap();
    let aws = std::fs::read_to_string(partitions_dir().join("aws.json")).unwrap();
    let moved = dir.path().join("aws.json");
    std::fs::write(&moved, aws.replace("\"dnsSuffix\":\"amazonaws.com\"", "\"dnsSuffix\":\"example.test\"")).unwrap();
    let out = endpoints(&["eu-west-1".to_owned()], Some(&moved));
    assert!(out.contains("https://dynamodb.eu-west-1.example.test"), "{out}");
}
