#!/usr/bin/env python3
"""The infrastructure checks of `make test`, without an AWS account.

1. cfn-lint on the SAM template; the template also translates with
   aws-sam-translator (offline: code paths replaced as `sam package` would).
2. terraform init (offline, from the provider mirror - fails loudly if there
   is none), fmt -check and validate.
3. checkov on both: no failed check (waivers are inline, with reasons).
4. The two stacks describe the same thing: functions, environment variable
   names per function, table keys and indexes, alarms. Terraform's side is
   read from a real `terraform plan` (for_each expanded), with the provider's
   STS calls answered by moto.
5. Least privilege: each function's IAM actions are exactly the calls it
   makes (ACTIONS below), in both stacks; SES sending is limited to the
   configured identity; no function has a function URL.
6. One list of settings: shared/aws/src/settings.rs against SAM, Terraform,
   the cargo-lambda metadata and docs/deploy.md.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
import urllib.request
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAM = ROOT / "infra/sam/template.yaml"
TF = ROOT / "infra/terraform"
FAILURES = []

# Every action each function's role grants: exactly the calls its code makes
# (shared/aws/src/dynamo.rs for the table; logs, X-Ray and the dead-letter
# queue aside). events:PutEvents only when an event bus is configured.
_SCHED = ["scheduler:CreateSchedule", "scheduler:DeleteSchedule", "iam:PassRole"]
_SSM = ["ssm:GetParametersByPath"]
_SES = ["ses:SendEmail", "ses:SendRawEmail"]
ACTIONS = {
    "shopify-webhook": ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:BatchGetItem",
                        "dynamodb:BatchWriteItem", "dynamodb:Query", "dynamodb:Scan", *_SCHED, *_SSM, "events:PutEvents"],
    "woocommerce-webhook": ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:BatchGetItem",
                            "dynamodb:BatchWriteItem", "dynamodb:Query", *_SCHED, *_SSM, "events:PutEvents"],
    "track": ["dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:BatchGetItem", "dynamodb:BatchWriteItem",
              "dynamodb:Query", *_SCHED, *_SSM, "events:PutEvents"],
    "check": ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:Query",
              "scheduler:CreateSchedule", "iam:PassRole", *_SES, *_SSM, "events:PutEvents"],
    "ses-events": ["dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:BatchGetItem", *_SCHED, *_SSM, "events:PutEvents"],
    "unsubscribe": ["dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:BatchGetItem", *_SCHED, *_SSM, "events:PutEvents"],
    "reconcile": ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem",
                  "dynamodb:BatchGetItem", "dynamodb:Query", "dynamodb:Scan", "scheduler:CreateSchedule", "iam:PassRole",
                  *_SES, *_SSM, "events:PutEvents"],
}
# Granted to every function by its module / SAM itself, not by nudge's statements.
_BASELINE = {"logs:CreateLogStream", "logs:PutLogEvents", "xray:PutTraceSegments", "xray:PutTelemetryRecords",
             "sqs:SendMessage"}


def step(title):
    print(f"\n== {title}", flush=True)


def run(cmd, **kw):
    print("$", " ".join(str(c) for c in cmd), flush=True)
    return subprocess.run(cmd, check=True, **kw)


def expect(cond, message):
    if not cond:
        FAILURES.append(message)
        print("FAIL:", message, flush=True)


def settings():
    out = subprocess.run(
        ["cargo", "run", "--quiet", "-p", "nudge-aws", "--example", "settings"],
        cwd=ROOT, check=True, capture_output=True, text=True,
    ).stdout
    return json.loads(out)


def sam_template():
    from samtranslator.yaml_helper import yaml_parse
    return yaml_parse(SAM.read_text())


def check_sam():
    step("cfn-lint")
    run(["cfn-lint", str(SAM)])
    step("samconfig.toml: every environment sets only the template's parameters")
    params = set(sam_template()["Parameters"])
    config = tomllib.loads((SAM.parent / "samconfig.toml").read_text())
    for env, cmds in config.items():
        if not isinstance(cmds, dict):
            continue
        for override in cmds.get("deploy", {}).get("parameters", {}).get("parameter_overrides", []):
            name = override.split("=", 1)[0]
            expect(name in params, f"samconfig.toml [{env}] sets {name}, which the template does not have")
    step("aws-sam-translator")
    from samtranslator.translator.transform import transform

    class OfflinePolicies:
        """Managed-policy names without calling IAM (there is no account)."""

        def load(self):
            return {}

    tpl = sam_template()
    tpl["Globals"]["Function"]["CodeUri"] = "s3://nudge-artifacts/functions.zip"
    for r in tpl["Resources"].values():
        if r["Type"] == "AWS::Serverless::LayerVersion":
            r["Properties"]["ContentUri"] = "s3://nudge-artifacts/rules-layer.zip"
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    out = transform(tpl, {}, OfflinePolicies())
    print(f"translated: {len(out['Resources'])} CloudFormation resources")


def provider_mirror():
    candidates = [os.environ.get("TF_PLUGIN_DIR", ""), "/opt/tf-plugins",
                  str(Path.home() / ".terraform.d/plugins"), "/usr/share/terraform/plugins",
                  "/usr/local/share/terraform/plugins"]
    for c in candidates:
        if c and (Path(c) / "registry.terraform.io/hashicorp/aws/5.100.0").is_dir():
            return c
    for found in Path("/").glob("*/*/registry.terraform.io/hashicorp/aws/5.100.0"):
        return str(found.parents[3])
    # No mirror (a CI runner): terraform init reads the provider registry.
    print("no filesystem mirror of hashicorp/aws 5.100.0 (TF_PLUGIN_DIR): terraform init uses the registry")
    return None


def check_terraform(work):
    step("terraform fmt / init / validate")
    run(["terraform", "fmt", "-check", "-recursive", str(TF)])
    shutil.copytree(TF, work / "terraform", ignore=shutil.ignore_patterns(".terraform*"))
    for example in sorted((work / "terraform/examples").iterdir()):
        mirror = provider_mirror()
        plugins = [f"-plugin-dir={mirror}"] if mirror else []
        run(["terraform", "init", "-backend=false", "-input=false", *plugins], cwd=example)
        run(["terraform", "validate"], cwd=example)
    step("the module's README (inputs and outputs generated from the code)")
    run([sys.executable, str(ROOT / "scripts/tf_docs.py"), "--check", str(TF / "modules/nudge")])
    return work / "terraform/examples/minimal"


def plan_json(example, work):
    """A real plan: data sources answered by moto (STS), placeholder zips."""
    step("terraform plan (provider pointed at moto for STS)")
    lambda_dir = work / "lambda"
    names = ["shopify-webhook", "woocommerce-webhook", "track", "check", "ses-events", "unsubscribe", "reconcile"]
    for n in names:
        (lambda_dir / n).mkdir(parents=True)
        with zipfile.ZipFile(lambda_dir / n / "bootstrap.zip", "w") as z:
            z.writestr("bootstrap", "placeholder")
    layer = work / "rules-layer.zip"
    with zipfile.ZipFile(layer, "w") as z:
        z.writestr("rules/triggers.toml", "")
    # The server binds a free port itself and names it on its first line.
    moto = subprocess.Popen([sys.executable, str(ROOT / "scripts/moto_serial.py"), "-H", "127.0.0.1", "-p", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        first = moto.stdout.readline().strip()
        if not first.startswith("port "):
            sys.exit(f"FAIL: moto did not start (is moto[server] installed?): {first!r}")
        port = int(first.removeprefix("port "))
        deadline = time.time() + 30
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/moto-api/data.json", timeout=1)
                break
            except OSError:
                if time.time() > deadline:
                    sys.exit("FAIL: moto did not answer")
                time.sleep(0.2)
        (example / "override.tf").write_text(f'''provider "aws" {{
  access_key                  = "test"
  secret_key                  = "test"
  skip_credentials_validation = true
  skip_metadata_api_check     = true
  endpoints {{
    sts = "http://127.0.0.1:{port}"
  }}
}}
''')
        env = dict(os.environ, AWS_EC2_METADATA_DISABLED="true")
        run(["terraform", "plan", "-input=false", "-refresh=false", "-out=plan.bin",
             "-var", "from_address=Acme <shop@example.com>", "-var", f"lambda_dir={lambda_dir}",
             # A given unsubscribe base keeps the mail functions' environment known at plan time.
             "-var", "public_url=https://unsubscribe.example",
             "-var", "ses_identity=shop.example",
             "-var", f"rules_layer_zip={layer}"], cwd=example, env=env, stdout=subprocess.DEVNULL)
        out = subprocess.run(["terraform", "show", "-json", "plan.bin"], cwd=example, check=True,
                             capture_output=True, text=True).stdout
        return json.loads(out)
    finally:
        moto.kill()
        moto.wait()


def check_checkov(work):
    step("checkov")
    for args in (["-f", str(SAM), "--framework", "cloudformation"], ["-d", str(TF), "--framework", "terraform"]):
        out = subprocess.run(["checkov", *args, "--skip-download", "--compact", "--quiet", "-o", "json"],
                             capture_output=True, text=True)
        reports = json.loads(out.stdout or "[]")
        reports = reports if isinstance(reports, list) else [reports]
        for r in reports:
            s = r.get("summary", {})
            print(f"{r.get('check_type')}: passed {s.get('passed')}, failed {s.get('failed')}, skipped {s.get('skipped')}")
            expect(s.get("failed", 1) == 0, f"checkov {r.get('check_type')}: {s.get('failed')} failed check(s)")
            for f in r.get("results", {}).get("failed_checks", []):
                print("  failed:", f["check_id"], f["resource"])
        expect(reports, f"checkov produced no report for {args}")


# -- the two stacks, normalised -------------------------------------------------

def sam_model(tpl):
    res = tpl["Resources"]
    glob_env = set(tpl["Globals"]["Function"]["Environment"]["Variables"])
    logical_to_fn, functions = {}, {}
    for lid, r in res.items():
        if r["Type"] == "AWS::Serverless::Function":
            name = r["Metadata"]["BuildProperties"]["Binary"]
            logical_to_fn[lid] = name
            own = set(r["Properties"].get("Environment", {}).get("Variables", {}))
            functions[name] = glob_env | own
    table = next(r["Properties"] for r in res.values() if r["Type"] == "AWS::DynamoDB::Table")
    keys = {k["KeyType"]: k["AttributeName"] for k in table["KeySchema"]}
    indexes = {(g["IndexName"], tuple(k["AttributeName"] for k in g["KeySchema"]), g["Projection"]["ProjectionType"])
               for g in table["GlobalSecondaryIndexes"]}
    table_model = (keys["HASH"], keys["RANGE"], frozenset(indexes), table["TimeToLiveSpecification"]["AttributeName"],
                   table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"])
    alarms = set()
    for r in res.values():
        if r["Type"] != "AWS::CloudWatch::Alarm":
            continue
        p = r["Properties"]
        if "Metrics" in p:
            m = next(q["MetricStat"]["Metric"] for q in p["Metrics"] if "MetricStat" in q)
            subject = logical_to_fn[m["Dimensions"][0]["Value"]["Ref"]]
            alarms.add((m["Namespace"], m["MetricName"], subject, "anomaly"))
            continue
        subject = ""
        for d in p.get("Dimensions", []):
            v = d["Value"]
            if "Ref" in v:
                subject = logical_to_fn[v["Ref"]]
            elif "Fn::GetAtt" in v:
                subject = {"ChecksDeadLetterQueue": "checks", "FunctionsDeadLetterQueue": "functions"}[v["Fn::GetAtt"][0]]
        alarms.add((p["Namespace"], p["MetricName"], subject, str(p["Threshold"])))
    # The optional HTTP API: route keys, and the functions integrated.
    def integrated(uri):
        # `!GetAtt Fn.Arn`, or `!Ref Fn.Alias` (the `live` alias).
        return logical_to_fn[uri["Fn::GetAtt"][0] if "Fn::GetAtt" in uri else uri["Ref"].split(".")[0]]
    integrations = {lid: integrated(r["Properties"]["IntegrationUri"])
                    for lid, r in res.items() if r["Type"] == "AWS::ApiGatewayV2::Integration"}
    routes = frozenset(r["Properties"]["RouteKey"] for r in res.values() if r["Type"] == "AWS::ApiGatewayV2::Route")
    alarms.add(("routes", routes, frozenset(integrations.values()), ""))
    return functions, table_model, alarms


def tf_model(plan):
    changes = plan["resource_changes"]
    functions = {}
    table_model = None
    alarms = set()
    queues = {}
    for c in changes:
        if c["mode"] != "managed":
            continue
        after, unknown = c["change"]["after"] or {}, c["change"]["after_unknown"] or {}
        if c["type"] == "aws_sqs_queue":
            queues[after["name"]] = {"nudge-checks-dlq": "checks", "nudge-functions-dlq": "functions"}[after["name"]]
    for c in changes:
        if c["mode"] != "managed":
            continue
        after, unknown = c["change"]["after"] or {}, c["change"]["after_unknown"] or {}
        if c["type"] == "aws_lambda_function":
            name = after["function_name"].removeprefix("nudge-")
            env = set((after.get("environment") or [{}])[0].get("variables") or {})
            unk = (unknown.get("environment") or [{}])[0]
            unk = unk.get("variables") if isinstance(unk, dict) else unk
            expect(unk is not True, f"{name}: the plan hides the environment's names (wholly unknown map)")
            if isinstance(unk, dict):
                env |= set(k for k, v in unk.items() if v)
            functions[name] = env
        elif c["type"] == "aws_dynamodb_table":
            idx = {(g["name"], (g["hash_key"], g["range_key"]), g["projection_type"]) for g in after["global_secondary_index"]}
            table_model = (after["hash_key"], after["range_key"], frozenset(idx), after["ttl"][0]["attribute_name"],
                           after["point_in_time_recovery"][0]["enabled"])
        elif c["type"] == "aws_cloudwatch_metric_alarm":
            if after.get("metric_query"):
                m = next(q["metric"][0] for q in after["metric_query"] if q.get("metric"))
                alarms.add((m["namespace"], m["metric_name"], m["dimensions"]["Function"].removeprefix("nudge-"), "anomaly"))
                continue
            dims = after.get("dimensions") or {}
            subject = dims.get("FunctionName", "").removeprefix("nudge-") or queues.get(dims.get("QueueName", ""), "")
            threshold = after["threshold"]
            threshold = int(threshold) if float(threshold).is_integer() else threshold
            alarms.add((after["namespace"], after["metric_name"], subject, str(threshold)))
    routes = frozenset(c["index"] for c in changes if c["type"] == "aws_apigatewayv2_route")
    integrated = frozenset(c["index"] for c in changes if c["type"] == "aws_apigatewayv2_integration")
    alarms.add(("routes", routes, integrated, ""))
    return functions, table_model, alarms


def compare(sam, tf):
    step("SAM and Terraform describe the same stack")
    (sf, st, sa), (tf_f, tt, ta) = sam, tf
    expect(set(sf) == set(tf_f), f"functions differ: SAM {sorted(sf)} vs Terraform {sorted(tf_f)}")
    for fn in sorted(set(sf) & set(tf_f)):
        expect(sf[fn] == tf_f[fn], f"{fn}: environment differs: only SAM {sorted(sf[fn] - tf_f[fn])}, only Terraform {sorted(tf_f[fn] - sf[fn])}")
    expect(st == tt, f"table differs:\n  SAM {st}\n  TF  {tt}")
    expect(sa == ta, f"alarms or HTTP API routes differ: only SAM {sa - ta}, only Terraform {ta - sa}")
    routes = next(a[1] for a in sa if a[0] == "routes")
    expect(len(routes) == 8, f"the HTTP API should have 8 routes, has {sorted(routes)}")
    print(f"{len(sf)} functions, {len(sa) - 1} alarms, {len(routes)} HTTP API routes, table {st[0]}/{st[1]} with {len(st[2])} indexes: the same")
    return sf


def sam_privileges(tpl):
    """Each function's granted actions, with conditional statements taken as granted."""
    out = {}
    for r in tpl["Resources"].values():
        if r["Type"] != "AWS::Serverless::Function":
            continue
        name = r["Metadata"]["BuildProperties"]["Binary"]
        expect("FunctionUrlConfig" not in r["Properties"], f"SAM {name}: has a function URL (the HTTP API is the only way in)")
        actions = set()
        for policy in r["Properties"].get("Policies", []):
            for st in policy.get("Statement", []):
                if "Fn::If" in st:
                    st = st["Fn::If"][1]
                a = st["Action"]
                actions |= set(a if isinstance(a, list) else [a])
                resources = st.get("Resource")
                resources = resources if isinstance(resources, list) else [resources]
                if any(x.startswith("ses:") for x in actions & set(a if isinstance(a, list) else [a])):
                    text = json.dumps(resources)
                    expect("identity/*" not in text and "identity/${SesIdentity}" in text,
                           f"SAM {name}: SES sending is not limited to the configured identity: {text}")
        out[name] = actions
    return out


def check_privileges(sam_tpl, plan):
    step("least privilege: each function may make exactly the calls it makes")
    sam = sam_privileges(sam_tpl)
    for name, want in ACTIONS.items():
        got = sam.get(name, set())
        expect(got == set(want), f"SAM {name}: extra {sorted(got - set(want))}, missing {sorted(set(want) - got)}")
    tf = plan["planned_values"]["outputs"]["iam_actions"]["value"]
    for name, want in ACTIONS.items():
        # The example plan configures no event bus, so PutEvents is not granted there.
        want = set(want) - {"events:PutEvents"}
        got = set(tf.get(name, [])) - _BASELINE
        expect(got == want, f"Terraform {name}: extra {sorted(got - want)}, missing {sorted(want - got)}")
    urls = [c["address"] for c in plan["resource_changes"] if c["type"] == "aws_lambda_function_url"]
    expect(not urls, f"Terraform has function URLs: {urls}")
    module_text = "".join(p.read_text() for p in (TF / "modules").rglob("*.tf"))
    expect("identity/*" not in module_text, "Terraform: SES sending is not limited to the configured identity")
    print(f"{len(ACTIONS)} functions: the same actions in both stacks, no function URL, SES limited to one identity")


def check_settings(listed, functions):
    step("one list of settings")
    plain = {s["name"] for s in listed if not s["secret"]}
    secret = {s["name"] for s in listed if s["secret"]}
    used = set().union(*functions.values())
    expect(used == plain, f"stack env vs settings.rs: only in the stacks {sorted(used - plain)}, never set {sorted(plain - used)}")
    expect(not (used & secret), f"secrets in plaintext environment: {sorted(used & secret)}")
    for s in listed:
        need = {"all": set(functions), "mail": {"check", "reconcile"}}.get(s["need"], set())
        for fn in need:
            if not s["secret"]:
                expect(s["name"] in functions[fn], f"{fn} lacks {s['name']}, which it cannot start without")
    table = (ROOT / "docs/deploy.md").read_text()
    for s in listed:
        expect(f"| `{s['name']}`" in table, f"the settings table in docs/deploy.md lacks {s['name']}")
    meta = tomllib.loads((ROOT / "Cargo.toml").read_text())["workspace"]["metadata"]["lambda"]["watch"]["env"]
    expect(set(meta) <= plain | secret, f"cargo-lambda metadata names unknown settings: {sorted(set(meta) - plain - secret)}")
    required = {s["name"] for s in listed if s["need"] != "optional"}
    expect(required <= set(meta), f"cargo-lambda metadata lacks required settings: {sorted(required - set(meta))}")
    print(f"{len(plain)} settings, {len(secret)} secrets: SAM, Terraform, cargo-lambda metadata and docs/deploy.md agree")


def main():
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        check_sam()
        example = check_terraform(work)
        check_checkov(work)
        sam = sam_model(sam_template())
        plan = plan_json(example, work)
        tf = tf_model(plan)
        functions = compare(sam, tf)
        check_privileges(sam_template(), plan)
        check_settings(settings(), functions)
    if FAILURES:
        print(f"\n{len(FAILURES)} infrastructure check(s) failed:")
        for f in FAILURES:
            print(" -", f)
        sys.exit(1)
    print("\ninfrastructure checks passed")


if __name__ == "__main__":
    main()
