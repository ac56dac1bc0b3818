#!/usr/bin/env bash
# Re-drives dead letters into a function, one message at a time, deleting each
# only after the function accepted it. Usage:
#   scripts/replay_dlq.sh QUEUE_URL FUNCTION_NAME
# e.g. scripts/replay_dlq.sh "$(stack output ChecksDeadLetterQueueUrl)" nudge-check
# Needs the AWS CLI and credentials for the stack's account.
set -euo pipefail
queue=${1:?queue URL}
function=${2:?function name}
done=0
while :; do
  msg=$(aws sqs receive-message --queue-url "$queue" --max-number-of-messages 1 --visibility-timeout 60 --output json)
  body=$(jq -r '.Messages[0].Body // empty' <<<"$msg")
  [ -n "$body" ] || break
  handle=$(jq -r '.Messages[0].ReceiptHandle' <<<"$msg")
  out=$(mktemp)
  aws lambda invoke --function-name "$function" --cli-binary-format raw-in-base64-out \
    --payload "$body" "$out" --query FunctionError --output text | grep -qv None && {
    echo "the function failed on this message; left in the queue:"; cat "$out"; echo; exit 1; }
  aws sqs delete-message --queue-url "$queue" --receipt-handle "$handle"
  done=$((done + 1))
done
echo "replayed $done message(s)"
