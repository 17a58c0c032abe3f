#!/bin/sh
# Runs one flagops command from GitLab ChatOps and prints what it printed as the chat reply.
#
#   /chatops run flagops set my_flag 50 --actors --production
#
# GitLab runs the job named `flagops` with the words after it in CHAT_INPUT. Only `set`, `get`
# and `show` are allowed; `set` always runs with `--mr`, so a change from chat is a merge
# request like any other. `set --emergency` is refused unless FLAGOPS_CHATOPS_EMERGENCY is
# `true`. docs/chatops.md describes the setup.
#
# CHAT_INPUT is split into words at spaces and nothing else: no globbing, no quotes, no `$(...)`,
# no `;`. Each word reaches flagops as one argument, and no word is ever run by a shell.
set -u

# Prints standard input as the `chat_reply` section of the job log, which GitLab sends to the
# chat instead of the whole log.
reply() {
  printf 'section_start:%s:chat_reply\r\033[0K\n' "$(date +%s)"
  cat
  printf 'section_end:%s:chat_reply\r\033[0K\n' "$(date +%s)"
}

refuse() {
  printf '%s\n' "$1" | reply
  exit 1
}

input="${CHAT_INPUT-}"
# Word splitting only: `set -f` turns globbing off, and the words are never evaluated.
set -f
# shellcheck disable=SC2086 # the splitting is the point
set -- $input
set +f

if [ "$#" -eq 0 ]; then
  refuse "usage: /chatops run flagops set|get|show NAME ..."
fi
command="$1"
case "$command" in
  set | get | show) ;;
  *) refuse "flagops: \`$command\` cannot be run from chat: use set, get or show" ;;
esac
for word in "$@"; do
  case "$word" in
    --config | --config=* | --commit | --)
      refuse "flagops: \`$word\` cannot be used from chat" ;;
    --emergency | --emergency=*)
      # Break glass changes environments directly, so the job would need every backend's
      # credentials: only a team that gives it them turns it on.
      if [ "${FLAGOPS_CHATOPS_EMERGENCY-}" != true ]; then
        refuse "flagops: \`--emergency\` cannot be used from chat: break glass from a machine that holds the backends' credentials, as the runbook says (docs/set.md#break-glass); a maintainer can allow it here by setting the CI/CD variable FLAGOPS_CHATOPS_EMERGENCY to true"
      fi ;;
  esac
done

if [ "$command" = set ]; then
  # The commit's author is the GitLab user who ran the command, unless git has one already.
  if ! git -c user.useConfigOnly=true var GIT_AUTHOR_IDENT > /dev/null 2>&1; then
    login="${GITLAB_USER_LOGIN:-flagops}"
    GIT_AUTHOR_NAME="${GITLAB_USER_NAME:-$login}"
    GIT_AUTHOR_EMAIL="${GITLAB_USER_EMAIL:-$login@users.noreply.gitlab.com}"
    GIT_COMMITTER_NAME="$GIT_AUTHOR_NAME"
    GIT_COMMITTER_EMAIL="$GIT_AUTHOR_EMAIL"
    export GIT_AUTHOR_NAME GIT_AUTHOR_EMAIL GIT_COMMITTER_NAME GIT_COMMITTER_EMAIL
  fi
  # The push authenticates with the merge-request token, which a credential helper reads from
  # the environment when git asks: it is on no command line and in no file.
  if [ -n "${FLAGOPS_CHATOPS_PUSH_URL-}" ]; then
    git remote set-url origin "$FLAGOPS_CHATOPS_PUSH_URL"
    # shellcheck disable=SC2016 # expanded by the helper's shell, when git runs it
    git config credential.helper '!f() { echo username=oauth2; echo "password=${FLAGOPS_MR_TOKEN}"; }; f'
  fi
  set -- "$@" --mr
fi

output="$(flagops "$@" 2>&1)"
status=$?
printf '%s\n' "$output" | reply
exit "$status"
