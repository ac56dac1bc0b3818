#!/usr/bin/env python3
"""The seven Lambda functions on this machine, against moto instead of AWS.

    python3 scripts/local_aws.py up     # `make local-aws`
    python3 scripts/local_aws.py demo   # `make local-aws-demo`, in a second terminal

`up` starts moto's server (scripts/moto_serial.py) on 127.0.0.1:5055
(NUDGE_LOCAL_AWS_PORT), creates what the stacks create — the table exactly as
infra/sam/template.yaml declares it (Terraform's is checked to be the same),
the schedule group, the SES identity and configuration set — and runs the
functions under `cargo lambda watch` on 127.0.0.1:9001, pointed at moto
(AWS_ENDPOINT_URL) with the test settings of Cargo.toml's
[workspace.metadata.lambda.watch.env] and the demo rules (3 s cart delay).
Ctrl-C stops both.

`demo` sends a freshly signed Shopify checkout through the shopify-webhook
function, invokes the check function with the check Scheduler holds once it
is due, and prints the email moto's SES received. Without `up` running, it
starts one for itself and stops it at the end (`make test` runs it so).
"""

import argparse
import base64
import email
import email.policy
import hashlib
import hmac
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STATE = ROOT / "target/local-aws"
MOTO_PORT = int(os.environ.get("NUDGE_LOCAL_AWS_PORT", "5055"))
MOTO = f"http://127.0.0.1:{MOTO_PORT}"
WATCH = "http://127.0.0.1:9001"
REGION = "us-east-1"


def watch_env():
    import tomllib
    meta = tomllib.loads((ROOT / "Cargo.toml").read_text())
    return meta["workspace"]["metadata"]["lambda"]["watch"]["env"]


def say(msg):
    print(f"local-aws: {msg}", flush=True)


def fail(msg):
    sys.exit(f"local-aws: {msg}")


def client(service):
    import boto3
    return boto3.client(service, endpoint_url=MOTO, region_name=REGION,
                        aws_access_key_id="test", aws_secret_access_key="test")


def moto_answers():
    try:
        urllib.request.urlopen(f"{MOTO}/moto-api/data.json", timeout=1).read()
        return True
    except OSError:
        return False


def start_moto():
    if moto_answers():
        fail(f"something already answers on {MOTO}: stop it (or set NUDGE_LOCAL_AWS_PORT)")
    log = open(STATE / "moto.log", "w")
    moto = subprocess.Popen([sys.executable, str(ROOT / "scripts/moto_serial.py"), "-H", "127.0.0.1",
                             "-p", str(MOTO_PORT)], stdout=subprocess.PIPE, stderr=log, text=True)
    first = moto.stdout.readline().strip()
    if not first.startswith("port "):
        fail(f"moto did not start ({first!r}); its log: {STATE / 'moto.log'}")
    deadline = time.time() + 30
    while not moto_answers():
        if time.time() > deadline:
            fail("moto did not answer")
        time.sleep(0.2)
    return moto


def sam_table():
    """The table's properties as infra/sam/template.yaml declares them."""
    from samtranslator.yaml_helper import yaml_parse
    tpl = yaml_parse((ROOT / "infra/sam/template.yaml").read_text())
    tables = [r["Properties"] for r in tpl["Resources"].values() if r["Type"] == "AWS::DynamoDB::Table"]
    if len(tables) != 1:
        fail(f"expected one table in the SAM template, found {len(tables)}")
    return tables[0]


def create_resources(env):
    table = sam_table()
    ddb = client("dynamodb")
    ddb.create_table(TableName=env["NUDGE_TABLE"], BillingMode=table["BillingMode"],
                     AttributeDefinitions=table["AttributeDefinitions"], KeySchema=table["KeySchema"],
                     GlobalSecondaryIndexes=table["GlobalSecondaryIndexes"])
    ttl = table["TimeToLiveSpecification"]
    ddb.update_time_to_live(TableName=env["NUDGE_TABLE"],
                            TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": True})
    client("scheduler").create_schedule_group(Name=env["NUDGE_SCHEDULE_GROUP"])
    ses = client("sesv2")
    sender = env["NUDGE_FROM"].rsplit("<", 1)[-1].rstrip(">")
    ses.create_email_identity(EmailIdentity=sender)
    ses.create_configuration_set(ConfigurationSetName=env["NUDGE_SES_CONFIGURATION_SET"])
    say(f"created table {env['NUDGE_TABLE']} ({len(table['GlobalSecondaryIndexes'])} indexes, TTL on "
        f"{ttl['AttributeName']}), schedule group {env['NUDGE_SCHEDULE_GROUP']}, SES identity {sender}, "
        f"configuration set {env['NUDGE_SES_CONFIGURATION_SET']}")


def up():
    STATE.mkdir(parents=True, exist_ok=True)
    env = watch_env()
    if not shutil.which("cargo-lambda"):
        fail("cargo-lambda is not installed (`make local-aws` installs it)")
    moto = start_moto()
    try:
        create_resources(env)
        rules = ROOT / "examples/demo"
        env_file = STATE / "env"
        env_file.write_text("\n".join([
            f"AWS_ENDPOINT_URL={MOTO}", "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test",
            f"AWS_REGION={REGION}", "AWS_EC2_METADATA_DISABLED=true", f"NUDGE_RULES_DIR={rules}",
            "RUST_LOG=info",
        ]) + "\n")
        say(f"moto on {MOTO} (its log: {STATE / 'moto.log'})")
        say(f"functions on {WATCH} under `cargo lambda watch` (each builds on its first call)")
        say("now run `make local-aws-demo` in another terminal; Ctrl-C here stops both")
        watch = subprocess.Popen(["cargo", "lambda", "watch", "--invoke-address", "127.0.0.1",
                                  "--invoke-port", "9001", "--env-file", str(env_file)], cwd=ROOT)
        try:
            watch.wait()
        except KeyboardInterrupt:
            watch.send_signal(signal.SIGINT)
            watch.wait()
    finally:
        moto.kill()
        moto.wait()


def request(url, data=None, headers=None, timeout=600):
    req = urllib.request.Request(url, data=data, headers=headers or {}, method="POST" if data is not None else "GET")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def signed_checkout(env):
    """Shopify's checkouts/create sample, made now, for a new shopper who
    agreed to marketing email."""
    now = datetime.now(timezone.utc).replace(microsecond=0).isoformat()
    checkout = json.loads((ROOT / "fixtures/shopify/checkouts__create.json").read_text())
    token = uuid.uuid4().hex
    shopper = f"ada-{token[:8]}@example.com"
    customer_id = int(time.time() * 1000)
    checkout.update(token=token, cart_token=f"cart-{token}", email=shopper, created_at=now, updated_at=now)
    checkout["customer"].update(id=customer_id, email=shopper, first_name="Ada", last_name="Lovelace",
                                email_marketing_consent={"state": "subscribed", "opt_in_level": "single_opt_in",
                                                         "consent_updated_at": now})
    body = json.dumps(checkout).encode()
    mac = base64.b64encode(hmac.new(env["NUDGE_SHOPIFY_SECRET"].encode(), body, hashlib.sha256).digest()).decode()
    headers = {"Content-Type": "application/json", "X-Shopify-Topic": "checkouts/create",
               "X-Shopify-Hmac-Sha256": mac, "X-Shopify-Shop-Domain": env["NUDGE_SHOP"],
               "X-Shopify-Event-Id": str(uuid.uuid4()), "X-Shopify-Triggered-At": now}
    return body, headers, shopper


def pending_checks(env):
    """The Check JSON of every schedule moto holds in the group."""
    scheduler = client("scheduler")
    names = [s["Name"] for s in scheduler.list_schedules(GroupName=env["NUDGE_SCHEDULE_GROUP"])["Schedules"]]
    return [(n, json.loads(scheduler.get_schedule(Name=n, GroupName=env["NUDGE_SCHEDULE_GROUP"])["Target"]["Input"]))
            for n in names]


def sent_emails():
    data = json.loads(urllib.request.urlopen(f"{MOTO}/moto-api/data.json", timeout=10).read())
    return data.get("ses", {}).get("RawMessage", [])


def watch_answers():
    try:
        urllib.request.urlopen(f"{WATCH}/", timeout=1)
        return True
    except urllib.error.HTTPError:
        return True  # it answers, if only to say there is no default function
    except OSError:
        return False


def demo():
    if moto_answers():
        return run_demo()
    say("no `make local-aws` running: starting one for this demo (its output: target/local-aws/up.log)")
    STATE.mkdir(parents=True, exist_ok=True)
    log = open(STATE / "up.log", "w")
    stack = subprocess.Popen([sys.executable, __file__, "up"], stdout=log, stderr=subprocess.STDOUT,
                             start_new_session=True)
    try:
        deadline = time.time() + 120
        while not (moto_answers() and watch_answers()):
            if stack.poll() is not None or time.time() > deadline:
                fail(f"the local stack did not start; its output: {STATE / 'up.log'}")
            time.sleep(0.5)
        run_demo()
    finally:
        os.killpg(stack.pid, signal.SIGINT)
        try:
            stack.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(stack.pid, signal.SIGKILL)


def run_demo():
    env = watch_env()
    before = {n for n, _ in pending_checks(env)}
    mails_before = len(sent_emails())
    body, headers, shopper = signed_checkout(env)
    say("1. a Shopify checkouts/create delivery, signed with the test secret, to the shopify-webhook function")
    say("   (the first call builds the function: a minute or two)")
    status, answer = request(f"{WATCH}/lambda-url/shopify-webhook/webhooks/shopify", body, headers)
    say(f"   answered {status} {answer.strip()}")
    if status != 200:
        fail("the webhook function did not accept the delivery (see the `make local-aws` terminal)")
    new = [(n, c) for n, c in pending_checks(env) if n not in before]
    if not new:
        fail("the checkout armed no check (see the `make local-aws` terminal)")
    name, check = new[0]
    say(f"2. it armed {check['trigger']} for profile {check['profile']}: schedule {name}, due {check['due']}")
    due = datetime.fromisoformat(check["due"].replace("Z", "+00:00"))
    wait = (due - datetime.now(timezone.utc)).total_seconds()
    if wait > 0:
        say(f"   waiting {wait:.0f} s until it is due (EventBridge Scheduler would run it then, "
            "a minute after it was asked for at the earliest)")
        time.sleep(wait + 0.5)
    say("3. the check function, invoked with the schedule's input (as Scheduler invokes it)")
    status, answer = request(f"{WATCH}/2015-03-31/functions/check/invocations", json.dumps(check).encode(),
                             {"Content-Type": "application/json"})
    say(f"   answered {status} {answer.strip()}")
    mails = sent_emails()[mails_before:]
    if not mails:
        fail("no email reached moto's SES (the check's answer above says why)")
    raw = mails[-1].get("raw_data") or mails[-1].get("RawData") or ""
    msg = email.message_from_string(raw, policy=email.policy.default)
    text = msg.get_body(preferencelist=("plain",))
    say(f"4. moto's SES received it:\n\nFrom: {msg['From']}\nTo: {msg['To']}\nSubject: {msg['Subject']}\n")
    print(text.get_content() if text else raw[:2000])
    if shopper not in (msg["To"] or ""):
        fail(f"the email went to {msg['To']}, not the shopper")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["up", "demo"])
    args = parser.parse_args()
    up() if args.command == "up" else demo()


if __name__ == "__main__":
    main()
