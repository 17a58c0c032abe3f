#!/bin/sh
# Posts a plan (Markdown) as a note on the merge request of the current pipeline, or updates the
# note it posted before, so each merge request has one plan note that follows its latest push.
#
#   scripts/ci/post-plan-note.sh PLAN_FILE
#
# Run by the `plan-note` job of .gitlab-ci.yml; docs/pipeline.md describes the token. Reads:
#   FLAGOPS_NOTE_TOKEN   a token with the `api` scope that may comment on merge requests; without
#                        it the script says so and exits 0. It is never printed.
#   CI_API_V4_URL, CI_MERGE_REQUEST_PROJECT_ID (or CI_PROJECT_ID), CI_MERGE_REQUEST_IID
#                        set by GitLab in merge-request pipelines.
# Needs curl and jq. The note is found by the hidden marker on its first line.
set -eu

plan=${1:?usage: post-plan-note.sh PLAN_FILE}
marker='<!-- flagops-plan -->'

if [ -z "${FLAGOPS_NOTE_TOKEN:-}" ]; then
  echo "FLAGOPS_NOTE_TOKEN is not set: not posting the plan as a merge-request note"
  exit 0
fi
if [ -z "${CI_MERGE_REQUEST_IID:-}" ]; then
  echo "not a merge-request pipeline (CI_MERGE_REQUEST_IID is not set): not posting the plan"
  exit 0
fi
project=${CI_MERGE_REQUEST_PROJECT_ID:-${CI_PROJECT_ID:?CI_PROJECT_ID is not set}}
notes="${CI_API_V4_URL:?CI_API_V4_URL is not set}/projects/$project/merge_requests/$CI_MERGE_REQUEST_IID/notes"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The token goes to curl in a file, so it is on no command line and in no log.
(umask 077 && printf 'PRIVATE-TOKEN: %s\n' "$FLAGOPS_NOTE_TOKEN" > "$work/headers")

api() {
  curl --silent --show-error --fail-with-body -H "@$work/headers" "$@"
}

{
  echo "$marker"
  cat "$plan"
  echo
  echo "<sub>Updated for ${CI_COMMIT_SHORT_SHA:-the latest commit} by the \`${CI_JOB_NAME:-plan-note}\` job.</sub>"
} > "$work/body.md"

# The first note of ours, looking through every page of the merge request's notes.
existing=""
page=1
while [ -z "$existing" ] && [ -n "$page" ]; do
  api --retry 3 --dump-header "$work/page-headers" \
    "$notes?sort=asc&order_by=created_at&per_page=100&page=$page" > "$work/page.json"
  existing=$(jq -r --arg marker "$marker" \
    'map(select((.system | not) and (.body | startswith($marker)))) | first | .id // empty' \
    "$work/page.json")
  page=$(tr -d '\r' < "$work/page-headers" | sed -n 's/^[Xx]-[Nn]ext-[Pp]age: *//p')
done

if [ -n "$existing" ]; then
  api --retry 3 --request PUT --data-urlencode "body@$work/body.md" "$notes/$existing" > /dev/null
  echo "updated the plan note ($notes/$existing)"
else
  id=$(api --request POST --data-urlencode "body@$work/body.md" "$notes" | jq -r '.id')
  echo "posted the plan note ($notes/$id)"
fi
